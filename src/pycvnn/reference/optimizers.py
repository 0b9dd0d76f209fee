"""Optimizer steps, in place over flat buffers (param, grad and state of one size and dtype).

Like the compiled core, they take C-contiguous float32 or float64 arrays of one dtype,
update them in place and return None; state buffers start at zeros.
"""

from __future__ import annotations

import numpy as np

from .._types import Array, ArrayLike, FloatArray
from ._common import as_flag, as_float, check_name, check_scalar

MOMENTUM_FORMS = ("ema", "heavy_ball")


def _check_buffers(**buffers: Array) -> None:
    """Every buffer a writeable C-contiguous float32/float64 ndarray, one dtype, one size, no overlap."""
    first_name, first = next(iter(buffers.items()))
    seen: list[tuple[str, object]] = []
    for name, a in buffers.items():
        if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
            got = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
            raise TypeError(f"{name}: expected a float32 or float64 ndarray, got {got}")
        if a.dtype != first.dtype:
            raise TypeError(
                f"{name}: expected dtype {first.dtype} (as {first_name}), got {a.dtype}"
            )
        if not a.flags.c_contiguous or not a.flags.writeable:
            raise ValueError(f"{name}: expected a writeable C-contiguous buffer (updated in place)")
        if a.size == 0:
            raise ValueError(f"{name}: expected a non-empty buffer, got shape {a.shape}")
        if a.size != first.size:
            raise ValueError(f"{name}: expected size {first.size} (as {first_name}), got {a.size}")
        for other_name, other in seen:  # an update reads one buffer while writing another
            if np.may_share_memory(a, other):
                raise ValueError(
                    f"{name}: expected its own memory, got a buffer overlapping {other_name}"
                )
        seen.append((name, a))


def _lr(lr: object) -> float:
    return check_scalar(lr, "lr", lambda x: x >= 0, "a number >= 0")


def _decay_rate(value: object, name: str) -> float:
    return check_scalar(value, name, lambda x: 0 <= x < 1, "a number in [0, 1)")


def _eps(eps: object) -> float:
    return check_scalar(eps, "eps", lambda x: x > 0, "a number > 0")


def _weight_decay(wd: object) -> float:
    return check_scalar(wd, "weight_decay", lambda x: x >= 0, "a number >= 0")


def _check_step(t: object) -> int:
    """As the core's integer argument: an int (bool, NumPy integers and 0-d arrays convert), a
    float or anything else is a TypeError; below 1 a ValueError."""
    if isinstance(t, np.ndarray) and t.ndim == 0 and t.dtype.kind in "biuf":
        t = int(t)
    if not isinstance(t, (int, np.integer)):
        raise TypeError(f"t: expected the step number, an int >= 1, got {type(t).__name__}")
    if t < 1:
        raise ValueError(f"t: expected the step number, an int >= 1, got {t!r}")
    return int(t)


def gd_update(param: FloatArray, grad: FloatArray, lr: float) -> None:
    """param -= lr grad."""
    _check_buffers(param=param, grad=grad)
    param -= _lr(lr) * grad.reshape(param.shape)


def momentum_update(
    param: FloatArray,
    grad: FloatArray,
    velocity: FloatArray,
    lr: float,
    beta: float = 0.9,
    form: str = "ema",
    nesterov: bool = False,
) -> None:
    """ema: v = beta v + (1 - beta) g; heavy_ball: v = beta v + g; param -= lr v (nesterov: lr (g + beta v))."""
    nesterov = as_flag(nesterov, "nesterov")  # converted before any check, as the core's
    _check_buffers(param=param, grad=grad, velocity=velocity)
    form = check_name(form, "form", MOMENTUM_FORMS)
    if nesterov and form == "ema":
        raise ValueError(
            "nesterov: expected False with form='ema' (Nesterov needs heavy_ball), got True"
        )
    lr, beta = _lr(lr), _decay_rate(beta, "beta")
    g, v = grad.reshape(param.shape), velocity.reshape(param.shape)
    v *= beta
    v += (1 - beta) * g if form == "ema" else g
    param -= lr * (g + beta * v) if nesterov else lr * v


def rmsprop_update(
    param: FloatArray,
    grad: FloatArray,
    sq: FloatArray,
    lr: float,
    rho: float = 0.9,
    eps: float = 1e-8,
) -> None:
    """s = rho s + (1 - rho) g^2; param -= lr g / (sqrt(s) + eps)."""
    _check_buffers(param=param, grad=grad, sq=sq)
    lr, rho, eps = _lr(lr), _decay_rate(rho, "rho"), _eps(eps)
    g, s = grad.reshape(param.shape), sq.reshape(param.shape)
    s *= rho
    s += (1 - rho) * g**2
    param -= lr * g / (np.sqrt(s) + eps)


def adam_update(
    param: FloatArray,
    grad: FloatArray,
    m: FloatArray,
    v: FloatArray,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    t: int,
) -> None:
    """m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; param -= lr m^ / (sqrt(v^) + eps), m^ = m/(1-b1^t), v^ = v/(1-b2^t)."""
    _check_buffers(param=param, grad=grad, m=m, v=v)
    t = _check_step(t)
    lr, eps = _lr(lr), _eps(eps)
    beta1, beta2 = _decay_rate(beta1, "beta1"), _decay_rate(beta2, "beta2")
    g, m, v = grad.reshape(param.shape), m.reshape(param.shape), v.reshape(param.shape)
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g**2
    m_hat = m / (1 - beta1**t)  # bias correction: m and v start at zero
    v_hat = v / (1 - beta2**t)
    param -= lr * m_hat / (np.sqrt(v_hat) + eps)


def adamw_update(
    param: FloatArray,
    grad: FloatArray,
    m: FloatArray,
    v: FloatArray,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    t: int,
    weight_decay: float,
) -> None:
    """param *= 1 - lr weight_decay (decoupled decay), then the Adam step."""
    _check_buffers(param=param, grad=grad, m=m, v=v)
    t = _check_step(t)  # check everything before the decay, so a bad call changes nothing
    _lr(lr), _eps(eps), _decay_rate(beta1, "beta1"), _decay_rate(beta2, "beta2")
    param *= 1 - _lr(lr) * _weight_decay(
        weight_decay
    )  # PyTorch's form: an infinite param stays infinite
    adam_update(param, grad, m, v, lr, beta1, beta2, eps, t)


def add_weight_decay(grad: FloatArray, param: FloatArray, weight_decay: float) -> None:
    """Coupled L2, in place: grad += weight_decay param."""
    _check_buffers(grad=grad, param=param)
    grad += _weight_decay(weight_decay) * param.reshape(grad.shape)


def global_norm(grad: ArrayLike) -> float:
    """sqrt(sum(grad^2)), accumulated in float64 (only reads: any numeric array)."""
    return float(np.sqrt(np.sum(np.square(as_float(grad, "grad"), dtype=np.float64))))


def clip_by_global_norm(grad: FloatArray, max_norm: float) -> float:
    """In place: grad *= max_norm / norm if norm > max_norm. Returns the norm before clipping."""
    _check_buffers(grad=grad)
    max_norm = check_scalar(max_norm, "max_norm", lambda x: x > 0, "a number > 0")
    norm = global_norm(grad)
    if norm > max_norm:
        grad *= max_norm / norm
    return norm
