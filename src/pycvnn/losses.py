"""Loss functions on the current backend: <name>(pred, target, ..., reduction="mean") -> value,
<name>_grad(...) -> d loss / d pred (pred's shape and dtype; for "none", of the sum).

Also a class per loss, built with its options (`Huber(delta=2.0)`), and `get(name, **opts)`.
REGISTRY lists them; each needs <name>_forward / <name>_backward in pycvnn._core and
pycvnn.reference.
"""

from __future__ import annotations

import inspect
from typing import (
    Any,
    Callable,
    ClassVar,
    Dict,
    Iterable,
    Literal,
    Mapping,
    NamedTuple,
    Optional,
    Protocol,
    Tuple,
    Type,
    Union,
    cast,
    overload,
)

import numpy as np

from . import _validate as v
from ._backend import backend
from ._registry import Registry, subclass
from ._types import Array, ArrayLike, FloatArray

Reduced = Literal["mean", "sum"]
Reduction = Literal["none", "mean", "sum"]
CheckFunction = Callable[..., Tuple[Array, Array]]
# An option's checker: (value, name) -> the checked value.
OptionCheck = Callable[[Any, str], Any]
# (name, default, checker) of a loss's one option.
OptionSpec = Tuple[str, Any, OptionCheck]


# ---- the functions' signatures, as a type checker sees them -----------------------------------


class Value(Protocol):
    """<name>(pred, target, reduction="mean"): a float, or the unreduced array for "none"."""

    @overload
    def __call__(
        self, pred: ArrayLike, target: ArrayLike, reduction: Reduced = "mean"
    ) -> float: ...
    @overload
    def __call__(
        self, pred: ArrayLike, target: ArrayLike, reduction: Literal["none"]
    ) -> FloatArray: ...


class Grad(Protocol):
    """<name>_grad(pred, target, reduction="mean"): d loss / d pred."""

    def __call__(
        self, pred: ArrayLike, target: ArrayLike, reduction: Reduction = "mean"
    ) -> FloatArray: ...


class HuberValue(Protocol):
    @overload
    def __call__(
        self, pred: ArrayLike, target: ArrayLike, delta: float = 1.0, reduction: Reduced = "mean"
    ) -> float: ...
    @overload
    def __call__(
        self, pred: ArrayLike, target: ArrayLike, delta: float = 1.0, *, reduction: Literal["none"]
    ) -> FloatArray: ...


class HuberGrad(Protocol):
    def __call__(
        self,
        pred: ArrayLike,
        target: ArrayLike,
        delta: float = 1.0,
        reduction: Reduction = "mean",
    ) -> FloatArray: ...


class LogitsValue(Protocol):
    @overload
    def __call__(
        self,
        pred: ArrayLike,
        target: ArrayLike,
        from_logits: bool = True,
        reduction: Reduced = "mean",
    ) -> float: ...
    @overload
    def __call__(
        self,
        pred: ArrayLike,
        target: ArrayLike,
        from_logits: bool = True,
        *,
        reduction: Literal["none"],
    ) -> FloatArray: ...


class LogitsGrad(Protocol):
    def __call__(
        self,
        pred: ArrayLike,
        target: ArrayLike,
        from_logits: bool = True,
        reduction: Reduction = "mean",
    ) -> FloatArray: ...


class DiceValue(Protocol):
    @overload
    def __call__(
        self, pred: ArrayLike, target: ArrayLike, smooth: float = 1e-6, reduction: Reduced = "mean"
    ) -> float: ...
    @overload
    def __call__(
        self,
        pred: ArrayLike,
        target: ArrayLike,
        smooth: float = 1e-6,
        *,
        reduction: Literal["none"],
    ) -> FloatArray: ...


class DiceGrad(Protocol):
    def __call__(
        self,
        pred: ArrayLike,
        target: ArrayLike,
        smooth: float = 1e-6,
        reduction: Reduction = "mean",
    ) -> FloatArray: ...


class Check(Protocol):
    """A family's check, (pred, target[, option]) -> the arrays its kernels take, marked with
    the kind of target its losses train on."""

    targets: str

    def __call__(self, *args: Any, **kwargs: Any) -> Tuple[Array, Array]: ...


