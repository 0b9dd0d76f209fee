"""The `pycvnn` command line: `pycvnn walkthrough`, `pycvnn info`."""

import argparse
import sys

from . import __version__, walkthrough


def cmd_walkthrough(args):
    rows = walkthrough.linear_regression(
        [1.0, 2.0, 3.0], [2.0, 4.0, 6.0], args.lr, args.w0, args.b0, args.iterations
    )
    print("Batch gradient descent on y_hat = w x + b, MSE loss, X = [1, 2, 3], y = [2, 4, 6]")
    print(f"lr = {args.lr}, w0 = {args.w0}, b0 = {args.b0}; loss is taken before each update")
    print(walkthrough.format_table(rows))


def cmd_info(args):
    from . import _core, get_backend, get_num_threads

    print(f"pycvnn {__version__}")
    print(f"backend: {get_backend()}; BLAS: {_core._blas_name()} with {get_num_threads()} thread(s)")


def build_parser():
    parser = argparse.ArgumentParser(prog="pycvnn", description="Feed-forward neural networks.")
    parser.add_argument("--version", action="version", version=f"pycvnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("walkthrough", help="the lecture's gradient-descent walkthrough")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    p.add_argument("--w0", type=float, default=0.0, help="initial w (default 0)")
    p.add_argument("--b0", type=float, default=0.0, help="initial b (default 0)")
    p.add_argument("--iterations", type=int, default=5, help="iterations (default 5)")
    p.set_defaults(func=cmd_walkthrough)

    p = sub.add_parser("info", help="version, backend and BLAS")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
