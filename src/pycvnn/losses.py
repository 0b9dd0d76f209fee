"""Loss functions on the current backend: <name>(pred, target, ..., reduction="mean") -> value,
<name>_grad(...) -> d loss / d pred (pred's shape and dtype; for "none", of the sum).

Also a class per loss, built with its options (`Huber(delta=2.0)`), and `get(name, **opts)`.
"""

import inspect

import numpy as np

from . import _validate as v
from ._backend import backend


def _value(out, reduction):
    """A float for "mean"/"sum", the unreduced array for "none"."""
    return np.asarray(out) if reduction == "none" else float(out)


# ---- argument checks, one per family ------------------------------------------------------


def _elementwise(pred, target):
    pred = v.floating(pred, "pred")
    return pred, v.like(target, pred, "target", "pred")


def _cross_entropy_args(pred, target, from_logits):
    pred = v.floating(pred, "pred")
    v.ndim(pred, "pred", (2,), "scores of shape (N, C)")
    if not from_logits:
        v.in_range(pred, "pred", 0, 1, "probabilities (from_logits=False)")
    target = v.numeric(target, "target")
    if target.ndim == 1:
        return pred, v.class_ids(target, "target", *pred.shape)
    if target.ndim != 2:
        raise ValueError(
            f"target: expected class ids (N,) or probabilities (N, C), got shape {target.shape}"
        )
    target = v.like(target, pred, "target", "pred")
    v.in_range(target, "target", 0, 1, "probabilities")
    return pred, target


def _binary_cross_entropy_args(pred, target, from_logits):
    pred = v.floating(pred, "pred")
    v.binary_shape(pred, "pred")
    if not from_logits:
        v.in_range(pred, "pred", 0, 1, "probabilities (from_logits=False)")
    target = v.like(target, pred, "target", "pred")
    v.in_range(target, "target", 0, 1, "labels")
    return pred, target


def _hinge_args(pred, target):
    pred = v.floating(pred, "pred")
    v.ndim(pred, "pred", (1, 2), "scores of shape (N,), (N, 1) or (N, C)")
    if pred.ndim == 2 and pred.shape[1] > 1:
        return pred, v.class_ids(target, "target", *pred.shape)
    target = v.like(target, pred, "target", "pred")
    labels = set(np.unique(target).tolist())
    if labels <= {0, 1}:
        return pred, 2 * target - 1  # all-{0, 1} labels mean {-1, +1}
    if not labels <= {-1, 1}:
        bad = sorted(labels - {-1, 1})[0]
        raise ValueError(
            f"target: expected binary labels in {{-1, +1}} (or all in {{0, 1}}), got {bad}"
        )
    return pred, target


def _dice_args(pred, target, smooth):
    pred = v.floating(pred, "pred")
    if pred.ndim < 1:
        raise ValueError(f"pred: expected shape (N, ...), got {pred.shape}")
    v.in_range(pred, "pred", 0, 1, "probabilities")
    target = v.like(target, pred, "target", "pred")
    v.in_range(target, "target", 0, 1, "mask values")
    return pred, target


# ---- elementwise losses ---------------------------------------------------------------------


def l1(pred, target, reduction="mean"):
    """|pred - target| (mean: MAE)."""
    reduction = v.reduction(reduction)
    pred, target = _elementwise(pred, target)
    return _value(backend().l1_forward(pred, target, reduction), reduction)


def l1_grad(pred, target, reduction="mean"):
    """sign(pred - target), 0 at a tie; / pred.size for "mean"."""
    reduction = v.reduction(reduction)
    pred, target = _elementwise(pred, target)
    return backend().l1_backward(pred, target, reduction)


def l2(pred, target, reduction="mean"):
    """(pred - target)^2 (mean: MSE)."""
    reduction = v.reduction(reduction)
    pred, target = _elementwise(pred, target)
    return _value(backend().l2_forward(pred, target, reduction), reduction)


def l2_grad(pred, target, reduction="mean"):
    """2 (pred - target); / pred.size for "mean"."""
    reduction = v.reduction(reduction)
    pred, target = _elementwise(pred, target)
    return backend().l2_backward(pred, target, reduction)


mse, mse_grad = l2, l2_grad


