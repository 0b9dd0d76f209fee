"""Stub of pycvnn._core, the compiled core. pycvnn.reference mirrors it name for name.

Conventions for every function:
- dtype: float64 input runs in float64; any other numeric input is converted to float32.
  The second array (target, dout, w, ...) is cast to the first array's dtype; integer class
  ids stay integers. Non-numeric input raises TypeError; a wrong ndim/shape, an empty array
  or an unknown name raises ValueError naming the argument.
- Inputs may be non-contiguous or Fortran-ordered (copied); outputs are new C-contiguous
  arrays. The in-place kernels (*_update, add_weight_decay, clip_by_global_norm) instead
  work on the numpy arrays given, never on a copy: a non-array, or a dtype other than
  float32/float64 (or other than the first buffer's), is a TypeError; a non-C-contiguous,
  read-only, empty, differently sized or memory-sharing buffer is a ValueError.
- Scalar parameters are checked (ValueError naming them): lr >= 0; beta, rho, beta1, beta2
  in [0, 1); eps > 0; t >= 1; weight_decay >= 0; max_norm > 0; delta > 0; smooth >= 0;
  alpha finite.
- NaN and Inf in the arrays are not checked here (the public functions refuse them): they
  propagate as through the NumPy twin's formula, so a diverging computation always shows.
  Piecewise functions keep NaN: relu(NaN) = NaN, relu'(NaN) dout = NaN (where z <= 0 the
  gradient is 0 whatever dout is), max/min/clip of NaN is NaN, a loss with a NaN prediction
  is NaN. Denormal results may be flushed to zero.
- reduction is "none", "mean" or "sum". With "none" a loss returns the unreduced array
  (per element for l1/l2/huber, per sample (N,) for the others); "mean"/"sum" return a float.
  A *_backward returns d loss / d pred with pred's shape (for "none": of the sum).
"""

from typing import Optional, Protocol, Tuple

import numpy as np

Array = np.ndarray
__version__: str

# ---- gemm ---------------------------------------------------------------------------------
def matmul(a: Array, b: Array, trans_a: bool = False, trans_b: bool = False) -> Array:
    """op(a) (m, k) @ op(b) (k, n) -> (m, n) through the GEMM entry point."""

# ---- activations: a kernel pair for every entry of ACTIVATIONS, the registry ---------------
# Entries (name, per_row, has_alpha, needs_input). <name>_forward(z[, alpha=0.01]) -> f(z) and
# <name>_backward(z, dout[, alpha=0.01]) -> dout * f'(z) (softmax: the vector-Jacobian product),
# z and dout of any one shape; per-row activations work over the last axis (z.ndim >= 1);
# needs_input: dense_backward needs the layer's z, not only its output a.
ACTIVATIONS: Tuple[Tuple[str, bool, bool, bool], ...]

class _ActivationKernel(Protocol):
    def __call__(self, z: Array, *args: Array | float) -> Array: ...

def __getattr__(name: str) -> _ActivationKernel: ...  # the <name>_forward / _backward kernels

# ---- private: the BLAS and the thread pool (pycvnn._backend uses them) ------------------
def _blas_load() -> bool:
    """Resolve the BLAS symbols; False if none are loaded."""

def _blas_name() -> str: ...
def _blas_num_threads() -> int:
    """OpenBLAS's own thread count."""

def _set_num_threads(n: int) -> None:
    """The core's thread count, from 1 to 1024 (ValueError naming n otherwise)."""

def _get_num_threads() -> int: ...
def _small_gemm_available() -> bool: ...

# ---- losses: <name>_forward -> value; <name>_backward -> d loss / d pred ------------------
# A kernel pair for every entry (name, option or None) of LOSSES, the registry; LossSpec takes
# the same names.
LOSSES: Tuple[Tuple[str, Optional[str]], ...]

# Elementwise losses: pred any shape, target.shape == pred.shape.
def l1_forward(pred: Array, target: Array, reduction: str = "mean") -> float | Array: ...
def l1_backward(pred: Array, target: Array, reduction: str = "mean") -> Array:
    """sign(pred - target), 0 at pred == target; divided by pred.size for "mean"."""

def l2_forward(pred: Array, target: Array, reduction: str = "mean") -> float | Array:
    """(pred - target)^2."""

def l2_backward(pred: Array, target: Array, reduction: str = "mean") -> Array:
    """2 (pred - target); divided by pred.size for "mean"."""

def huber_forward(
    pred: Array, target: Array, delta: float = 1.0, reduction: str = "mean"
) -> float | Array:
    """0.5 r^2 if |r| <= delta else delta (|r| - 0.5 delta), r = pred - target; delta > 0."""

def huber_backward(
    pred: Array, target: Array, delta: float = 1.0, reduction: str = "mean"
) -> Array: ...

