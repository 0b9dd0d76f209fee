"""Learning-rate schedules: callables schedule(epoch) -> lr, epochs numbered from 0."""

import math


def _positive(name, value, integer=False):
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not math.isfinite(value) or value <= 0:
        kind = "a positive int" if integer else "a positive finite number"
        raise ValueError(f"{name}: expected {kind}, got {value!r}")
    return value


def _epoch(e):
    if isinstance(e, bool) or not isinstance(e, int) or e < 0:
        raise ValueError(f"epoch: expected a non-negative int, got {e!r}")
    return e


class Constant:
    """lr at every epoch."""

    def __init__(self, lr):
        self.lr = _positive("lr", lr)

    def __call__(self, epoch):
        _epoch(epoch)
        return self.lr


class StepDecay:
    """lr * gamma ** (epoch // step_size)."""

    def __init__(self, lr, step_size, gamma=0.1):
        self.lr = _positive("lr", lr)
        self.step_size = _positive("step_size", step_size, integer=True)
        self.gamma = _positive("gamma", gamma)

    def __call__(self, epoch):
        return self.lr * self.gamma ** (_epoch(epoch) // self.step_size)


class ExponentialDecay:
    """lr * gamma ** epoch."""

    def __init__(self, lr, gamma):
        self.lr = _positive("lr", lr)
        self.gamma = _positive("gamma", gamma)

    def __call__(self, epoch):
        return self.lr * self.gamma ** _epoch(epoch)


class CosineAnnealing:
    """eta_min + (lr - eta_min) (1 + cos(pi epoch / t_max)) / 2, then eta_min after t_max."""

    def __init__(self, lr, t_max, eta_min=0.0):
        self.lr = _positive("lr", lr)
        self.t_max = _positive("t_max", t_max, integer=True)
        if not (0.0 <= eta_min <= lr):
            raise ValueError(f"eta_min: expected a value in [0, lr={lr}], got {eta_min!r}")
        self.eta_min = eta_min

    def __call__(self, epoch):
        e = min(_epoch(epoch), self.t_max)
        return self.eta_min + (self.lr - self.eta_min) * (1 + math.cos(math.pi * e / self.t_max)) / 2


class Warmup:
    """lr (epoch + 1) / epochs for the first `epochs`, then then(epoch - epochs) (or lr)."""

    def __init__(self, lr, epochs, then=None):
        self.lr = _positive("lr", lr)
        self.epochs = _positive("epochs", epochs, integer=True)
        if then is not None and not callable(then):
            raise ValueError(f"then: expected a schedule (callable) or None, got {then!r}")
        self.then = then

    def __call__(self, epoch):
        e = _epoch(epoch)
        self._epoch = e
        if e < self.epochs:
            return self.lr * (e + 1) / self.epochs
        return self.lr if self.then is None else self.then(e - self.epochs)

    def step(self, metric):
        """Feed a stateful `then` (ReduceOnPlateau) once warm-up is over; returns the lr."""
        e = getattr(self, "_epoch", 0)
        if e >= self.epochs and hasattr(self.then, "step"):
            return self.then.step(metric)
        return self(e)


class ReduceOnPlateau:
    """Multiply lr by `factor` once the metric has not improved for more than `patience` steps.

    Improvement is PyTorch's relative rule (mode "min"): metric < best * (1 - threshold).
    fit feeds it the validation loss (else the training loss) at each epoch's end via step().
    """

    def __init__(self, lr, factor=0.1, patience=10, threshold=1e-4, min_lr=0.0):
        self.lr = _positive("lr", lr)
        if not (0.0 < factor < 1.0):
            raise ValueError(f"factor: expected a value in (0, 1), got {factor!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience: expected a non-negative int, got {patience!r}")
        if not (0.0 <= threshold < 1.0):
            raise ValueError(f"threshold: expected a value in [0, 1), got {threshold!r}")
        if not (0.0 <= min_lr <= lr):
            raise ValueError(f"min_lr: expected a value in [0, lr={lr}], got {min_lr!r}")
        self.factor, self.patience, self.threshold, self.min_lr = factor, patience, threshold, min_lr
        self.best = math.inf
        self.bad_epochs = 0

    def step(self, metric):
        metric = float(metric)
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

    def __call__(self, epoch):
        _epoch(epoch)
        return self.lr
