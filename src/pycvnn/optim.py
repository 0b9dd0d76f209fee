"""Optimizers: each holds its hyperparameters, a settable lr, its state and the step count.

`opt.step(model)` applies one update from the model's current gradients (for your own loop);
`model.fit(..., optimizer=opt)` uses the same rule inside the compiled epoch loop. State
survives across fit calls: a second fit continues, it does not restart Adam's moments.
Order per step: clip the raw gradients by global norm, add coupled weight decay, update.
Weight decay applies to weights, never to biases.
"""

import numpy as np

from . import _validate as v
from ._backend import backend
from ._net import arena_zeros
from ._registry import Registry


class Optimizer:
    rule = None
    n_state = 0  # state buffers the rule keeps (velocity; Adam's m and v)

    def __init__(self, lr, weight_decay=0.0, clip_norm=None):
        self.lr = lr
        self.weight_decay = v.number(weight_decay, "weight_decay", minimum=0)
        self.clip_norm = (
            None if clip_norm is None else v.number(clip_norm, "clip_norm", 0, strict=True)
        )
        # Steps taken, in an array the compiled epoch loop advances step by step: the count
        # always matches the weights and the moments, even after a Ctrl-C mid-epoch.
        self._steps = np.zeros(1, np.int64)
        self._state = None
        self._owner = None

    @property
    def t(self):
        """The number of steps taken (Adam's bias correction counts from it)."""
        return int(self._steps[0])

    @t.setter
    def t(self, value):
        self._steps[0] = value

    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, value):
        # 0 is legal (PyTorch allows it; a schedule may decay or underflow to it): no update.
        self._lr = v.number(value, "lr", minimum=0)

    def hyperparameters(self):
        """The rule's own hyperparameters, as UpdateRule takes them."""
        return {}

    def update_rule(self):
        """The current backend's UpdateRule for this optimizer."""
        return backend().UpdateRule(
            self.rule,
            **self.hyperparameters(),
            weight_decay=self.weight_decay,
            clip_norm=self.clip_norm or 0.0,
        )

    def state(self, model):
        """(state1, state2) for model's arena, zeros on first use or for a different model."""
        key = (id(model), model.n_params, model.dtype)
        if self._owner != key:
            sizes = [model.n_params if i < self.n_state else 0 for i in range(2)]
            self._state = tuple(arena_zeros(n, model.dtype) for n in sizes)
            self._owner, self.t = key, 0
        return self._state

    def reset(self):
        """Forget the state and the step count (the next step starts afresh)."""
        if self._state is not None:
            for buf in self._state:
                buf[...] = 0
        self.t = 0

    def step(self, model):
        """One update of model's weights from its current gradients (after model.backward)."""
        s1, s2 = self.state(model)
        self.update_rule().step(
            model._params, model._grads, s1, s2, model.n_decay, self.lr, self.t + 1
        )
        self.t += 1

    def __repr__(self):
        args = ", ".join(f"{k}={val!r}" for k, val in self.hyperparameters().items())
        return f"{type(self).__name__}(lr={self.lr}{', ' + args if args else ''})"


class GD(Optimizer):
    """theta := theta - lr grad."""

    rule = "gd"

    def __init__(self, lr=0.01, weight_decay=0.0, clip_norm=None):
        super().__init__(lr, weight_decay, clip_norm)


SGD = GD


class Momentum(Optimizer):
    """form "ema" (the lecture's): v := beta v + (1 - beta) grad, theta := theta - lr v;
    form "heavy_ball" (PyTorch's SGD momentum): v := beta v + grad; nesterov with heavy_ball."""

    rule, n_state = "momentum", 1

    def __init__(
        self, lr=0.01, beta=0.9, form="ema", nesterov=False, weight_decay=0.0, clip_norm=None
    ):
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

    def hyperparameters(self):
        return {"beta": self.beta, "form": self.form, "nesterov": self.nesterov}


class RMSProp(Optimizer):
    """s := rho s + (1 - rho) grad^2, theta := theta - lr grad / (sqrt(s) + eps)."""

    rule, n_state = "rmsprop", 1

    def __init__(self, lr=0.001, rho=0.9, eps=1e-8, weight_decay=0.0, clip_norm=None):
        super().__init__(lr, weight_decay, clip_norm)
        self.rho = _unit("rho", rho)
        self.eps = v.number(eps, "eps", 0, strict=True)

    def hyperparameters(self):
        return {"rho": self.rho, "eps": self.eps}


class Adam(Optimizer):
    """PyTorch's Adam: m, v moving averages with bias correction,
    theta := theta - lr m_hat / (sqrt(v_hat) + eps)."""

    rule, n_state = "adam", 2

    def __init__(
        self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, clip_norm=None
    ):
        super().__init__(lr, weight_decay, clip_norm)
        self.beta1, self.beta2 = _unit("beta1", beta1), _unit("beta2", beta2)
        self.eps = v.number(eps, "eps", 0, strict=True)

    def hyperparameters(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


class AdamW(Adam):
    """Adam with decoupled weight decay: theta := theta - lr wd theta before the Adam step."""

    rule = "adamw"

    def __init__(
        self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, clip_norm=None
    ):
        super().__init__(lr, beta1, beta2, eps, weight_decay, clip_norm)


def _unit(name, value):
    value = v.number(value, name, minimum=0)
    if value >= 1:
        raise ValueError(f"{name}: expected a value in [0, 1), got {value!r}")
    return value


# The one list of optimizers: get() and the CLI's choices derive from it. Each class's `rule`
# names an update rule of the training core (pycvnn._core.RULES and its twin's).
REGISTRY = OPTIMIZERS = Registry("optimizer")
OPTIMIZERS.update(gd=GD, sgd=GD, momentum=Momentum, rmsprop=RMSProp, adam=Adam, adamw=AdamW)


def get(name, **options):
    """An optimizer by name ("gd", "sgd", "momentum", "rmsprop", "adam", "adamw"), built with
    `options`; an Optimizer passes through."""
    return OPTIMIZERS.build(name, options, Optimizer)
