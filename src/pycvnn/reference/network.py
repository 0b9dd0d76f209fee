"""The training core's NumPy twin: a network of ops over one flat parameter arena.

Arena layout, shared with the C++ core and pycvnn.model: [W1, ..., WL, b1, ..., bL], each
Wi (out_i, in_i) row-major. The first n_decay entries are the weights, the only entries
weight decay touches. grads and optimizer state buffers have the arena's size and dtype.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable, Literal, Tuple

import numpy as np

from .._types import Array, ArrayLike, DTypeLike, FloatArray, IntArray, NDArray
from . import activations as A
from . import dense as D
from . import losses as L
from . import optimizers as O

OP_KINDS = ("dense", "act")
# One op as Network takes it: (kind, in, out, activation, alpha).
OpTuple = Tuple[str, int, int, str, float]
ACTIVATIONS = D.ACTIVATIONS
# The training core's update rules (name, state buffers kept) and losses (name, the option it
# takes), as pycvnn._core lists them.
RULES = (("gd", 0), ("momentum", 1), ("rmsprop", 1), ("adam", 2), ("adamw", 2))
LOSSES = (
    ("l1", None),
    ("l2", None),
    ("huber", "delta"),
    ("cross_entropy", "from_logits"),
    ("binary_cross_entropy", "from_logits"),
    ("hinge", None),
    ("squared_hinge", None),
    ("dice", "smooth"),
)


class UpdateRule:
    """One optimizer's rule and hyperparameters; lr and the step number t come per step.

    A step: clip the raw gradients by their global norm (clip_norm > 0), add coupled weight
    decay to the weights' gradients (not for adamw, whose decay is decoupled), update.
    state1 is the velocity / RMSProp's s / Adam's m; state2 is Adam's v.
    """

    def __init__(
        self,
        rule: str,
        beta: float = 0.9,
        form: str = "ema",
        nesterov: bool = False,
        rho: float = 0.9,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        clip_norm: float = 0.0,
    ) -> None:
        if rule not in dict(RULES):
            raise ValueError(f"rule: expected one of {tuple(dict(RULES))}, got {rule!r}")
        if form not in O.MOMENTUM_FORMS:
            raise ValueError(f"form: expected one of {O.MOMENTUM_FORMS}, got {form!r}")
        if nesterov and form == "ema":
            raise ValueError(
                "nesterov: expected False with form='ema' (Nesterov needs heavy_ball), got True"
            )
        for name, value in (("weight_decay", weight_decay), ("clip_norm", clip_norm)):
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name}: expected a finite value >= 0, got {value!r}")
        self.rule, self.beta, self.form, self.nesterov = rule, beta, form, nesterov
        self.rho, self.beta1, self.beta2, self.eps = rho, beta1, beta2, eps
        self.weight_decay, self.clip_norm = weight_decay, clip_norm

    def step(
        self,
        params: FloatArray,
        grads: FloatArray,
        state1: FloatArray,
        state2: FloatArray,
        n_decay: int,
        lr: float,
        t: int,
    ) -> None:
        """One update of params in place; t >= 1 is this step's number."""
        if params.size == 0:
            return
        if self.clip_norm > 0:
            O.clip_by_global_norm(grads, self.clip_norm)
        wd = self.weight_decay
        if wd > 0 and self.rule != "adamw" and n_decay > 0:
            O.add_weight_decay(grads[:n_decay], params[:n_decay], wd)
        if self.rule == "gd":
            O.gd_update(params, grads, lr)
        elif self.rule == "momentum":
            O.momentum_update(params, grads, state1, lr, self.beta, self.form, self.nesterov)
        elif self.rule == "rmsprop":
            O.rmsprop_update(params, grads, state1, lr, self.rho, self.eps)
        elif self.rule == "adam":
            O.adam_update(params, grads, state1, state2, lr, self.beta1, self.beta2, self.eps, t)
        else:  # adamw: decoupled decay on the weights only
            for lo, hi, decay in ((0, n_decay, wd), (n_decay, params.size, 0.0)):
                if hi > lo:
                    O.adamw_update(
                        params[lo:hi],
                        grads[lo:hi],
                        state1[lo:hi],
                        state2[lo:hi],
                        lr,
                        self.beta1,
                        self.beta2,
                        self.eps,
                        t,
                        decay,
                    )


class ThreadSession:
    """`with ThreadSession():` as the core's; the twin has no threads of its own to pin."""

    def __init__(self) -> None:
        pass

    def __enter__(self) -> ThreadSession:
        return self

    def __exit__(self, exc_type: object, exc_value: object, traceback: object) -> Literal[False]:
        return False


