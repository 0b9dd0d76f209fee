"""`pycvnn info`: the version, the backend and the BLAS library."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .. import __version__

if TYPE_CHECKING:
    from . import Parser


def cmd_info(args: argparse.Namespace) -> None:
    from .. import _core, get_backend, get_num_threads

    print(f"pycvnn {__version__}")
    print(
        f"backend: {get_backend()}; BLAS: {_core._blas_name()} with {get_num_threads()} thread(s)"
    )


def add_parser(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("info", help="version, backend and BLAS")
    p.set_defaults(func=cmd_info)