# pred (N, C). target: int class ids (N,) in [0, C) (any integer dtype; a 1-d float target
# is a ValueError), or probabilities (N, C) (cast to pred's dtype).
# from_logits=True: pred are logits, stable log-softmax. False: pred are probabilities,
# clipped to [eps, 1] (eps 1e-7 float32, 1e-12 float64) before the log.
# Per-sample loss: -sum_c target_c log p_c. Mean is over the N samples.
def cross_entropy_forward(
    pred: Array, target: Array, from_logits: bool = True, reduction: str = "mean"
) -> float | Array: ...
def cross_entropy_backward(
    pred: Array, target: Array, from_logits: bool = True, reduction: str = "mean"
) -> Array:
    """From logits: softmax(pred) * sum_c(target_c) - target (p - onehot for class ids).
    From probabilities: -target / min(p, 1) where p > eps, 0 where p <= eps (clipped below)."""

# pred (N,) or (N, 1); target the same shape, values in [0, 1] (others: ValueError).
# from_logits=True: softplus form, max(x,0) - x t + log1p(exp(-|x|)); grad sigmoid(x) - t.
# False: -(t log p + (1-t) log(1-p)), p clipped to [eps, 1-eps];
#   grad (p - t) / (p (1 - p)) where eps < p < 1 - eps, 0 where p was clipped.
def binary_cross_entropy_forward(
    pred: Array, target: Array, from_logits: bool = True, reduction: str = "mean"
) -> float | Array: ...
def binary_cross_entropy_backward(
    pred: Array, target: Array, from_logits: bool = True, reduction: str = "mean"
) -> Array: ...

# Binary: scores (N,) or (N, 1), target the same shape with values in {-1, +1} (others are a
#   ValueError; the public losses map all-{0, 1} targets to -1/+1 first): max(0, 1 - y s). Multiclass: scores (N, C), target int class ids (N,):
#   sum_{j != y} max(0, 1 - s_y + s_j). squared_hinge squares each term.
# Subgradient 0 where a margin term is exactly 0. Per-sample values (N,) for "none".
def hinge_forward(pred: Array, target: Array, reduction: str = "mean") -> float | Array: ...
def hinge_backward(pred: Array, target: Array, reduction: str = "mean") -> Array: ...
def squared_hinge_forward(pred: Array, target: Array, reduction: str = "mean") -> float | Array: ...
def squared_hinge_backward(pred: Array, target: Array, reduction: str = "mean") -> Array: ...

# pred (N, ...) probabilities, target same shape. Per sample over all non-batch axes:
#   1 - (2 sum(p g) + smooth) / (sum(p) + sum(g) + smooth). smooth >= 0. A sample whose
#   denominator is 0 (smooth = 0, p and g all zero) has loss 0 and gradient 0, not NaN.
def dice_forward(
    pred: Array, target: Array, smooth: float = 1e-6, reduction: str = "mean"
) -> float | Array: ...
def dice_backward(
    pred: Array, target: Array, smooth: float = 1e-6, reduction: str = "mean"
) -> Array: ...

# ---- dense layer ----------------------------------------------------------------------------
# x (N, in), w (out, in), b (out,). activation: "none" or a name in ACTIVATIONS (leaky_relu
# with alpha >= 0). Forward returns a = f(x w^T + b) (N, out). Backward takes the forward's
# output a, and its z = x w^T + b for an activation that needs_input (gelu), and
# dout = d loss / d a (N, out); returns (dx (N, in), dw (out, in), db (out,)).
def dense_forward(
    x: Array, w: Array, b: Array, activation: str = "none", alpha: float = 0.01
) -> Array: ...
def dense_backward(
    dout: Array,
    x: Array,
    w: Array,
    a: Array,
    activation: str = "none",
    alpha: float = 0.01,
    z: Array | None = None,
) -> Tuple[Array, Array, Array]: ...

# ---- optimizers: in place over flat C-contiguous buffers of one float dtype ----------------
# RULES, the registry: (rule name, state buffers it keeps) for UpdateRule and <rule>_update.
# <rule>_update is UpdateRule(rule, ...).step on the whole buffer without clipping or coupled
# decay: grad is only read.
RULES: Tuple[Tuple[str, int], ...]

# param, grad and state buffers have the same size; state starts at zeros.
def gd_update(param: Array, grad: Array, lr: float) -> None:
    """param -= lr * grad."""

def momentum_update(
    param: Array,
    grad: Array,
    velocity: Array,
    lr: float,
    beta: float = 0.9,
    form: str = "ema",
    nesterov: bool = False,
) -> None:
    """ema: v = beta v + (1 - beta) g; heavy_ball: v = beta v + g.
    param -= lr * v, or with nesterov (heavy_ball only): param -= lr * (g + beta v).
    form "ema" with nesterov=True is a ValueError."""

def rmsprop_update(
    param: Array, grad: Array, sq: Array, lr: float, rho: float = 0.9, eps: float = 1e-8
) -> None:
    """s = rho s + (1 - rho) g^2; param -= lr g / (sqrt(s) + eps)."""

