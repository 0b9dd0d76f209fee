"""A playground session's configuration: the defaults, the limits, what the page may choose
(derived from pycvnn's registries), and the checks that turn a client's JSON into a complete
configuration or an error naming the field.
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import (
    Any,
    Callable,
    Collection,
    Dict,
    List,
    Literal,
    Mapping,
    Optional,
    TypedDict,
    TypeVar,
    Union,
    cast,
)

from .. import _validate as v
from .. import losses, optim, schedules
from ..activations import names as activation_names
from .data import DATASETS, FEATURES

T = TypeVar("T")
# A session's configuration: JSON values by field name (DEFAULTS' fields, all checked).
Config = Dict[str, Any]


class Limits(TypedDict):
    """The bounds of the settings: a count, or [lowest, highest]."""

    layers: int
    neurons: int
    n: List[int]
    size: List[int]
    noise: List[float]
    train_fraction: List[float]
    epochs: List[int]
    batch_size: List[int]
    seed: List[int]


LIMITS: Limits = {
    "layers": 6,
    "neurons": 8,
    "n": [10, 10_000],
    "size": [8, 256],
    "noise": [0, 0.5],
    "train_fraction": [0.1, 0.9],
    "epochs": [1, 1000],
    "batch_size": [1, 10_000],
    "seed": [0, 2**32 - 1],
}

DEFAULTS: Config = {
    "dataset": "circle",
    "noise": 0.1,
    "n": 500,
    "train_fraction": 0.5,
    "seed": 0,
    "features": ["x1", "x2"],
    "hidden": [4, 2],
    "activation": "tanh",
    "loss": "cross_entropy",
    "optimizer": {"name": "adam", "lr": 0.03},
    "batch_size": 10,
    "weight_decay": 0.0,
    "schedule": {"name": "constant"},
}
REGRESSION_LOSS = "l2"  # a regression data set's loss when the body names none

# The activations a hidden layer may have: the registry's elementwise ones and "linear" (none),
# the lecture's four first.
_FIRST = ("tanh", "sigmoid", "relu", "leaky_relu")
ACTIVATIONS = (
    *(a for a in _FIRST if a in activation_names(per_row=False)),
    "linear",
    *(a for a in activation_names(per_row=False) if a not in _FIRST),
)
LOSSES = {
    "classification": losses.names("classes"),
    "regression": losses.names("values"),
}

# Options the session itself sets, never a client through the optimizer or schedule object.
_OWNED = {"lr", "weight_decay", "clip_norm", "then"}
# Values for schedule options the library leaves without a default, sized for a playground run.
_SCHEDULE_DEFAULTS: dict[str, dict[str, float]] = {
    "step": {"step_size": 100, "gamma": 0.5},
    "exponential": {"gamma": 0.999},
    "cosine": {"t_max": 1000},
    "warmup": {"epochs": 100},
}


class ConfigError(ValueError):
    """A bad configuration; the message starts with the field's name."""


