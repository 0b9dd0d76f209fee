"""`pycvnn walkthrough`: the lecture's gradient-descent walkthrough, printed as a table."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .. import walkthrough
from .args import MAX_ITERATIONS, finite_float, int_in, learning_rate

if TYPE_CHECKING:
    from . import Parser


def iterations_arg(text: str) -> int:
    return int_in(text, 0, MAX_ITERATIONS, f"an int from 0 to {MAX_ITERATIONS:,}")


def cmd_walkthrough(args: argparse.Namespace) -> None:
    rows = walkthrough.linear_regression(
        [1.0, 2.0, 3.0], [2.0, 4.0, 6.0], args.lr, args.w0, args.b0, args.iterations
    )
    print("Batch gradient descent on y_hat = w x + b, MSE loss, X = [1, 2, 3], y = [2, 4, 6]")
    print(f"lr = {args.lr}, w0 = {args.w0}, b0 = {args.b0}; loss is taken before each update")
    print(walkthrough.format_table(rows))
    bad = walkthrough.diverged_at(rows)
    if bad is not None:
        print(
            f"pycvnn walkthrough: the values overflow from iteration {bad} on: lr = {args.lr:g} is too "
            "large and gradient descent diverges",
            file=sys.stderr,
        )


def add_parser(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("walkthrough", help="the lecture's gradient-descent walkthrough")
    p.add_argument("--lr", type=learning_rate, default=0.1, help="learning rate (default 0.1)")
    p.add_argument("--w0", type=finite_float, default=0.0, help="initial w (default 0)")
    p.add_argument("--b0", type=finite_float, default=0.0, help="initial b (default 0)")
    p.add_argument(
        "--iterations",
        type=iterations_arg,
        default=5,
        help=f"iterations, at most {MAX_ITERATIONS:,} (default 5)",
    )
    p.set_defaults(func=cmd_walkthrough)
