"""Losses: <name>_forward(pred, target, ...) -> value, <name>_backward -> d loss / d pred.

reduction "none" gives the unreduced array (per element for l1/l2/huber, per sample (N,)
for the others); "mean" and "sum" give its mean and sum as a float. A backward returns
pred's shape; for "none" it is the gradient of the sum. NaN and Inf propagate through these
formulas as NumPy computes them; the piecewise ones (hinge's margins) keep NaN explicitly.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .._types import Array, ArrayLike, FloatArray, IntArray
from ._common import (
    array_out,
    as_float,
    check_ndim,
    check_scalar,
    class_ids,
    eps_for,
    grad_scale,
    like,
    reduce,
)
from .activations import keep_nan, sigmoid_forward, softmax_forward

# ---- elementwise: pred any shape, target the same shape ---------------------------------


def _residual(pred: ArrayLike, target: ArrayLike) -> FloatArray:
    pred = as_float(pred, "pred")
    return pred - like(target, pred, "target", "pred")


def l1_forward(pred: ArrayLike, target: ArrayLike, reduction: str = "mean") -> float | Array:
    """|pred - target| per element."""
    return reduce(np.abs(_residual(pred, target)), reduction)


@array_out
def l1_backward(pred: ArrayLike, target: ArrayLike, reduction: str = "mean") -> FloatArray:
    """sign(pred - target), 0 at a tie; / pred.size for "mean"."""
    r = _residual(pred, target)
    return np.sign(r) * grad_scale(reduction, r.size)


def l2_forward(pred: ArrayLike, target: ArrayLike, reduction: str = "mean") -> float | Array:
    """(pred - target)^2 per element."""
    return reduce(_residual(pred, target) ** 2, reduction)


@array_out
def l2_backward(pred: ArrayLike, target: ArrayLike, reduction: str = "mean") -> FloatArray:
    """2 (pred - target); / pred.size for "mean"."""
    r = _residual(pred, target)
    return 2 * r * grad_scale(reduction, r.size)


def _check_delta(delta: object) -> float:
    return check_scalar(delta, "delta", lambda x: x > 0, "a number > 0")


def huber_forward(
    pred: ArrayLike, target: ArrayLike, delta: float = 1.0, reduction: str = "mean"
) -> float | Array:
    """0.5 r^2 if |r| <= delta else delta (|r| - 0.5 delta), r = pred - target."""
    delta = _check_delta(delta)
    r = _residual(pred, target)
    return reduce(
        np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta)), reduction
    )


@array_out
def huber_backward(
    pred: ArrayLike, target: ArrayLike, delta: float = 1.0, reduction: str = "mean"
) -> FloatArray:
    """r if |r| <= delta else delta sign(r); / pred.size for "mean"."""
    delta = _check_delta(delta)
    r = _residual(pred, target)
    return np.clip(r, -delta, delta) * grad_scale(reduction, r.size)


# ---- cross-entropy: pred (N, C), target class ids (N,) or probabilities (N, C) ----------


def _ce_inputs(
    pred: ArrayLike, target: ArrayLike
) -> tuple[FloatArray, IntArray | None, FloatArray | None]:
    """pred (N, C), and the target as class ids (N,) or as an (N, C) matrix (the other None)."""
    pred = as_float(pred, "pred")
    check_ndim(pred, "pred", (2,), "shape (N, C)")
    n, c = pred.shape
    if np.ndim(target) == 1:
        return pred, class_ids(target, n, c), None
    return pred, None, like(target, pred, "target", "pred")


def _log_softmax(z: FloatArray) -> FloatArray:
    """z - logsumexp(z) per row, with the max subtracted first."""
    shifted = z - z.max(axis=1, keepdims=True)
    log_p: FloatArray = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return log_p


def cross_entropy_forward(
    pred: ArrayLike, target: ArrayLike, from_logits: bool = True, reduction: str = "mean"
) -> float | Array:
    """-sum_c t_c log p_c per sample (N,), -log p_y for class ids; log p = log_softmax(pred), or
    log clip(pred, eps, 1)."""
    pred, ids, t = _ce_inputs(pred, target)
    log_p = _log_softmax(pred) if from_logits else np.log(np.clip(pred, eps_for(pred.dtype), 1))
    if ids is not None:  # only p_y: a -inf logit elsewhere is a zero probability, not 0 * -inf
        return reduce(-log_p[np.arange(len(ids)), ids], reduction)
    assert t is not None  # _ce_inputs gives the class ids or the matrix
    return reduce(-(t * log_p).sum(axis=1), reduction)


def cross_entropy_backward(
    pred: ArrayLike, target: ArrayLike, from_logits: bool = True, reduction: str = "mean"
) -> FloatArray:
    """softmax(pred) sum_c t_c - t from logits; -t / p where p > eps (else 0) from probabilities.
    With class ids t is the one-hot row, and from probabilities only p_y has a gradient."""
    pred, ids, t = _ce_inputs(pred, target)
    rows, eps = np.arange(pred.shape[0]), eps_for(pred.dtype)
    if from_logits:
        if ids is not None:
            g = softmax_forward(pred)
            g[rows, ids] -= 1
        else:
            assert t is not None  # _ce_inputs gives the class ids or the matrix
            g = softmax_forward(pred) * t.sum(axis=1, keepdims=True) - t
    elif ids is not None:
        p = pred[rows, ids]
        g = np.zeros_like(pred)
        g[rows, ids] = -1 / np.clip(p, eps, 1) * keep_nan(p, p > eps)  # the clip is flat below eps
    else:
        assert t is not None
        g = -t / np.clip(pred, eps, 1) * keep_nan(pred, pred > eps)
    return g * grad_scale(reduction, pred.shape[0])


# ---- binary cross-entropy: pred (N,) or (N, 1), target the same shape in [0, 1] ---------


def _binary_inputs(pred: ArrayLike, target: ArrayLike) -> tuple[FloatArray, FloatArray]:
    pred = as_float(pred, "pred")
    if not (pred.ndim == 1 or (pred.ndim == 2 and pred.shape[1] == 1)):
        raise ValueError(f"pred: expected binary scores of shape (N,) or (N, 1), got {pred.shape}")
    target = like(target, pred, "target", "pred")
    if not np.all((target >= 0) & (target <= 1)):
        raise ValueError(
            f"target: expected values in [0, 1], got values in [{target.min()}, {target.max()}]"
        )
    return pred, target


def binary_cross_entropy_forward(
    pred: ArrayLike, target: ArrayLike, from_logits: bool = True, reduction: str = "mean"
) -> float | Array:
    """Per sample (N,): max(x,0) - x t + log1p(exp(-|x|)) from logits x; else -(t log p + (1-t) log(1-p))."""
    x, t = _binary_inputs(pred, target)
    if from_logits:
        per = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))  # softplus form: no overflow
    else:
        eps = eps_for(x.dtype)
        p = np.clip(x, eps, 1 - eps)
        per = -(t * np.log(p) + (1 - t) * np.log1p(-p))
    return reduce(per.reshape(x.shape[0]), reduction)


def binary_cross_entropy_backward(
    pred: ArrayLike, target: ArrayLike, from_logits: bool = True, reduction: str = "mean"
) -> FloatArray:
    """sigmoid(x) - t from logits; (p - t) / (p (1 - p)) where eps < p < 1 - eps (else 0)."""
    x, t = _binary_inputs(pred, target)
    if from_logits:
        g = sigmoid_forward(x) - t
    else:
        eps = eps_for(x.dtype)
        p = np.clip(x, eps, 1 - eps)
        g = (p - t) / (p * (1 - p)) * ((x > eps) & (x < 1 - eps))  # the clip is flat outside
    return g * grad_scale(reduction, x.shape[0])


# ---- hinge: binary scores (N,)/(N, 1) with y in {-1, +1}, or (N, C) with class ids -------


def _margins(
    pred: ArrayLike, target: ArrayLike
) -> tuple[FloatArray, FloatArray, Callable[[FloatArray], FloatArray]]:
    """Margin terms m (N, K): binary 1 - y s (K = 1); multiclass 1 - s_y + s_j, 0 at j = y.

    Returns (pred, m, dm_ds) where dm_ds maps d loss / d m (N, K) to d loss / d pred.
    """
    pred = as_float(pred, "pred")
    check_ndim(pred, "pred", (1, 2), "scores of shape (N,), (N, 1) or (N, C)")
    n = pred.shape[0]
    if pred.ndim == 1 or pred.shape[1] == 1:
        y = like(target, pred, "target", "pred").reshape(n, 1)
        if np.any(np.abs(y) != 1):
            raise ValueError(
                f"target: expected values in {{-1, +1}} for binary scores, got {y[np.abs(y) != 1][0]}"
            )
        m = 1 - y * pred.reshape(n, 1)
        return pred, m, lambda dm: (-y * dm).reshape(pred.shape)
    rows, ids = np.arange(n), class_ids(target, n, pred.shape[1])
    m = 1 - pred[rows, ids][:, None] + pred
    m[rows, ids] = 0  # no term for j = y

    def dm_ds(dm: FloatArray) -> FloatArray:
        ds: FloatArray = dm.copy()
        ds[rows, ids] = -dm.sum(axis=1)  # s_y enters every term with a minus sign
        return ds

    return pred, m, dm_ds


def hinge_forward(pred: ArrayLike, target: ArrayLike, reduction: str = "mean") -> float | Array:
    """Per sample (N,): sum over terms of max(0, m)."""
    _, m, _ = _margins(pred, target)
    return reduce(np.maximum(m, 0).sum(axis=1), reduction)


def hinge_backward(pred: ArrayLike, target: ArrayLike, reduction: str = "mean") -> FloatArray:
    """d/dm max(0, m) = [m > 0] (0 at the kink, NaN at NaN), chained to the scores."""
    pred, m, dm_ds = _margins(pred, target)
    return dm_ds(keep_nan(m, (m > 0).astype(pred.dtype))) * grad_scale(reduction, pred.shape[0])


def squared_hinge_forward(
    pred: ArrayLike, target: ArrayLike, reduction: str = "mean"
) -> float | Array:
    """Per sample (N,): sum over terms of max(0, m)^2."""
    _, m, _ = _margins(pred, target)
    return reduce((np.maximum(m, 0) ** 2).sum(axis=1), reduction)


def squared_hinge_backward(
    pred: ArrayLike, target: ArrayLike, reduction: str = "mean"
) -> FloatArray:
    """d/dm max(0, m)^2 = 2 max(0, m), chained to the scores."""
    pred, m, dm_ds = _margins(pred, target)
    return dm_ds(2 * np.maximum(m, 0)) * grad_scale(reduction, pred.shape[0])


# ---- dice: pred (N, ...) probabilities, target the same shape ---------------------------


def _dice_parts(
    pred: ArrayLike, target: ArrayLike, smooth: object
) -> tuple[FloatArray, FloatArray, Array, Array, Array]:
    smooth = check_scalar(smooth, "smooth", lambda x: x >= 0, "a number >= 0")
    pred = as_float(pred, "pred")
    smooth = float(pred.dtype.type(smooth))  # the core takes smooth in pred's dtype
    if pred.ndim < 1:
        raise ValueError(f"pred: expected shape (N, ...), got {pred.shape}")
    n = pred.shape[0]
    p, g = pred.reshape(n, -1), like(target, pred, "target", "pred").reshape(n, -1)
    # Sums over a whole image in float64, as the core: in float32 den^2 underflows (den 1e-36).
    num = 2 * (p * g).sum(axis=1, dtype=np.float64) + smooth  # 2 sum(p g) + smooth
    den = (p + g).sum(axis=1, dtype=np.float64) + smooth  # sum(p) + sum(g) + smooth
    # An all-zero sample with smooth = 0 is 0/0: define it as loss 0, gradient 0 (as the core).
    empty = den == 0
    return pred, g, num + empty, den + empty, empty


def dice_forward(
    pred: ArrayLike, target: ArrayLike, smooth: float = 1e-6, reduction: str = "mean"
) -> float | Array:
    """Per sample (N,): 1 - (2 sum(p g) + smooth) / (sum(p) + sum(g) + smooth)."""
    pred, _, num, den, _ = _dice_parts(pred, target, smooth)
    return reduce((1 - num / den).astype(pred.dtype), reduction)


def dice_backward(
    pred: ArrayLike, target: ArrayLike, smooth: float = 1e-6, reduction: str = "mean"
) -> FloatArray:
    """d/dp_k = -(2 g_k den - num) / den^2, per sample."""
    pred, g, num, den, empty = _dice_parts(pred, target, smooth)
    scale = grad_scale(reduction, pred.shape[0])
    # d/dp_k = num / den^2 - 2 g_k / den: both factors in float64, then pred's dtype (as the core;
    # / den twice, as den**2 underflows for den below 1.5e-154)
    a = (scale * num / den / den * ~empty).astype(pred.dtype)[:, None]
    b = (scale * 2 / den * ~empty).astype(pred.dtype)[:, None]
    return (a - b * g).reshape(pred.shape)
