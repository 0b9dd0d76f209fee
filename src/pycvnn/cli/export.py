"""`pycvnn export`: write a saved model as an ONNX file."""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

from ._report import fail, reason
from .args import folder_for, int_in

if TYPE_CHECKING:
    from . import Parser


def onnx_path(text: str) -> str:
    folder_for(text, "ONNX model")
    return text


def opset_arg(text: str) -> int:
    return int_in(text, 1, math.inf, "an ONNX opset number (an int >= 1)")


def check_export(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The opset's range is the installed onnx package's, so it is checked once onnx is known
    to be there (cmd_export says how to install it otherwise)."""
    try:
        from ..export import MAX_OPSET, MIN_OPSET
    except ImportError:
        return
    if not MIN_OPSET <= args.opset <= MAX_OPSET:
        parser.error(
            f"argument --opset: expected an int from {MIN_OPSET} to {MAX_OPSET}, got {args.opset}"
        )


def cmd_export(args: argparse.Namespace) -> int:
    try:
        from .. import export
    except ImportError as err:
        fail(str(err), "export")
        return 2
    from ..model import load

    try:
        model = load(args.model)
    except (FileNotFoundError, ValueError) as err:  # their messages name the file
        fail(reason(err), "export")
        return 1
    except OSError as err:
        fail(f"could not read {args.model}: {reason(err)}", "export")
        return 1
    try:
        export.to_onnx(model, args.onnx, args.opset)
    except OSError as err:
        fail(f"could not write {args.onnx}: {reason(err)}", "export")
        return 1
    print(f"wrote {args.onnx} (ONNX opset {args.opset}): {model}")
    return 0


def add_parser(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "export",
        help="write a saved model as an ONNX file",
        description="Write a model saved by `pycvnn train --save` or model.save as an ONNX "
        "graph with a dynamic batch dimension (needs pycvnn[onnx]).",
    )
    p.set_defaults(func=cmd_export, check=lambda args, p=p: check_export(p, args))
    p.add_argument("model", metavar="MODEL.npz", help="the saved model")
    p.add_argument(
        "--onnx", metavar="OUT.onnx", type=onnx_path, required=True, help="the file to write"
    )
    p.add_argument(
        "--opset", metavar="N", type=opset_arg, default=17, help="ONNX opset (default 17)"
    )
