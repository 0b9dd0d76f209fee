"""Optimizers: each holds its hyperparameters, a settable lr, its state and the step count.

`opt.step(model)` applies one update from the model's current gradients (for your own loop);
`model.fit(..., optimizer=opt)` uses the same rule inside the compiled epoch loop. State
survives across fit calls: a second fit continues, it does not restart Adam's moments.
Order per step: clip the raw gradients by global norm, add coupled weight decay, update.
Weight decay applies to weights, never to biases.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional, Protocol, Tuple, Type, Union

import numpy as np

from . import _validate as v
from ._backend import backend
from ._net import TrainingDiverged, arena_zeros
from ._registry import Registry
from ._types import ArrayLike, DTypeLike, FloatArray

if TYPE_CHECKING:
    from ._core import UpdateRule
    from .model import Sequential
    from .schedules import Schedule

# Who an optimizer's state belongs to: (model uid or "minimize", size, dtype name).
Owner = Tuple[str, int, str]


class GradFunction(Protocol):
    """grad(x) -> the gradient at x, or (value, gradient); a Protocol rather than a Callable
    so that a callable NamedTuple (a pycvnn.surfaces.Surface) matches it too."""

    def __call__(self, x: FloatArray, /) -> Union[ArrayLike, Tuple[float, ArrayLike]]: ...


class Optimizer:
    rule: Optional[str] = None
    n_state = 0  # state buffers the rule keeps (velocity; Adam's m and v)

    def __init__(
        self, lr: float, weight_decay: float = 0.0, clip_norm: Optional[float] = None
    ) -> None:
        self.lr = lr
        self.weight_decay = v.number(weight_decay, "weight_decay", minimum=0)
        self.clip_norm = (
            None if clip_norm is None else v.number(clip_norm, "clip_norm", 0, strict=True)
        )
        # Steps taken, in an array the compiled epoch loop advances step by step: the count
        # always matches the weights and the moments, even after a Ctrl-C mid-epoch.
        self._steps = np.zeros(1, np.int64)
        self._state: Optional[Tuple[FloatArray, FloatArray]] = None
        self._owner: Optional[Owner] = None

    @property
    def t(self) -> int:
        """The number of steps taken (Adam's bias correction counts from it)."""
        return int(self._steps[0])

    @t.setter
    def t(self, value: int) -> None:
        self._steps[0] = value

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        # 0 is legal (PyTorch allows it; a schedule may decay or underflow to it): no update.
        self._lr = v.number(value, "lr", minimum=0)

    def hyperparameters(self) -> Dict[str, Any]:
        """The rule's own hyperparameters, as UpdateRule takes them."""
        return {}

    def update_rule(self) -> UpdateRule:
        """The current backend's UpdateRule for this optimizer."""
        rule: UpdateRule = backend().UpdateRule(
            self.rule,
            **self.hyperparameters(),
            weight_decay=self.weight_decay,
            clip_norm=self.clip_norm or 0.0,
        )
        return rule

    def state(self, model: Sequential) -> Tuple[FloatArray, FloatArray]:
        """(state1, state2) for model's arena, zeros on first use or for a different model."""
        owner = (model._uid, model.n_params, np.dtype(model.dtype).name)
        return self._state_for(owner, model.n_params, model.dtype)

    def _state_for(self, owner: Owner, n: int, dtype: DTypeLike) -> Tuple[FloatArray, FloatArray]:
        """(state1, state2) for `n` parameters of `dtype`, kept while `owner` stays the same."""
        if self._owner != owner or self._state is None:
            sizes = [n if i < self.n_state else 0 for i in range(2)]
            self._state = (arena_zeros(sizes[0], dtype), arena_zeros(sizes[1], dtype))
            self._owner, self.t = owner, 0
        return self._state

    def __getstate__(self) -> Dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self._state is not None:  # back on 64-byte boundaries, as the core's loops like
            self._state = (_aligned_copy(self._state[0]), _aligned_copy(self._state[1]))

    def reset(self) -> None:
        """Forget the state and the step count (the next step starts afresh)."""
        if self._state is not None:
            for buf in self._state:
                buf[...] = 0
        self.t = 0

    def step(self, model: Sequential) -> None:
        """One update of model's weights from its current gradients (after model.backward)."""
        s1, s2 = self.state(model)
        self.update_rule().step(
            model._params, model._grads, s1, s2, model.n_decay, self.lr, self.t + 1
        )
        self.t += 1

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={val!r}" for k, val in self.hyperparameters().items())
        return f"{type(self).__name__}(lr={self.lr}{', ' + args if args else ''})"


class GD(Optimizer):
    """theta := theta - lr grad."""

    rule = "gd"

    def __init__(
        self, lr: float = 0.01, weight_decay: float = 0.0, clip_norm: Optional[float] = None
    ) -> None:
        super().__init__(lr, weight_decay, clip_norm)


SGD = GD


class Momentum(Optimizer):
    """form "ema" (the lecture's): v := beta v + (1 - beta) grad, theta := theta - lr v;
    form "heavy_ball" (PyTorch's SGD momentum): v := beta v + grad; nesterov with heavy_ball."""

    rule, n_state = "momentum", 1

    def __init__(
        self,
        lr: float = 0.01,
        beta: float = 0.9,
        form: str = "ema",
        nesterov: bool = False,
        weight_decay: float = 0.0,
        clip_norm: Optional[float] = None,
    ) -> None:
        super().__init__(lr, weight_decay, clip_norm)
        self.beta = v.number(beta, "beta", minimum=0)
        if self.beta >= 1:
            raise ValueError(f"beta: expected a value in [0, 1), got {beta!r}")
        self.form = v.name_in(form, "form", ("ema", "heavy_ball"))
        self.nesterov = v.flag(nesterov, "nesterov")
        if self.nesterov and self.form == "ema":
            raise ValueError(
                "nesterov: expected False with form='ema' (use form='heavy_ball'), got True"
            )

    def hyperparameters(self) -> Dict[str, Any]:
        return {"beta": self.beta, "form": self.form, "nesterov": self.nesterov}


class RMSProp(Optimizer):
    """s := rho s + (1 - rho) grad^2, theta := theta - lr grad / (sqrt(s) + eps)."""

    rule, n_state = "rmsprop", 1

    def __init__(
        self,
        lr: float = 0.001,
        rho: float = 0.9,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        clip_norm: Optional[float] = None,
    ) -> None:
        super().__init__(lr, weight_decay, clip_norm)
        self.rho = _unit("rho", rho)
        self.eps = v.number(eps, "eps", 0, strict=True)

    def hyperparameters(self) -> Dict[str, Any]:
        return {"rho": self.rho, "eps": self.eps}


class Adam(Optimizer):
    """PyTorch's Adam: m, v moving averages with bias correction,
    theta := theta - lr m_hat / (sqrt(v_hat) + eps)."""

    rule, n_state = "adam", 2

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        clip_norm: Optional[float] = None,
    ) -> None:
        super().__init__(lr, weight_decay, clip_norm)
        self.beta1, self.beta2 = _unit("beta1", beta1), _unit("beta2", beta2)
        self.eps = v.number(eps, "eps", 0, strict=True)

    def hyperparameters(self) -> Dict[str, Any]:
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


