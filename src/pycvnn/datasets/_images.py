"""Class-per-folder image sets (root/<class>/<image>) read with Pillow."""

from __future__ import annotations

import os
from typing import Iterable, Sequence

import numpy as np

from .. import _validate
from .._types import FloatArray, IntArray, PathLike

EXTENSIONS = (".png", ".jpg", ".jpeg")
MAX_SIDE = 4096


def _size(size: int | Sequence[int]) -> tuple[int, int]:
    """(width, height) from an int (a square) or a pair of ints."""
    what = f"an int from 1 to {MAX_SIDE} or a (width, height) pair of them"
    pair = (size, size) if isinstance(size, (int, np.integer)) else size
    if (
        not isinstance(pair, (tuple, list))
        or len(pair) != 2
        or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in pair)
        or not all(1 <= s <= MAX_SIDE for s in pair)
    ):
        raise ValueError(f"size: expected {what}, got {size!r}")
    return int(pair[0]), int(pair[1])


def _visible(names: Iterable[str]) -> list[str]:
    return sorted(n for n in names if not n.startswith("."))


def list_image_folder(root: PathLike) -> tuple[list[str], list[tuple[str, int]]]:
    """(classes, [(path, class index)]) of root/<class>/<image>: the class folders sorted by
    name, their PNG and JPEG files sorted by name; hidden entries and other files skipped."""
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root: expected a folder path (str or os.PathLike), got {root!r}")
    root = os.fspath(root)
    if not os.path.exists(root):
        raise FileNotFoundError(2, "no such image folder", root)
    if not os.path.isdir(root):
        raise ValueError(f"root: expected a folder of class folders, got the file {root!r}")
    classes = [c for c in _visible(os.listdir(root)) if os.path.isdir(os.path.join(root, c))]
    if not classes:
        raise ValueError(f"root: expected class folders in {root!r}, found none")
    files = []
    for index, name in enumerate(classes):
        folder = os.path.join(root, name)
        images = [
            os.path.join(folder, f)
            for f in _visible(os.listdir(folder))
            if f.lower().endswith(EXTENSIONS) and os.path.isfile(os.path.join(folder, f))
        ]
        if not images:
            raise ValueError(
                f"root: expected PNG or JPEG images in the class folder {folder!r}, found none"
            )
        files += [(path, index) for path in images]
    return classes, files


def load_image_folder(
    root: PathLike, size: int | tuple[int, int], grayscale: bool = True
) -> tuple[FloatArray, IntArray, list[str]]:
    """Images in class folders, root/<class>/<image>.png|.jpg|.jpeg, each resized to size.

    size is (width, height), or an int for a square. Returns X float32 (N, height * width *
    channels) in [0, 1] (rows, then columns, then channels: 1 for grayscale, else 3 for RGB),
    y int64 (N,) and classes, the sorted folder names that y indexes. Needs Pillow (the
    `images` extra). A file that does not decode (truncated, not an image) is a ValueError
    naming it, as is an empty root or class folder; hidden entries and other files are skipped.
    """
    width, height = _size(size)
    grayscale = _validate.flag(grayscale, "grayscale")
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise ImportError(
            "load_image_folder needs Pillow, which is not installed: pip install 'pycvnn[images]'"
        ) from None
    classes, files = list_image_folder(root)
    mode, channels = ("L", 1) if grayscale else ("RGB", 3)
    X = np.empty((len(files), height * width * channels), dtype=np.float32)
    for row, (path, _) in enumerate(files):
        try:
            with Image.open(path) as image:
                image = ImageOps.exif_transpose(image).convert(mode)  # photos stored rotated
                image = image.resize((width, height), Image.Resampling.BILINEAR)
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as err:
            raise ValueError(f"{path}: cannot read the image: {err}") from None
        X[row] = np.asarray(image, dtype=np.uint8).reshape(-1)
    X /= np.float32(255)
    y = np.array([index for _, index in files], dtype=np.int64)
    return X, y, classes
