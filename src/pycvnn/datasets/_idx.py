"""MNIST-format IDX files (raw or gzip): headers checked against the file before the pixels
are read."""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import os
import struct
import zlib

import numpy as np

from .._types import FloatArray, IntArray, NDArray, PathLike

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (count, rows, cols)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (count)
CHUNK = 1 << 20
IDX_TYPES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "short",
    0x0C: "int",
    0x0D: "float",
    0x0E: "double",
}


def _path(value: object, name: str) -> str:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a file path (str or os.PathLike), got {value!r}")
    return os.fspath(value)


def _describe(magic: int) -> str:
    kind, ndim = (magic >> 8) & 0xFF, magic & 0xFF
    if magic >> 16 or kind not in IDX_TYPES:
        return f"0x{magic:08x} (not an IDX header)"
    return f"0x{magic:08x} ({IDX_TYPES[kind]} data, {ndim} dimension(s))"


def _open(path: str, stack: contextlib.ExitStack) -> io.BufferedIOBase:
    """A binary stream of the file's IDX bytes: a gzip file is recognised by its first bytes."""
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "no such IDX file", path)
    f = stack.enter_context(open(path, "rb"))
    compressed = f.read(2) == b"\x1f\x8b"
    f.seek(0)
    return stack.enter_context(gzip.GzipFile(fileobj=f)) if compressed else f


def _read(stream: io.BufferedIOBase, size: int, path: str) -> bytearray:
    """Up to `size` bytes, growing with what the file holds, so a header that lies about the
    size costs no allocation beyond the file's data."""
    data = bytearray()
    try:
        while len(data) < size:
            chunk = stream.read1(min(CHUNK, size - len(data)))  # read1 keeps what came before a cut
            if not chunk:
                break
            data += chunk
    except EOFError:  # a gzip stream cut off: the length check reports the sizes
        pass
    except (OSError, zlib.error) as err:  # a damaged gzip stream
        raise ValueError(f"{path}: cannot read the IDX data: {err}") from None
    return data


def _header(stream: io.BufferedIOBase, path: str, magic: int, what: str) -> tuple[int, ...]:
    """The dimensions of the IDX file at path, whose magic number must be `magic`."""
    head = _read(stream, 4, path)
    found = struct.unpack(">I", head)[0] if len(head) == 4 else None
    if found != magic:
        got = _describe(found) if found is not None else f"a file of {len(head)} byte(s)"
        raise ValueError(
            f"{path}: expected the magic number of an IDX {what} file, {_describe(magic)}, "
            f"found {got}"
        )
    ndim = magic & 0xFF
    head = _read(stream, 4 * ndim, path)
    if len(head) < 4 * ndim:
        raise ValueError(
            f"{path}: expected {4 + 4 * ndim} header bytes, got {4 + len(head)} (truncated)"
        )
    dims = struct.unpack(f">{ndim}I", head)
    if min(dims) == 0:
        raise ValueError(f"{path}: expected non-zero dimensions, got {dims}")
    return dims


def _payload(
    stream: io.BufferedIOBase, path: str, header_size: int, size: int
) -> NDArray[np.uint8]:
    """The `size` bytes after the header, as uint8; any other length is a ValueError."""
    data = _read(stream, size + 1, path)  # one byte more tells a longer file from an exact one
    if len(data) != size:
        unpacked = " uncompressed" if isinstance(stream, gzip.GzipFile) else ""
        if len(data) > size:
            got = f"more than {header_size + size:,}"
        else:
            got = f"{header_size + len(data):,} (truncated)"
        raise ValueError(
            f"{path}: expected {header_size + size:,}{unpacked} bytes (the size its header "
            f"gives), got {got}"
        )
    return np.frombuffer(data, dtype=np.uint8)


def load_idx(images: PathLike, labels: PathLike) -> tuple[FloatArray, IntArray]:
    """Images and labels from MNIST-format IDX files (each raw or gzip-compressed).

    Returns X float32 (N, rows * cols) = pixel / 255 and y int64 (N,). Both headers (magic
    number, dimensions, label count equal to image count) are checked before the pixels are
    read, and each file's length must match its header: anything else is a ValueError naming
    the file; a missing file is a FileNotFoundError.
    """
    images = _path(images, "images")
    labels = _path(labels, "labels")
    with contextlib.ExitStack() as stack:
        image_stream = _open(images, stack)
        label_stream = _open(labels, stack)
        n, rows, cols = _header(image_stream, images, IMAGES_MAGIC, "images")
        (n_labels,) = _header(label_stream, labels, LABELS_MAGIC, "labels")
        if n_labels != n:
            raise ValueError(
                f"labels: expected one label per image, {n:,} (the count in {images}), "
                f"got {n_labels:,} in {labels}"
            )
        y = _payload(label_stream, labels, 8, n).astype(np.int64)
        pixels = _payload(image_stream, images, 16, n * rows * cols).reshape(n, rows * cols)
    X = pixels.astype(np.float32)
    X /= np.float32(255)
    return X, y


def find_idx_files(folder: PathLike) -> dict[str, tuple[str, str]]:
    """MNIST's file names in folder: {"train": (images, labels)} plus "t10k" when its test
    files are there. A name matches by its prefix (train-images-idx3-ubyte, Kaggle's
    train-images.idx3-ubyte, either with .gz); of several matches the first by name is used."""
    names = sorted(n for n in os.listdir(folder) if not n.startswith("."))

    def first(prefix: str) -> str | None:
        found = [n for n in names if n.startswith(prefix)]
        return os.path.join(folder, found[0]) if found else None

    files = {}
    for part in ("train", "t10k"):
        images, labels = first(f"{part}-images"), first(f"{part}-labels")
        if images and labels:
            files[part] = (images, labels)
        elif images or labels:
            raise ValueError(
                f"{folder}: found {images or labels} but no {part}-{'labels' if images else 'images'}"
                " file to go with it"
            )
    if "train" not in files:
        raise ValueError(
            f"{folder}: expected MNIST's train-images-idx3-ubyte and train-labels-idx1-ubyte "
            "(or .gz), found neither"
        )
    return files