class AdamW(Adam):
    """Adam with decoupled weight decay: theta := theta - lr wd theta before the Adam step."""

    rule = "adamw"

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        clip_norm: Optional[float] = None,
    ) -> None:
        super().__init__(lr, beta1, beta2, eps, weight_decay, clip_norm)


def _aligned_copy(a: FloatArray) -> FloatArray:
    out = arena_zeros(a.size, a.dtype)
    out[...] = a
    return out


def _unit(name: str, value: object) -> float:
    value = v.number(value, name, minimum=0)
    if value >= 1:
        raise ValueError(f"{name}: expected a value in [0, 1), got {value!r}")
    return value


# The one list of optimizers: get() and the CLI's choices derive from it. Each class's `rule`
# names an update rule of the training core (pycvnn._core.RULES and its twin's).
OPTIMIZERS: Registry[Type[Optimizer]] = Registry("optimizer")
REGISTRY = OPTIMIZERS
OPTIMIZERS.update(gd=GD, sgd=GD, momentum=Momentum, rmsprop=RMSProp, adam=Adam, adamw=AdamW)


def get(name: Union[str, Optimizer], **options: Any) -> Optimizer:
    """An optimizer by name ("gd", "sgd", "momentum", "rmsprop", "adam", "adamw"), built with
    `options`; an Optimizer passes through."""
    return OPTIMIZERS.build(name, options, Optimizer)


# ---- optimizers on any function ----------------------------------------------------------