# The two Adam signatures kept on two lines each, as they read best side by side.
def adam_update(param: Array, grad: Array, m: Array, v: Array, lr: float,
                beta1: float, beta2: float, eps: float, t: int) -> None:  # fmt: skip
    """t >= 1 is the step number after increment. m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
    param -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)."""

def adamw_update(param: Array, grad: Array, m: Array, v: Array, lr: float,
                 beta1: float, beta2: float, eps: float, t: int, weight_decay: float) -> None:  # fmt: skip
    """param -= lr * weight_decay * param, then the Adam step (PyTorch's AdamW)."""

def add_weight_decay(grad: Array, param: Array, weight_decay: float) -> None:
    """Coupled L2, in place: grad += weight_decay * param."""

def global_norm(grad: Array) -> float:
    """sqrt(sum(grad^2)) over the flat buffer, accumulated in float64. Only reads: any numeric
    array is accepted (converted like an ordinary input)."""

def clip_by_global_norm(grad: Array, max_norm: float) -> float:
    """In place: if norm > max_norm, grad *= max_norm / norm. Returns the norm before clipping."""

# ---- training core (network.hpp/.cpp): the whole epoch in C++ -------------------------------
# Parameter arena (shared with pycvnn.model): one flat buffer of the model's dtype,
# [W1, ..., WL, b1, ..., bL], Wi (out_i, in_i) row-major. The first n_decay entries are the
# weights, the only ones weight decay touches. grads and the optimizer state buffers have the
# arena's size and dtype; a buffer the rule does not use is ignored (may be empty).

class UpdateRule:
    """One optimizer's rule and hyperparameters; lr and the step number t come per step.

    rule: "gd", "momentum", "rmsprop", "adam", "adamw"; clip_norm 0 means no clipping.
    A step: clip the raw gradients by global norm, add coupled weight decay to the weights'
    gradients (not for adamw: its decay is decoupled, on the weights only), update.
    state1: velocity / RMSProp's s / Adam's m; state2: Adam's v.
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
    ) -> None: ...
    def step(
        self,
        params: Array,
        grads: Array,
        state1: Array,
        state2: Array,
        n_decay: int,
        lr: float,
        t: int,
    ) -> None:
        """One update of params in place; t >= 1 is this step's number."""

class LossSpec:
    """A loss by name ("l1", "l2", "huber", "cross_entropy", "binary_cross_entropy", "hinge",
    "squared_hinge", "dice") with its options: the batch mean and its gradient."""

    name: str
    def __init__(
        self, name: str, delta: float = 1.0, smooth: float = 1e-6, from_logits: bool = True
    ) -> None: ...
    def value(self, pred: Array, target: Array) -> float: ...
    def grad(self, pred: Array, target: Array) -> Array: ...

class Network:
    """ops: [(kind, in, out, activation, alpha)]; kind "dense" is a Dense layer fused with the
    activation after it ("none" if none), "act" a lone activation layer (in == out).
    Safe from any number of threads: each call takes a workspace of its own from the
    network's idle ones (sized for the largest batch it has seen; no allocation per step)."""

    n_params: int
    n_decay: int
    in_features: int
    out_features: int
    def __init__(self, ops: list) -> None: ...
    def forward(self, params: Array, x: Array, keep: bool = True) -> Array:
        """x (N, in) -> the last op's output (N, out); with keep, the next backward on this
        thread differentiates this pass."""
    def backward(self, params: Array, grads: Array, dout: Array) -> Array:
        """dout (N, out) -> dx (N, in) of this thread's last kept forward; writes every op's
        gradients into grads."""
    def train_epoch(
        self,
        params: Array,
        grads: Array,
        state1: Array,
        state2: Array,
        x: Array,
        y: Array,
        order: Array,
        batch_size: int,
        lr: float,
        t: int | Array,
        loss: LossSpec,
        rule: UpdateRule,
        sample_weight: Array | None = None,
    ) -> Array:
        """The rows of x, y in `order` (int64 row indices), in batches of batch_size (the last
        partial batch used); per batch: forward, mean loss and gradient, backward, rule.step
        with step number t + batch + 1. y: class ids (int (N,)) or targets (N, out). t: the
        steps taken, an int or an int64 array (1,) advanced in place step by step.
        sample_weight (rows,), finite and >= 0: the batch loss is then sum w_i l_i / sum w_i
        (l_i the row's mean over its values; a batch of no weight has loss 0, gradient 0).
        Returns the batch losses (float64), stopping after the first non-finite one (its
        update not applied). The GIL is released for the whole call; a Ctrl-C stops it
        between batches with KeyboardInterrupt, the weights, the state and t consistent."""

class ThreadSession:
    """`with ThreadSession():` pins the thread count for the block's calls on this thread."""
    def __init__(self) -> None: ...
    def __enter__(self) -> ThreadSession: ...
    def __exit__(self, exc_type: object, exc_value: object, traceback: object) -> bool: ...