def huber(pred, target, delta=1.0, reduction="mean"):
    """0.5 r^2 if |r| <= delta else delta (|r| - 0.5 delta), r = pred - target."""
    delta, reduction = v.number(delta, "delta", 0.0, strict=True), v.reduction(reduction)
    pred, target = _elementwise(pred, target)
    return _value(backend().huber_forward(pred, target, delta, reduction), reduction)


def huber_grad(pred, target, delta=1.0, reduction="mean"):
    """clip(pred - target, -delta, delta); / pred.size for "mean"."""
    delta, reduction = v.number(delta, "delta", 0.0, strict=True), v.reduction(reduction)
    pred, target = _elementwise(pred, target)
    return backend().huber_backward(pred, target, delta, reduction)


# ---- classification losses: per sample (N,) with "none" --------------------------------------


def cross_entropy(pred, target, from_logits=True, reduction="mean"):
    """-sum_c t_c log p_c per sample; pred logits (or probabilities), target ids (N,) or (N, C)."""
    from_logits, reduction = v.flag(from_logits, "from_logits"), v.reduction(reduction)
    pred, target = _cross_entropy_args(pred, target, from_logits)
    return _value(backend().cross_entropy_forward(pred, target, from_logits, reduction), reduction)


def cross_entropy_grad(pred, target, from_logits=True, reduction="mean"):
    """p - onehot from logits; -t / p from probabilities; / N for "mean"."""
    from_logits, reduction = v.flag(from_logits, "from_logits"), v.reduction(reduction)
    pred, target = _cross_entropy_args(pred, target, from_logits)
    return backend().cross_entropy_backward(pred, target, from_logits, reduction)


def binary_cross_entropy(pred, target, from_logits=True, reduction="mean"):
    """-(t log p + (1 - t) log(1 - p)), p = sigmoid(pred) from logits; pred (N,) or (N, 1)."""
    from_logits, reduction = v.flag(from_logits, "from_logits"), v.reduction(reduction)
    pred, target = _binary_cross_entropy_args(pred, target, from_logits)
    return _value(
        backend().binary_cross_entropy_forward(pred, target, from_logits, reduction), reduction
    )


def binary_cross_entropy_grad(pred, target, from_logits=True, reduction="mean"):
    """sigmoid(pred) - t from logits; (p - t) / (p (1 - p)) from probabilities; / N for "mean"."""
    from_logits, reduction = v.flag(from_logits, "from_logits"), v.reduction(reduction)
    pred, target = _binary_cross_entropy_args(pred, target, from_logits)
    return backend().binary_cross_entropy_backward(pred, target, from_logits, reduction)


def hinge(pred, target, reduction="mean"):
    """Binary max(0, 1 - y s); multiclass sum_{j != y} max(0, 1 - s_y + s_j)."""
    reduction = v.reduction(reduction)
    pred, target = _hinge_args(pred, target)
    return _value(backend().hinge_forward(pred, target, reduction), reduction)


def hinge_grad(pred, target, reduction="mean"):
    """Subgradient of hinge (0 where a margin is exactly 0); / N for "mean"."""
    reduction = v.reduction(reduction)
    pred, target = _hinge_args(pred, target)
    return backend().hinge_backward(pred, target, reduction)


def squared_hinge(pred, target, reduction="mean"):
    """hinge with each margin term squared."""
    reduction = v.reduction(reduction)
    pred, target = _hinge_args(pred, target)
    return _value(backend().squared_hinge_forward(pred, target, reduction), reduction)


def squared_hinge_grad(pred, target, reduction="mean"):
    """2 max(0, m) per margin term m, chained to the scores; / N for "mean"."""
    reduction = v.reduction(reduction)
    pred, target = _hinge_args(pred, target)
    return backend().squared_hinge_backward(pred, target, reduction)


def dice(pred, target, smooth=1e-6, reduction="mean"):
    """1 - (2 sum(p g) + smooth) / (sum(p) + sum(g) + smooth) per sample over non-batch axes.

    With smooth = 0 a sample whose pred and target are all zero counts as loss 0, gradient 0.
    """
    smooth, reduction = v.number(smooth, "smooth", 0.0), v.reduction(reduction)
    pred, target = _dice_args(pred, target, smooth)
    return _value(backend().dice_forward(pred, target, smooth, reduction), reduction)


def dice_grad(pred, target, smooth=1e-6, reduction="mean"):
    """d dice / d pred per sample; / N for "mean"."""
    smooth, reduction = v.number(smooth, "smooth", 0.0), v.reduction(reduction)
    pred, target = _dice_args(pred, target, smooth)
    return backend().dice_backward(pred, target, smooth, reduction)