def _hyperparameters(cls: type, extra: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """A class's keyword options with their defaults (extra's where it has none)."""
    found = {
        name: p.default
        for name, p in inspect.signature(cls).parameters.items()
        if name not in _OWNED
    }
    found.update(extra or {})
    return {k: (None if val is inspect.Parameter.empty else val) for k, val in found.items()}


def _unique(registry: Mapping[str, type]) -> dict[str, type]:
    """name -> class, the first name of a class registered under several (sgd is gd)."""
    seen: dict[str, type] = {}
    for name, cls in registry.items():
        if cls not in seen.values():
            seen[name] = cls
    return seen


OPTIMIZERS = {name: _hyperparameters(cls) for name, cls in _unique(optim.OPTIMIZERS).items()}
SCHEDULES = {
    name: _hyperparameters(cls, _SCHEDULE_DEFAULTS.get(name))
    for name, cls in schedules.REGISTRY.items()
}


def options() -> dict[str, Any]:
    """What the page offers, the defaults and the limits."""
    return {
        "datasets": {name: kind for name, (kind, _) in DATASETS.items()},
        "features": list(FEATURES),
        "activations": list(ACTIVATIONS),
        "losses": {kind: list(names) for kind, names in LOSSES.items()},
        "optimizers": OPTIMIZERS,
        "schedules": SCHEDULES,
        "defaults": DEFAULTS,
        "limits": LIMITS,
    }


# ---- checks --------------------------------------------------------------------------------


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _checked(field: str, check: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """check(*args, **kwargs), its ValueError/TypeError re-raised as a ConfigError naming `field`."""
    try:
        return check(*args, **kwargs)
    except (ValueError, TypeError, OverflowError) as err:
        raise ConfigError(f"{field}.{err}" if field else str(err)) from None


def _int_in(value: object, field: str, lo: int, hi: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or not lo <= int(value) <= hi  # int() of an Integral is exact
    ):
        raise ConfigError(f"{field}: expected an int from {lo} to {hi}, got {_short(value)}")
    return int(value)


def _number_in(value: object, field: str, lo: float, hi: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        # Before isfinite, which overflows on a huge int; typeshed's Real has no comparison
        # with float, but a Real compares as one.
        or not lo <= cast(float, value) <= hi
        or not math.isfinite(value)
    ):
        raise ConfigError(f"{field}: expected a number from {lo} to {hi}, got {_short(value)}")
    return float(value)


def _name(value: object, field: str, known: Collection[str]) -> str:
    if not isinstance(value, str) or value not in known:
        raise ConfigError(f"{field}: expected one of {list(known)}, got {_short(value)}")
    return value


def _object(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{field}: expected a JSON object, got {_short(value)}")
    return value


def _known_keys(body: Mapping[str, Any], field: str, known: Collection[str]) -> None:
    unknown = sorted(set(body) - set(known))
    if unknown:
        prefix = f"{field}." if field else ""
        raise ConfigError(
            f"{prefix}{unknown[0]}: unknown field; expected one of {sorted(known)}, "
            f"got {_short(body[unknown[0]])}"
        )


def _features(value: object) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ConfigError(
            f"features: expected a non-empty list of {list(FEATURES)}, got {_short(value)}"
        )
    for i, name in enumerate(value):
        _name(name, f"features[{i}]", FEATURES)
    if len(set(value)) != len(value):
        raise ConfigError(f"features: expected each feature at most once, got {_short(value)}")
    return list(value)


def _hidden(value: object) -> list[int]:
    if not isinstance(value, list) or len(value) > LIMITS["layers"]:
        raise ConfigError(
            f"hidden: expected a list of at most {LIMITS['layers']} layer sizes, got {_short(value)}"
        )
    return [_int_in(n, f"hidden[{i}]", 1, LIMITS["neurons"]) for i, n in enumerate(value)]


def _batch_size(value: object) -> Union[int, Literal["full"]]:
    if value == "full":
        return "full"
    lo, hi = LIMITS["batch_size"]
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or not lo <= int(value) <= hi  # int() of an Integral is exact
    ):
        raise ConfigError(
            f"batch_size: expected an int from {lo} to {hi} or 'full', got {_short(value)}"
        )
    return int(value)


def _spec(value: object, field: str, known: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """{"name": ..., options...} with the name checked and the options completed from known."""
    value = _object(value, field)
    name = _name(value.get("name"), f"{field}.name", known)
    allowed = {"name", *known[name]} | ({"lr"} if field == "optimizer" else set())
    _known_keys(value, field, allowed)
    return {"name": name, **known[name], **{k: val for k, val in value.items() if k != "name"}}


def optimizer_spec(value: object, default_lr: float) -> dict[str, Any]:
    spec = _spec(value, "optimizer", OPTIMIZERS)
    spec["lr"] = _checked("optimizer", v.number, spec.get("lr", default_lr), "lr", 0, True)
    build_optimizer(spec, 0.0)  # the class checks its own options
    return spec


def schedule_spec(value: object, lr: float) -> dict[str, Any]:
    spec = _spec(value, "schedule", SCHEDULES)
    build_schedule(spec, lr)
    return spec


def build_optimizer(spec: Mapping[str, Any], weight_decay: float) -> optim.Optimizer:
    cls = optim.OPTIMIZERS[spec["name"]]
    options = {k: val for k, val in spec.items() if k != "name"}
    optimizer: optim.Optimizer = _checked("optimizer", cls, **options, weight_decay=weight_decay)
    return optimizer


def build_schedule(spec: Mapping[str, Any], lr: float) -> Optional[Callable[[int], float]]:
    """The schedule object, or None for a constant lr."""
    if spec["name"] == "constant":
        return None
    cls = schedules.REGISTRY[spec["name"]]
    options = {k: val for k, val in spec.items() if k != "name"}
    schedule: Callable[[int], float] = _checked("schedule", cls, lr, **options)
    return schedule


def kind_of(config: Mapping[str, Any]) -> str:
    return DATASETS[config["dataset"]][0]


def parse(body: object) -> Config:
    """The complete configuration from a client's (partial) one, or a ConfigError."""
    body = _object(body, "body")
    _known_keys(body, "", DEFAULTS)
    config = {**DEFAULTS, **body}
    dataset = _name(config["dataset"], "dataset", DATASETS)
    kind = DATASETS[dataset][0]
    if "loss" not in body and kind == "regression":
        config["loss"] = REGRESSION_LOSS
    config.update(
        noise=_number_in(config["noise"], "noise", *LIMITS["noise"]),
        n=_int_in(config["n"], "n", *LIMITS["n"]),
        train_fraction=_number_in(
            config["train_fraction"], "train_fraction", *LIMITS["train_fraction"]
        ),
        seed=_int_in(config["seed"], "seed", *LIMITS["seed"]),
        features=_features(config["features"]),
        hidden=_hidden(config["hidden"]),
        activation=_name(config["activation"], "activation", ACTIVATIONS),
        loss=_name(config["loss"], "loss", LOSSES[kind]),
    )
    return {**config, **_training(config, DEFAULTS["optimizer"]["lr"])}


# The settings a session may change without losing its weights.
TRAINING = ("optimizer", "batch_size", "weight_decay", "schedule")


def parse_training(body: object, current: Mapping[str, Any]) -> Config:
    """The training settings in body (a PATCH) checked, the others taken from current; a new
    optimizer without an lr keeps the session's."""
    body = _object(body, "body")
    _known_keys(body, "", TRAINING)
    return _training({**current, **body}, current["optimizer"]["lr"])


def _training(settings: Mapping[str, Any], default_lr: float) -> Config:
    """The four training settings of `settings` checked; default_lr for an optimizer without one."""
    weight_decay = _checked("", v.number, settings["weight_decay"], "weight_decay", 0)
    opt = optimizer_spec(settings["optimizer"], default_lr)
    return {
        "optimizer": opt,
        "batch_size": _batch_size(settings["batch_size"]),
        "weight_decay": weight_decay,
        "schedule": schedule_spec(settings["schedule"], opt["lr"]),
    }
