"""The `pycvnn` command line: `pycvnn train`, `pycvnn walkthrough`, `pycvnn figures`,
`pycvnn export`, `pycvnn sweep`, `pycvnn info`, `pycvnn playground`. Each command's module
adds its parser (`add_parser`) and holds the function that runs it (`cmd_<command>`)."""

from __future__ import annotations

import argparse
from typing import NoReturn, Optional, Sequence

from .. import __version__
from . import export, figures, info, playground, sweep, train, walkthrough

__all__ = ["Parser", "build_parser", "main"]


class Parser(argparse.ArgumentParser):
    """argparse, but a bad value is one line on stderr (the usage is a --help away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> Parser:
    parser = Parser(prog="pycvnn", description="Feed-forward neural networks.")
    parser.add_argument("--version", action="version", version=f"pycvnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    # The order here is the order `pycvnn --help` lists the commands in.
    for command in (train, walkthrough, figures, export, sweep, playground, info):
        command.add_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(args, "check"):
        args.check(args)
    status: int = args.func(args) or 0
    return status