class LossSpec:
    """A loss by name with its options; value and gradient with reduction "mean"."""

    def __init__(
        self, name: str, delta: float = 1.0, smooth: float = 1e-6, from_logits: bool = True
    ) -> None:
        if name not in dict(LOSSES):
            raise ValueError(f"name: expected one of {tuple(dict(LOSSES))}, got {name!r}")
        self.name, self.delta, self.smooth, self.from_logits = name, delta, smooth, from_logits

    def _options(self) -> dict[str, Any]:
        option = dict(LOSSES)[self.name]
        return {option: getattr(self, option)} if option else {}

    def value(self, pred: FloatArray, target: Array) -> float:
        # With reduction "mean", the default, a loss's forward gives a float.
        forward: Callable[..., float] = getattr(L, f"{self.name}_forward")
        return forward(pred, target, **self._options())

    def grad(self, pred: FloatArray, target: Array) -> FloatArray:
        backward: Callable[..., FloatArray] = getattr(L, f"{self.name}_backward")
        return backward(pred, target, **self._options())

    def weighted_value_and_grad(
        self, pred: FloatArray, target: Array, w: FloatArray
    ) -> tuple[float, FloatArray | None]:
        """sum_i w_i l_i / (sum_i w_i k) and its gradient, l_i row i's sum of its k unreduced
        values (k = C for the elementwise losses, else 1): unit weights give the mean. A batch
        of no weight has a zero loss and a zero gradient."""
        n = pred.shape[0]
        forward: Callable[..., float | Array] = getattr(L, f"{self.name}_forward")
        per = forward(pred, target, **self._options(), reduction="none")
        rows = np.asarray(per, dtype=np.float64).reshape(n, -1)
        k, w_sum = rows.shape[1], float(np.sum(w, dtype=np.float64))
        norm = 1.0 / (w_sum * k) if w_sum > 0 else 0.0
        value = float(np.dot(w.astype(np.float64), rows.sum(axis=1))) * norm
        if not np.isfinite(value):
            return value, None
        backward: Callable[..., FloatArray] = getattr(L, f"{self.name}_backward")
        grad = backward(pred, target, **self._options(), reduction="sum")
        scale = (w.astype(np.float64) * norm).astype(pred.dtype)
        weighted: FloatArray = grad * scale.reshape((n,) + (1,) * (grad.ndim - 1))
        return value, weighted