def minimize(
    grad: GradFunction,
    x0: ArrayLike,
    optimizer: Union[str, Optimizer] = "gd",
    steps: int = 100,
    schedule: Optional[Schedule] = None,
) -> Union[FloatArray, Tuple[FloatArray, FloatArray]]:
    """Run `optimizer` on a function for `steps` steps from x0; returns the iterates, shape
    (steps + 1, d), x0 first.

    grad(x) gets each iterate (a copy, shape (d,)) and returns the gradient there, or
    (value, gradient): then the values at the iterates, shape (steps + 1,), are returned too,
    as (iterates, values). The update is the training core's rule, the one fit runs (C++ on
    the cpp backend, the twin on numpy), with the optimizer's clipping and weight decay (every
    coordinate counts as a weight). The optimizer starts afresh and keeps its state and step
    count afterwards; schedule(step) -> lr, if given, sets its lr before each step (a
    ReduceOnPlateau is fed the values). Iterates are float64 unless x0 is float32.
    """
    if not callable(grad):
        raise TypeError(f"grad: expected a callable grad(x) -> gradient, got {grad!r}")
    x0 = v.numeric(x0, "x0")
    if x0.ndim > 1:
        raise ValueError(f"x0: expected a scalar or a vector (d,), got shape {x0.shape}")
    dtype = np.float32 if x0.dtype == np.float32 else np.float64
    x0 = v._finite(np.asarray(x0, dtype).reshape(-1), "x0")
    opt = get(optimizer)
    steps = v.integer(steps, "steps", minimum=0)
    if schedule is not None and not callable(schedule):
        raise ValueError(f"schedule: expected a callable schedule(step) -> lr, got {schedule!r}")
    d = x0.size
    x, g = arena_zeros(d, dtype), arena_zeros(d, dtype)
    x[...] = x0
    iterates = np.empty((steps + 1, d), dtype)
    iterates[0] = x0
    opt._owner = None  # afresh: zero state, step count 0
    state1, state2 = opt._state_for(("minimize", d, np.dtype(dtype).name), d, dtype)
    rule = opt.update_rule()
    values, with_values = None, None
    for k in range(steps + 1):
        with_values = _gradient(grad, x, g, k, with_values, d)
        if with_values is not False:
            if values is None:
                values = np.empty(steps + 1, np.float64)
            values[k] = with_values
        if k == steps:
            break
        if schedule is not None:
            if hasattr(schedule, "step") and values is not None and k > 0:
                schedule.step(values[k])
            opt.lr = schedule(k)
        rule.step(x, g, state1, state2, d, opt.lr, opt.t + 1)
        opt.t += 1
        iterates[k + 1] = x
    return iterates if values is None else (iterates, values)


def _gradient(
    grad: GradFunction,
    x: FloatArray,
    g: FloatArray,
    k: int,
    with_values: Union[float, bool, None],
    d: int,
) -> Union[float, bool]:
    """Call grad at x (step k), check what it returned and write the gradient into g.
    Returns the value (a float) when grad returns (value, gradient), else False."""
    out: Any = grad(x.copy())  # checked below: a gradient, or a (value, gradient) pair
    pair = isinstance(out, tuple)
    if with_values is not None and pair != (with_values is not False):
        raise ValueError(
            f"grad: returned {'a (value, gradient) pair' if pair else 'a gradient alone'} at "
            f"step {k}, but {'a gradient alone' if pair else 'a (value, gradient) pair'} before"
        )
    value: float | bool = False
    if pair:
        if len(out) != 2:
            raise ValueError(
                f"grad: expected a gradient or a (value, gradient) pair, got a "
                f"tuple of {len(out)} at step {k}"
            )
        value, out = out
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(
                f"grad: expected a number as the value, got {value!r} at step {k}"
            ) from None
    gradient = v.numeric(out, "grad")
    if gradient.size != d or gradient.ndim > 1:
        raise ValueError(
            f"grad: expected a gradient of shape ({d},) (as x0), got shape {gradient.shape} at step {k}"
        )
    g[...] = gradient.reshape(-1)
    if not (np.isfinite(g).all() and (value is False or np.isfinite(value))):
        raise TrainingDiverged(
            f"minimize diverged at step {k}: grad returned a non-finite "
            f"{'value' if value is not False and not np.isfinite(value) else 'gradient'} at "
            f"x = {x.tolist()} (try a smaller lr or clip_norm)"
        )
    return value
