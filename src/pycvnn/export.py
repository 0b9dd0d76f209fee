"""ONNX export: `to_onnx(model, path)` writes a model as an ONNX graph whose output is what
model.predict returns, for a batch of any size."""

from __future__ import annotations

import os
from typing import Any, List, TypeVar

import numpy as np

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as err:
    raise ImportError(
        f"pycvnn.export needs onnx ({err.name or 'onnx'} is missing): pip install 'pycvnn[onnx]'"
    ) from err

from . import __version__
from . import _validate as v
from ._atomic import write_atomically
from ._types import ArrayLike, DTypeLike
from .model import Sequential

P = TypeVar("P", str, "os.PathLike[str]")

# Opset 13 is the first whose Softmax works over one axis; the highest is the installed
# onnx package's, which its checker knows.
MIN_OPSET = 13
MAX_OPSET = onnx.defs.onnx_opset_version()
GELU_OPSET = 20  # the first opset with a Gelu operator
# A protobuf message, so an ONNX file without external data, holds less than 2 GiB.
MAX_BYTES = 2**31 - 2**20
ELEMENT_TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}


def check_opset(opset: int) -> int:
    """opset as an int in [MIN_OPSET, MAX_OPSET], else a TypeError/ValueError naming it."""
    opset = v.integer(opset, "opset")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset: expected an int from {MIN_OPSET} to {MAX_OPSET}, got {opset}")
    return opset


class _Graph:
    """Nodes and initializers in the model's dtype, each value named uniquely."""

    def __init__(self, dtype: DTypeLike, opset: int) -> None:
        self.dtype, self.opset = np.dtype(dtype), opset
        self.nodes: List[onnx.NodeProto] = []
        self.initializers: List[onnx.TensorProto] = []

    def const(self, value: ArrayLike) -> str:
        name = f"c{len(self.initializers)}"
        array = np.asarray(value, self.dtype)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, *inputs: str, **attributes: Any) -> str:
        out = f"{op_type.lower()}{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attributes))
        return out

    def activation(self, name: str, x: str, alpha: float) -> str:
        """f(x) for the registry's activation `name`. onnxruntime has no double kernels for
        LeakyRelu, Softplus and Erf, so float64 graphs compose the first two from ops it has
        and take Erf in float32."""
        double = self.dtype == np.float64
        if name in ("sigmoid", "tanh", "relu"):
            return self.op(name.capitalize(), x)
        if name == "softmax":
            return self.op("Softmax", x, axis=-1)
        if name == "leaky_relu":
            if not double:
                return self.op("LeakyRelu", x, alpha=float(alpha))
            negative = self.op("Min", x, self.const(0.0))
            return self.op("Add", self.op("Relu", x), self.op("Mul", negative, self.const(alpha)))
        if name == "softplus":
            if not double:
                return self.op("Softplus", x)
            # max(x, 0) + log(1 + exp(-|x|)): exp never overflows.
            tail = self.op("Exp", self.op("Neg", self.op("Abs", x)))
            return self.op(
                "Add", self.op("Relu", x), self.op("Log", self.op("Add", tail, self.const(1.0)))
            )
        if name == "gelu":
            if not double and self.opset >= GELU_OPSET:
                return self.op("Gelu", x)
            scaled = self.op("Mul", x, self.const(np.sqrt(0.5)))
            if double:
                erf = self.op("Erf", self.op("Cast", scaled, to=TensorProto.FLOAT))
                erf = self.op("Cast", erf, to=TensorProto.DOUBLE)
            else:
                erf = self.op("Erf", scaled)
            half = self.op("Mul", x, self.const(0.5))
            return self.op("Mul", half, self.op("Add", erf, self.const(1.0)))
        raise ValueError(f"model: the activation {name!r} has no ONNX form in pycvnn.export")


def build(model: Sequential, opset: int = 17) -> onnx.ModelProto:
    """The ONNX ModelProto for `model` (checked), input "input" (N, in), output "output"."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a pycvnn Sequential or MLP, got {type(model).__name__}")
    opset = check_opset(opset)
    size = model.n_params * np.dtype(model.dtype).itemsize
    if size > MAX_BYTES:
        raise ValueError(
            f"model: expected parameters of at most {MAX_BYTES:,} bytes (what one ONNX file "
            f"holds), got {model.n_params:,} parameters of {size:,} bytes"
        )
    graph = _Graph(model.dtype, opset)
    x, weights = "input", iter(model.get_weights())
    for op in model.ops:
        if op.kind == "dense":
            W, b = next(weights), next(weights)
            x = graph.op("Gemm", x, graph.const(W), graph.const(b), transB=1)
        if op.activation != "none":
            x = graph.activation(op.activation, x, op.alpha)
    graph.nodes[-1].output[0] = "output"  # the last value computed is the model's output
    element = ELEMENT_TYPES[np.dtype(model.dtype)]
    proto = helper.make_model(
        helper.make_graph(
            graph.nodes,
            "pycvnn",
            [helper.make_tensor_value_info("input", element, ["N", model.in_features])],
            [helper.make_tensor_value_info("output", element, ["N", model.out_features])],
            graph.initializers,
        ),
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="pycvnn",
        producer_version=__version__,
    )
    # The lowest IR version the opset allows, so that older runtimes load the file.
    proto.ir_version = helper.find_min_ir_version_for(proto.opset_import)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def to_onnx(model: Sequential, path: P, opset: int = 17) -> P:
    """Write `model` to `path` as ONNX (atomically) and return path; the graph takes "input"
    (N, in_features) and gives "output" (N, out_features), model.predict's values, in the
    model's dtype. A float64 model's GELU takes its Erf in float32 (about 1e-7 off), as
    onnxruntime has no double Erf."""
    if not isinstance(path, (str, os.PathLike)) or not isinstance(os.fspath(path), str):
        raise TypeError(f"path: expected a str or os.PathLike of str, got {path!r}")
    if not os.fspath(path):
        raise ValueError("path: expected a file path, got ''")
    data = build(model, opset).SerializeToString()
    write_atomically(path, lambda f: f.write(data))
    return path