def _value(out: Any, reduction: str) -> Union[float, FloatArray]:
    """A float for "mean"/"sum", the unreduced array for "none"."""
    return np.asarray(out) if reduction == "none" else float(out)


# ---- argument checks, one per family of target ----------------------------------------------


def _trains_on(targets: str) -> Callable[[CheckFunction], Check]:
    """Marks a family's check with the kind of target its losses train on (see LossInfo)."""

    def mark(check: CheckFunction) -> Check:
        marked = cast(Check, check)  # the attribute set next makes the function a Check
        marked.targets = targets
        return marked

    return mark


@_trains_on("values")
def _elementwise(pred: ArrayLike, target: ArrayLike, option: object = None) -> Tuple[Array, Array]:
    pred = v.floating(pred, "pred")
    return pred, v.like(target, pred, "target", "pred")


@_trains_on("classes")
def _cross_entropy_args(
    pred: ArrayLike, target: ArrayLike, from_logits: bool
) -> Tuple[Array, Array]:
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


@_trains_on("binary")
def _binary_cross_entropy_args(
    pred: ArrayLike, target: ArrayLike, from_logits: bool
) -> Tuple[Array, Array]:
    pred = v.floating(pred, "pred")
    v.binary_shape(pred, "pred")
    if not from_logits:
        v.in_range(pred, "pred", 0, 1, "probabilities (from_logits=False)")
    target = v.like(target, pred, "target", "pred")
    v.in_range(target, "target", 0, 1, "labels")
    return pred, target


@_trains_on("classes")
def _hinge_args(pred: ArrayLike, target: ArrayLike, option: object = None) -> Tuple[Array, Array]:
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


@_trains_on("masks")
def _dice_args(pred: ArrayLike, target: ArrayLike, smooth: object = None) -> Tuple[Array, Array]:
    pred = v.floating(pred, "pred")
    if pred.ndim < 1:
        raise ValueError(f"pred: expected shape (N, ...), got {pred.shape}")
    v.in_range(pred, "pred", 0, 1, "probabilities")
    target = v.like(target, pred, "target", "pred")
    v.in_range(target, "target", 0, 1, "mask values")
    return pred, target


# ---- the registry ----------------------------------------------------------------------------


class LossInfo(NamedTuple):
    """A registered loss. check(pred, target, option) returns the arrays its kernels take;
    option is (name, default, validate) for the one option it has, or None; targets is what
    it is trained on: "classes" (integer class ids), "values" (real arrays of the output's
    shape), "binary" (labels in [0, 1] for one output) or "masks" (values in [0, 1] against
    predicted probabilities)."""

    name: str
    check: Check
    option: Optional[OptionSpec]
    targets: str


def _options_signature(option: Optional[OptionSpec]) -> inspect.Signature:
    """(option=default, reduction="mean"), or (reduction="mean") for a loss without an option:
    a loss class's signature, and its functions' after pred and target."""
    P = inspect.Parameter
    params = [P(option[0], P.POSITIONAL_OR_KEYWORD, default=option[1])] if option else []
    return inspect.Signature([*params, P("reduction", P.POSITIONAL_OR_KEYWORD, default="mean")])


def _bind(
    signature: inspect.Signature, args: Iterable[Any], kwargs: Mapping[str, Any]
) -> Dict[str, Any]:
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return bound.arguments


def _checked_options(
    option: Optional[OptionSpec], arguments: Mapping[str, Any]
) -> Tuple[Dict[str, Any], str]:
    """({option: its checked value} or {}, the checked reduction), from bound arguments."""
    options = {option[0]: option[2](arguments[option[0]], option[0])} if option else {}
    return options, v.reduction(arguments["reduction"])


