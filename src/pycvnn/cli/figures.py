"""`pycvnn figures`: draw the lecture's figures and write them as image files."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from ._report import fail, reason
from .args import int_in

if TYPE_CHECKING:
    from . import Parser


# The figures `pycvnn figures` writes (a list here, so --help and --only need no matplotlib).
FIGURE_NAMES = (
    "losses",
    "activations",
    "gd_variants",
    "optimizers_quadratic",
    "optimizers_rosenbrock",
    "optimizers_saddle",
    "schedules",
    "dice",
    "digits_curves",
    "digits_confusion",
)


def dpi_arg(text: str) -> int:
    return int_in(text, 20, 600, "a resolution from 20 to 600 dots per inch")


def out_folder(text: str) -> str:
    """A folder to write into: it may not exist yet, but it may not be a file."""
    if not text:
        raise argparse.ArgumentTypeError("expected a folder, got ''")
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"expected a folder, got the file {text!r}")
    return text


def cmd_figures(args: argparse.Namespace) -> int:
    import time

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        fail("needs matplotlib: pip install 'pycvnn[plot]'", "figures")
        return 2
    from ..plot import gallery

    start = time.perf_counter()
    try:
        paths = gallery.write(args.out, args.only, args.dpi)
    except OSError as err:
        fail(f"could not write the figures to {args.out}: {reason(err)}", "figures")
        return 1
    for path in paths:
        print(f"{path}  {os.path.getsize(path) / 1024:.0f} KiB")
    print(f"wrote {len(paths)} figure(s) in {time.perf_counter() - start:.1f} s")
    return 0


def add_parser(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "figures",
        help="write the lecture's figures as PNG files",
        description="Draw the lecture's figures with pycvnn's own kernels and write them as "
        "DIR/NAME.png (needs pycvnn[plot]). NAME is one of: " + ", ".join(FIGURE_NAMES) + ".",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        type=out_folder,
        default="figures",
        help="folder to write into, made if missing (default figures)",
    )
    p.add_argument(
        "--only",
        metavar="NAME",
        action="append",
        choices=FIGURE_NAMES,
        help="write only this figure (repeatable)",
    )
    p.add_argument("--dpi", type=dpi_arg, default=100, help="resolution (default 100)")
    p.set_defaults(func=cmd_figures)