def _weights(sample_weight: ArrayLike, rows: int, order: IntArray, dtype: DTypeLike) -> FloatArray:
    """sample_weight checked as the core checks it: (rows,) numbers, finite and >= 0 on the
    rows the order visits; in x's dtype."""
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "biuf" or w.size == 0:
        raise (TypeError if w.dtype.kind not in "biuf" else ValueError)(
            f"sample_weight: expected a non-empty array of numbers, got {w.dtype} {w.shape}"
        )
    if w.shape != (rows,):
        raise ValueError(f"sample_weight: expected shape ({rows},), got shape {w.shape}")
    w = w.astype(dtype)
    seen = w[np.asarray(order)]
    bad = ~(np.isfinite(seen) & (seen >= 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"sample_weight: expected finite weights >= 0, got {seen[i]} at row {order[i]}"
        )
    return w


def _activation_backward(name: str, z: FloatArray, dout: FloatArray, alpha: float) -> FloatArray:
    if name == "none":
        return dout
    if name == "leaky_relu":
        return A.leaky_relu_backward(z, dout, alpha)
    backward: Callable[[FloatArray, FloatArray], FloatArray] = getattr(A, f"{name}_backward")
    return backward(z, dout)


class Network:
    """ops: [(kind, in, out, activation, alpha)]; "dense" is a Dense layer fused with the
    activation after it, "act" a lone activation layer (in == out)."""

    def __init__(self, ops: Iterable[OpTuple]) -> None:
        self.ops: list[OpTuple] = []
        n_w = 0
        width: int | None = None
        for i, op in enumerate(ops):
            kind, fin, fout, act, alpha = op
            if kind not in OP_KINDS or act not in ACTIVATIONS:
                raise ValueError(
                    f"ops[{i}]: expected kind in {OP_KINDS} and activation in {ACTIVATIONS}, got {op!r}"
                )
            if fin < 1 or fout < 1 or (kind == "act" and fin != fout) or (width not in (None, fin)):
                raise ValueError(
                    f"ops[{i}]: sizes ({fin}, {fout}) do not chain (previous width {width})"
                )
            alpha = D.check_activation(act, alpha)  # as the core: checked here, not at forward
            self.ops.append((kind, int(fin), int(fout), act, alpha))
            width = fout
            if kind == "dense":
                n_w += fin * fout
        if not self.ops:
            raise ValueError("ops: expected at least one op, got none")
        # Offsets: all weights first, then all biases.
        self._w_offsets: list[int] = []
        self._b_offsets: list[int] = []
        off_w, off_b = 0, n_w
        for kind, fin, fout, _, _ in self.ops:
            self._w_offsets.append(off_w if kind == "dense" else -1)
            self._b_offsets.append(off_b if kind == "dense" else -1)
            if kind == "dense":
                off_w, off_b = off_w + fin * fout, off_b + fout
        self.n_decay, self.n_params = n_w, off_b
        assert width is not None  # the ops are not empty
        self.in_features, self.out_features = self.ops[0][1], width
        # Per thread, per op: (input, output) of the thread's last kept forward, so concurrent
        # calls never share one and a backward differentiates its own thread's pass.
        self._local = threading.local()

    def _views(self, buf: FloatArray, i: int) -> tuple[FloatArray, FloatArray]:
        _, fin, fout, _, _ = self.ops[i]
        w, b = self._w_offsets[i], self._b_offsets[i]
        return buf[w : w + fout * fin].reshape(fout, fin), buf[b : b + fout]

    def forward(self, params: FloatArray, x: FloatArray, keep: bool = True) -> FloatArray:
        """x (N, in) -> the last op's output (N, out); with keep, this thread's next backward
        differentiates this pass."""
        cache: list[tuple[FloatArray, FloatArray, FloatArray]] = []
        for i, (kind, _, _, act, alpha) in enumerate(self.ops):
            if kind == "dense":
                w, b = self._views(params, i)
                z = D.dense_forward(x, w, b, "none")
            else:
                z = x
            a = D.activation_forward(act, z, alpha)
            cache.append((x, z, a))
            x = a
        if keep:
            self._local.cache = cache
        return x

    def backward(self, params: FloatArray, grads: FloatArray, dout: FloatArray) -> FloatArray:
        """dout = d loss / d output (N, out); writes every op's gradients into grads, returns dx."""
        cache = getattr(self._local, "cache", None)
        if cache is None:
            raise ValueError("backward: expected a forward pass on this thread first")
        for i in reversed(range(len(self.ops))):
            kind, _, _, act, alpha = self.ops[i]
            x, z, a = cache[i]
            if kind == "dense":
                w, _ = self._views(params, i)
                dw_view, db_view = self._views(grads, i)
                dout, dw, db = D.dense_backward(dout, x, w, a, act, alpha, z=z)
                dw_view[...] = dw
                db_view[...] = db
            else:
                dout = _activation_backward(act, x, dout, alpha)
        return dout

    def train_epoch(
        self,
        params: FloatArray,
        grads: FloatArray,
        state1: FloatArray,
        state2: FloatArray,
        x: FloatArray,
        y: Array,
        order: IntArray,
        batch_size: int,
        lr: float,
        t: int | IntArray,
        loss: LossSpec,
        rule: UpdateRule,
        sample_weight: ArrayLike | None = None,
    ) -> NDArray[np.float64]:
        """One epoch over the rows of x, y in `order`, in batches of batch_size (the last
        partial batch used): forward, mean loss and its gradient, backward, rule.step with
        step number t + batch + 1. t is the number of steps taken: an int, or an int64 array
        of shape (1,) advanced in place step by step. sample_weight (rows,), if given, weighs
        each row's loss (normalised per batch by the weights' sum). Returns the batch losses
        (float64), stopping after the first non-finite one (its update not applied)."""
        counter = t if isinstance(t, np.ndarray) else None
        t = int(counter[0]) if counter is not None else int(t)
        if sample_weight is not None:
            sample_weight = _weights(sample_weight, x.shape[0], order, x.dtype)
        losses = []
        for k, start in enumerate(range(0, len(order), batch_size)):
            idx = order[start : start + batch_size]
            xb, yb = x[idx], y[idx]
            pred = self.forward(params, xb)
            if sample_weight is None:
                value = loss.value(pred, yb)
            else:
                value, dpred = loss.weighted_value_and_grad(pred, yb, sample_weight[idx])
            losses.append(value)
            if not np.isfinite(value):
                break
            dout = loss.grad(pred, yb) if sample_weight is None else dpred
            assert dout is not None  # a finite weighted loss comes with its gradient
            self.backward(params, grads, dout)
            rule.step(params, grads, state1, state2, self.n_decay, lr, t + k + 1)
            if counter is not None:
                counter[0] = t + k + 1
        return np.asarray(losses, dtype=np.float64)