def _register(
    name: str, check: Check, option: Optional[OptionSpec] = None
) -> Tuple[Callable[..., Any], Callable[..., FloatArray]]:
    """Registers a loss; returns its value and gradient functions, with their own signature
    (pred, target[, option], reduction="mean")."""
    REGISTRY[name] = info = LossInfo(name, check, option, check.targets)
    P = inspect.Parameter
    arrays = [P("pred", P.POSITIONAL_OR_KEYWORD), P("target", P.POSITIONAL_OR_KEYWORD)]
    signature = inspect.Signature([*arrays, *_options_signature(option).parameters.values()])

    def arguments(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Tuple[Any, ...]:
        a = _bind(signature, args, kwargs)
        opts, reduction = _checked_options(option, a)
        return (*info.check(a["pred"], a["target"], *opts.values()), *opts.values(), reduction)

    def value(*args: Any, **kwargs: Any) -> Union[float, FloatArray]:
        *call, reduction = arguments(args, kwargs)
        return _value(getattr(backend(), f"{name}_forward")(*call, reduction), reduction)

    def grad(*args: Any, **kwargs: Any) -> FloatArray:
        out: FloatArray = getattr(backend(), f"{name}_backward")(*arguments(args, kwargs))
        return out

    doc, grad_doc = _DOCS[name]
    for fn, fn_name, fn_doc in ((value, name, doc), (grad, f"{name}_grad", grad_doc)):
        fn.__name__ = fn.__qualname__ = fn_name
        fn.__doc__ = fn_doc
        # A function takes any attribute; inspect.signature reads this one.
        fn.__signature__ = signature  # type: ignore[attr-defined]
    _FUNCTIONS[name] = value, grad
    return value, grad


def _positive(value: object, name: str) -> float:
    return v.number(value, name, 0.0, strict=True)


def _non_negative(value: object, name: str) -> float:
    return v.number(value, name, 0.0)


# Each loss's formula and its gradient's, the docstrings of <name> and <name>_grad.
_DOCS = {
    "l1": (
        "|pred - target| (mean: MAE).",
        'sign(pred - target), 0 at a tie; / pred.size for "mean".',
    ),
    "l2": ("(pred - target)^2 (mean: MSE).", '2 (pred - target); / pred.size for "mean".'),
    "huber": (
        "0.5 r^2 if |r| <= delta else delta (|r| - 0.5 delta), r = pred - target.",
        'clip(pred - target, -delta, delta); / pred.size for "mean".',
    ),
    "cross_entropy": (
        "-sum_c t_c log p_c per sample; pred logits (or probabilities), target ids (N,) or (N, C).",
        'p - onehot from logits; -t / p from probabilities; / N for "mean".',
    ),
    "binary_cross_entropy": (
        "-(t log p + (1 - t) log(1 - p)), p = sigmoid(pred) from logits; pred (N,) or (N, 1).",
        'sigmoid(pred) - t from logits; (p - t) / (p (1 - p)) from probabilities; / N for "mean".',
    ),
    "hinge": (
        "Binary max(0, 1 - y s); multiclass sum_{j != y} max(0, 1 - s_y + s_j).",
        'Subgradient of hinge (0 where a margin is exactly 0); / N for "mean".',
    ),
    "squared_hinge": (
        "hinge with each margin term squared.",
        '2 max(0, m) per margin term m, chained to the scores; / N for "mean".',
    ),
    "dice": (
        "1 - (2 sum(p g) + smooth) / (sum(p) + sum(g) + smooth) per sample over non-batch axes.\n\n"
        "With smooth = 0 a sample whose pred and target are all zero counts as loss 0, gradient 0.",
        'd dice / d pred per sample; / N for "mean".',
    ),
}
_FROM_LOGITS: OptionSpec = ("from_logits", True, v.flag)

# The one list of losses: the classes, get(), fit and the CLI's choices derive from it.
REGISTRY: Registry[LossInfo] = Registry("name")
_FUNCTIONS: Dict[
    str, Tuple[Callable[..., Any], Callable[..., FloatArray]]
] = {}  # name -> (value, gradient)
# Each function declared with its signature: _register builds them, the declarations type them.
l1: Value
l1_grad: Grad
l2: Value
l2_grad: Grad
huber: HuberValue
huber_grad: HuberGrad
cross_entropy: LogitsValue
cross_entropy_grad: LogitsGrad
binary_cross_entropy: LogitsValue
binary_cross_entropy_grad: LogitsGrad
hinge: Value
hinge_grad: Grad
squared_hinge: Value
squared_hinge_grad: Grad
dice: DiceValue
dice_grad: DiceGrad
l1, l1_grad = _register("l1", _elementwise)
l2, l2_grad = _register("l2", _elementwise)
huber, huber_grad = _register("huber", _elementwise, ("delta", 1.0, _positive))
cross_entropy, cross_entropy_grad = _register("cross_entropy", _cross_entropy_args, _FROM_LOGITS)
binary_cross_entropy, binary_cross_entropy_grad = _register(
    "binary_cross_entropy", _binary_cross_entropy_args, _FROM_LOGITS
)
hinge, hinge_grad = _register("hinge", _hinge_args)
squared_hinge, squared_hinge_grad = _register("squared_hinge", _hinge_args)
dice, dice_grad = _register("dice", _dice_args, ("smooth", 1e-6, _non_negative))
mse: Value
mse_grad: Grad
mse, mse_grad = l2, l2_grad


def names(targets: Union[str, Iterable[str], None] = None) -> Tuple[str, ...]:
    """The registered loss names; with targets (a kind or a tuple of kinds, see LossInfo),
    those trained on that kind of target."""
    kinds = (targets,) if isinstance(targets, str) else targets
    return tuple(n for n, info in REGISTRY.items() if kinds is None or info.targets in kinds)


# ---- loss objects -----------------------------------------------------------------------------


class Loss:
    """A loss with its options bound: `loss(pred, target)` the value, `loss.grad(...)` d/d pred.
    A subclass per registered loss; its options are its registry entry's."""

    name: str = ""
    # Each subclass's options, set by _loss_class: what __init__ binds and inspect shows.
    __signature__: ClassVar[inspect.Signature]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        option = REGISTRY[self.name].option
        arguments = _bind(type(self).__signature__, args, kwargs)
        self.options, self.reduction = _checked_options(option, arguments)

    def __call__(self, pred: ArrayLike, target: ArrayLike) -> Union[float, FloatArray]:
        value: Union[float, FloatArray] = _FUNCTIONS[self.name][0](
            pred, target, **self.options, reduction=self.reduction
        )
        return value

    def grad(self, pred: ArrayLike, target: ArrayLike) -> FloatArray:
        return _FUNCTIONS[self.name][1](pred, target, **self.options, reduction=self.reduction)

    def __repr__(self) -> str:
        opts = "".join(f"{k}={val!r}, " for k, val in self.options.items())
        return f"{type(self).__name__}({opts}reduction={self.reduction!r})"


def _loss_class(class_name: str, name: str) -> Type[Loss]:
    cls = subclass(
        Loss, class_name, __name__, f"The {name} loss: {_FUNCTIONS[name][0].__doc__}", name=name
    )
    cls.__signature__ = _options_signature(REGISTRY[name].option)
    return cls


# One class per registered loss, named as in this table.
_CLASS_NAMES = {
    "l1": "L1",
    "l2": "L2",
    "huber": "Huber",
    "cross_entropy": "CrossEntropy",
    "binary_cross_entropy": "BinaryCrossEntropy",
    "hinge": "Hinge",
    "squared_hinge": "SquaredHinge",
    "dice": "Dice",
}
_CLASSES: Registry[Type[Loss]] = Registry("name")
# The classes, declared for a type checker; the loop below defines them.
L1: Type[Loss]
L2: Type[Loss]
Huber: Type[Loss]
CrossEntropy: Type[Loss]
BinaryCrossEntropy: Type[Loss]
Hinge: Type[Loss]
SquaredHinge: Type[Loss]
Dice: Type[Loss]
for _name in REGISTRY:
    _CLASSES[_name] = globals()[_CLASS_NAMES[_name]] = _loss_class(_CLASS_NAMES[_name], _name)
_CLASSES["mse"] = MSE = _CLASSES["l2"]


def get(name: Union[str, Loss], **options: Any) -> Loss:
    """A loss object by name, built with `options` (e.g. get("huber", delta=2.0)); a Loss passes through."""
    return _CLASSES.build(name, options, Loss)


__all__ = [f"{name}{part}" for name in REGISTRY for part in ("", "_grad")]
__all__ += ["mse", "mse_grad", "Loss", *(cls.__name__ for cls in Loss.__subclasses__()), "MSE"]
__all__ += ["LossInfo", "REGISTRY", "names", "get"]
