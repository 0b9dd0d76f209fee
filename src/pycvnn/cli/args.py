"""The argument types the commands share, and the limits they check: each type returns the
parsed value or raises ArgumentTypeError, which argparse reports as one line naming the flag."""

from __future__ import annotations

import argparse
import math
import os
from typing import Callable, Literal, NamedTuple, NoReturn, Optional, Union

# How the argument checks report a problem that needs more than one argument: parser.error.
ErrorReporter = Callable[[str], NoReturn]

DATASETS = {"digits": (64, 10)}  # input features and classes, to size the model before loading
DATA_SCHEMES = ("idx", "folder")  # --data SCHEME:DIR
MAX_IMAGE_SIDE = 4096

# Bounds that turn a typo (an extra digit or three) into a clear error instead of a
# MemoryError or a run that never ends.
MAX_HIDDEN = 100_000
MAX_PARAMETERS = 100_000_000
MAX_EPOCHS = 100_000
MAX_BATCH = 1_000_000
MAX_ITERATIONS = 10_000


def int_in(text: str, lo: float, hi: float, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not lo <= value <= hi:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def float_in(
    text: str,
    what: str,
    minimum: Optional[float] = None,
    maximum: Optional[float] = None,
    exclusive: bool = False,
) -> float:
    """A finite float within [minimum, maximum] (either bound may be None), or within
    (minimum, maximum) with exclusive=True."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    below = minimum is not None and (value <= minimum if exclusive else value < minimum)
    above = maximum is not None and (value >= maximum if exclusive else value > maximum)
    if not math.isfinite(value) or below or above:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value + 0.0  # -0.0 -> 0.0


def learning_rate(text: str) -> float:
    return float_in(text, "a finite number >= 0", minimum=0)


def finite_float(text: str) -> float:
    return float_in(text, "a finite number")


def epochs_arg(text: str) -> int:
    return int_in(text, 1, MAX_EPOCHS, f"an int from 1 to {MAX_EPOCHS:,}")


def seed_arg(text: str) -> int:
    return int_in(text, 0, math.inf, "a non-negative int")


def batch_size_arg(text: str) -> Union[int, Literal["full"]]:
    if text == "full":
        return "full"
    return int_in(text, 1, MAX_BATCH, f"an int from 1 to {MAX_BATCH:,} or 'full'")


def hidden_arg(text: str) -> list[int]:
    """'64,32' -> [64, 32]; '' -> [] (no hidden layer)."""
    if not text.strip():
        return []
    what = f"comma-separated layer sizes, each an int from 1 to {MAX_HIDDEN:,}"
    sizes: list[int] = []
    for item in text.split(","):
        try:
            sizes.append(int_in(item, 1, MAX_HIDDEN, what))
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"expected {what}, got {text!r} (bad size {item!r})"
            ) from None
    return sizes


class DataSpec(NamedTuple):
    """A parsed --data value: the scheme (digits, idx, folder) and its folder (None for digits)."""

    scheme: str
    folder: Optional[str] = None

    def __str__(self) -> str:
        return self.scheme if self.folder is None else f"{self.scheme}:{self.folder}"


def data_arg(text: str) -> DataSpec:
    """'digits', 'idx:DIR' (MNIST-format files) or 'folder:DIR' (one folder of images per class)."""
    what = "digits, idx:DIR or folder:DIR"
    if text in DATASETS:
        return DataSpec(text)
    scheme, colon, folder = text.partition(":")
    if not colon or scheme not in DATA_SCHEMES:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    if not folder:
        raise argparse.ArgumentTypeError(f"expected {scheme}:DIR with a folder, got {text!r}")
    if not os.path.isdir(folder):
        problem = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise argparse.ArgumentTypeError(f"{text!r}: the folder {folder!r} {problem}")
    return DataSpec(scheme, folder)


def fraction_arg(text: str) -> float:
    return float_in(text, "a fraction between 0 and 1 (both excluded)", 0, 1, exclusive=True)


def image_size_arg(text: str) -> tuple[int, int]:
    """'28' -> (28, 28); '32x24' -> (32, 24) as (width, height)."""
    what = f"N or WIDTHxHEIGHT, each an int from 1 to {MAX_IMAGE_SIDE}"
    parts = text.lower().split("x")
    if len(parts) > 2:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    try:
        sizes = [int_in(part, 1, MAX_IMAGE_SIDE, what) for part in parts]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    return (sizes[0], sizes[-1])


def folder_for(text: str, what: str) -> None:
    """The checks a path to be written needs before training: a name, an existing, writable folder."""
    if not text:
        raise argparse.ArgumentTypeError(f"expected a file path for the {what}, got ''")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(
            f"expected a file path for the {what}, got the folder {text!r}"
        )
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(
            f"cannot write {text!r}: the folder {folder!r} does not exist"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(
            f"cannot write {text!r}: the folder {folder!r} is not writable"
        )


def save_path(text: str) -> str:
    folder_for(text, "model")
    return text


def plot_path(text: str) -> str:
    folder_for(text, "curves")
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        return text  # cmd_train says how to install matplotlib, before training
    formats = FigureCanvasBase.get_supported_filetypes()
    extension = os.path.splitext(text)[1][1:].lower()
    if extension not in formats:
        names = ", ".join("." + f for f in sorted(formats))
        raise argparse.ArgumentTypeError(
            f"expected a file name ending in one of {names}, got {text!r}"
        )
    return text