# ---- loss objects -----------------------------------------------------------------------------


class Loss:
    """A loss with its options bound: `loss(pred, target)` the value, `loss.grad(...)` d/d pred."""

    name = None
    _fn = _grad_fn = None  # the functions above, set per subclass

    def __init__(self, reduction="mean"):
        self.reduction = v.reduction(reduction)
        self.options = {}

    def __call__(self, pred, target):
        return type(self)._fn(pred, target, **self.options, reduction=self.reduction)

    def grad(self, pred, target):
        return type(self)._grad_fn(pred, target, **self.options, reduction=self.reduction)

    def __repr__(self):
        opts = "".join(f"{k}={val!r}, " for k, val in self.options.items())
        return f"{type(self).__name__}({opts}reduction={self.reduction!r})"


class L1(Loss):
    name, _fn, _grad_fn = "l1", staticmethod(l1), staticmethod(l1_grad)


class L2(Loss):
    name, _fn, _grad_fn = "l2", staticmethod(l2), staticmethod(l2_grad)


MSE = L2


class Huber(Loss):
    name, _fn, _grad_fn = "huber", staticmethod(huber), staticmethod(huber_grad)

    def __init__(self, delta=1.0, reduction="mean"):
        super().__init__(reduction)
        self.options = {"delta": v.number(delta, "delta", 0.0, strict=True)}


class CrossEntropy(Loss):
    name, _fn, _grad_fn = (
        "cross_entropy",
        staticmethod(cross_entropy),
        staticmethod(cross_entropy_grad),
    )

    def __init__(self, from_logits=True, reduction="mean"):
        super().__init__(reduction)
        self.options = {"from_logits": v.flag(from_logits, "from_logits")}


class BinaryCrossEntropy(Loss):
    name = "binary_cross_entropy"
    _fn, _grad_fn = staticmethod(binary_cross_entropy), staticmethod(binary_cross_entropy_grad)

    def __init__(self, from_logits=True, reduction="mean"):
        super().__init__(reduction)
        self.options = {"from_logits": v.flag(from_logits, "from_logits")}


class Hinge(Loss):
    name, _fn, _grad_fn = "hinge", staticmethod(hinge), staticmethod(hinge_grad)


class SquaredHinge(Loss):
    name, _fn, _grad_fn = (
        "squared_hinge",
        staticmethod(squared_hinge),
        staticmethod(squared_hinge_grad),
    )


class Dice(Loss):
    name, _fn, _grad_fn = "dice", staticmethod(dice), staticmethod(dice_grad)

    def __init__(self, smooth=1e-6, reduction="mean"):
        super().__init__(reduction)
        self.options = {"smooth": v.number(smooth, "smooth", 0.0)}


_CLASSES = {
    "l1": L1,
    "l2": L2,
    "mse": L2,
    "huber": Huber,
    "cross_entropy": CrossEntropy,
    "binary_cross_entropy": BinaryCrossEntropy,
    "hinge": Hinge,
    "squared_hinge": SquaredHinge,
    "dice": Dice,
}


def get(name, **options):
    """A loss object by name, built with `options` (e.g. get("huber", delta=2.0)); a Loss passes through."""
    if isinstance(name, Loss):
        if options:
            raise ValueError(
                f"options: expected none when passing a Loss object, got {sorted(options)}"
            )
        return name
    cls = _CLASSES[v.name_in(name, "name", _CLASSES)]
    known = [p for p in inspect.signature(cls).parameters]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(f"options: {name!r} takes {known}, got the unknown option(s) {unknown}")
    return cls(**options)


__all__ = [
    "l1",
    "l1_grad",
    "l2",
    "l2_grad",
    "mse",
    "mse_grad",
    "huber",
    "huber_grad",
    "cross_entropy",
    "cross_entropy_grad",
    "binary_cross_entropy",
    "binary_cross_entropy_grad",
    "hinge",
    "hinge_grad",
    "squared_hinge",
    "squared_hinge_grad",
    "dice",
    "dice_grad",
    "Loss",
    "L1",
    "L2",
    "MSE",
    "Huber",
    "CrossEntropy",
    "BinaryCrossEntropy",
    "Hinge",
    "SquaredHinge",
    "Dice",
    "get",
]
