"""Learning-rate schedules: callables schedule(epoch) -> lr, epochs numbered from 0.

An lr of 0 is legal (PyTorch allows it), and a decay that underflows to 0 is not an error.
Each class's `for_run(lr, epochs)` is its default shape over a run of `epochs` epochs (what
`pycvnn train --schedule NAME` uses); REGISTRY lists them by name.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Protocol, Type

from . import _validate as v
from ._registry import Registry


class Schedule(Protocol):
    """What fit takes as a schedule: epoch (from 0) -> lr."""

    def __call__(self, epoch: int) -> float: ...


class RegisteredSchedule(Schedule, Protocol):
    """A schedule of the registry: its class also gives its default shape over a run."""

    @classmethod
    def for_run(cls, lr: float, epochs: int) -> Schedule: ...


def _lr(value: object, name: str = "lr") -> float:
    return v.number(value, name, minimum=0)


def _positive(name: str, value: object) -> float:
    return v.number(value, name, 0, strict=True)


def _count(name: str, value: object) -> int:
    return v.integer(value, name, minimum=1, exc=ValueError)


def _epoch(e: object) -> int:
    return v.integer(e, "epoch", minimum=0, exc=ValueError)


def _decayed(lr: float, gamma: float, k: int, epoch: int) -> float:
    """lr * gamma ** k: underflow gives 0, overflow is an error naming gamma."""
    if lr == 0.0:
        return 0.0
    try:
        value = lr * gamma**k
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise ValueError(
            f"gamma: lr * gamma ** {k} = {lr} * {gamma} ** {k} overflows a float at epoch {epoch}"
        )
    return value


class Constant:
    """lr at every epoch."""

    @classmethod
    def for_run(cls, lr: float, epochs: int) -> Constant:
        return cls(lr)

    def __init__(self, lr: float) -> None:
        self.lr = _lr(lr)

    def __call__(self, epoch: int) -> float:
        _epoch(epoch)
        return self.lr


class StepDecay:
    """lr * gamma ** (epoch // step_size)."""

    @classmethod
    def for_run(cls, lr: float, epochs: int) -> StepDecay:
        return cls(lr, step_size=max(1, epochs // 3), gamma=0.1)

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1) -> None:
        self.lr = _lr(lr)
        self.step_size = _count("step_size", step_size)
        self.gamma = _positive("gamma", gamma)

    def __call__(self, epoch: int) -> float:
        e = _epoch(epoch)
        return _decayed(self.lr, self.gamma, e // self.step_size, e)


class ExponentialDecay:
    """lr * gamma ** epoch."""

    @classmethod
    def for_run(cls, lr: float, epochs: int) -> ExponentialDecay:
        return cls(lr, gamma=0.95)

    def __init__(self, lr: float, gamma: float) -> None:
        self.lr = _lr(lr)
        self.gamma = _positive("gamma", gamma)

    def __call__(self, epoch: int) -> float:
        e = _epoch(epoch)
        return _decayed(self.lr, self.gamma, e, e)


class CosineAnnealing:
    """eta_min + (lr - eta_min) (1 + cos(pi epoch / t_max)) / 2, then eta_min after t_max."""

    @classmethod
    def for_run(cls, lr: float, epochs: int) -> CosineAnnealing:
        return cls(lr, t_max=max(1, epochs))

    def __init__(self, lr: float, t_max: int, eta_min: float = 0.0) -> None:
        self.lr = _lr(lr)
        self.t_max = _count("t_max", t_max)
        self.eta_min = _lr(eta_min, "eta_min")
        if self.eta_min > self.lr:
            raise ValueError(f"eta_min: expected a value in [0, lr={self.lr}], got {eta_min!r}")

    def __call__(self, epoch: int) -> float:
        e = min(_epoch(epoch), self.t_max)
        return (
            self.eta_min + (self.lr - self.eta_min) * (1 + math.cos(math.pi * e / self.t_max)) / 2
        )


class Warmup:
    """lr (epoch + 1) / epochs for the first `epochs`, then then(epoch - epochs) (or lr)."""

    @classmethod
    def for_run(cls, lr: float, epochs: int) -> Warmup:
        """A tenth of the run warming up, then cosine annealing over the rest."""
        warm = max(1, epochs // 10)
        return cls(lr, warm, then=CosineAnnealing(lr, t_max=max(1, epochs - warm)))

    def __init__(self, lr: float, epochs: int, then: Optional[Schedule] = None) -> None:
        self.lr = _lr(lr)
        self.epochs = _count("epochs", epochs)
        if then is not None and not callable(then):
            raise ValueError(f"then: expected a schedule (callable) or None, got {then!r}")
        self.then = then

    def __call__(self, epoch: int) -> float:
        e = _epoch(epoch)
        self._epoch = e
        if e < self.epochs:
            return self.lr * (e + 1) / self.epochs
        return self.lr if self.then is None else self.then(e - self.epochs)

    def step(self, metric: float) -> float:
        """Feed a stateful `then` (ReduceOnPlateau) once warm-up is over; returns the lr."""
        e: int = getattr(self, "_epoch", 0)
        if e >= self.epochs and self.then is not None and hasattr(self.then, "step"):
            lr: float = self.then.step(metric)
            return lr
        return self(e)


class ReduceOnPlateau:
    """Multiply lr by `factor` once the metric has not improved for more than `patience` steps.

    Improvement is PyTorch's relative rule (mode "min"): metric < best * (1 - threshold).
    fit feeds it the validation loss (else the training loss) at each epoch's end via step().
    """

    @classmethod
    def for_run(cls, lr: float, epochs: int) -> ReduceOnPlateau:
        return cls(lr, factor=0.5, patience=3)

    def __init__(
        self,
        lr: float,
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        min_lr: float = 0.0,
    ) -> None:
        self.lr = _lr(lr)
        self.factor = v.number(factor, "factor")
        if not (0.0 < self.factor < 1.0):
            raise ValueError(f"factor: expected a value in (0, 1), got {factor!r}")
        self.patience = v.integer(patience, "patience", minimum=0, exc=ValueError)
        self.threshold = v.number(threshold, "threshold")
        if not (0.0 <= self.threshold < 1.0):
            raise ValueError(f"threshold: expected a value in [0, 1), got {threshold!r}")
        self.min_lr = _lr(min_lr, "min_lr")
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr: expected a value in [0, lr={self.lr}], got {min_lr!r}")
        self.best = math.inf
        self.bad_epochs = 0

    def step(self, metric: float) -> float:
        try:
            metric = float(metric)
        except (TypeError, ValueError):
            raise TypeError(f"metric: expected a number, got {metric!r}") from None
        if not math.isfinite(metric):
            raise ValueError(f"metric: expected a finite number, got {metric!r}")
        if metric < self.best * (1.0 - self.threshold):
            self.best, self.bad_epochs = metric, 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            new_lr = max(self.lr * self.factor, self.min_lr)
            if self.lr - new_lr > 1e-8:  # PyTorch skips reductions smaller than eps
                self.lr = new_lr
            self.bad_epochs = 0
        return self.lr

    def __call__(self, epoch: int) -> float:
        _epoch(epoch)
        return self.lr


# The one list of schedules: get() and the CLI's choices derive from it.
REGISTRY: Registry[Type[RegisteredSchedule]] = Registry("schedule")
REGISTRY.update(
    constant=Constant,
    step=StepDecay,
    exponential=ExponentialDecay,
    cosine=CosineAnnealing,
    warmup=Warmup,
    plateau=ReduceOnPlateau,
)


def get(name: str, **options: Any) -> Schedule:
    """A schedule by name built with `options` (e.g. get("step", lr=0.1, step_size=10))."""
    return REGISTRY.build(name, options)
