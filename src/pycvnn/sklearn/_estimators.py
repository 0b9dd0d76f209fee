"""MLPClassifier and MLPRegressor: scikit-learn's estimators, trained by pycvnn."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import column_or_1d

from .._types import Array, ArrayLike, DTypeLike, FloatArray, IntArray
from ._base import BaseMLP

if TYPE_CHECKING:
    from sklearn.utils import Tags
    from typing_extensions import Self


def _init(
    self: BaseMLP,
    hidden_layer_sizes: Union[int, Sequence[int]] = (100,),
    activation: str = "relu",
    *,
    solver: str = "adam",
    alpha: float = 1e-4,
    batch_size: Union[int, str] = "auto",
    learning_rate: str = "constant",
    learning_rate_init: float = 0.001,
    power_t: float = 0.5,
    max_iter: int = 200,
    shuffle: bool = True,
    random_state: Union[int, np.random.RandomState, None] = None,
    tol: float = 1e-4,
    verbose: bool = False,
    warm_start: bool = False,
    momentum: float = 0.9,
    nesterovs_momentum: bool = True,
    early_stopping: bool = False,
    validation_fraction: float = 0.1,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-8,
    n_iter_no_change: int = 10,
    loss: str = "l2",
    schedule: Optional[Callable[[int], float]] = None,
    momentum_form: str = "heavy_ball",
    backend: Optional[str] = None,
    dtype: Optional[DTypeLike] = None,
) -> None:
    """The parameters both estimators take: a signature for _estimator_init, never called."""


def _estimator_init(defaults: Mapping[str, Any], **extra: Any) -> Callable[..., None]:
    """An __init__ taking _init's parameters with `defaults` changed and the keyword
    parameters `extra` (name=default) added: scikit-learn reads an estimator's parameters
    from its __init__ signature, and the two estimators share all but these."""
    sig = inspect.signature(_init)
    params = [p.replace(default=defaults.get(p.name, p.default)) for p in sig.parameters.values()]
    params += [
        inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=d) for k, d in extra.items()
    ]
    sig = sig.replace(parameters=params)

    def __init__(self: BaseMLP, *args: Any, **kwargs: Any) -> None:
        bound = sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        for name, value in list(bound.arguments.items())[1:]:
            setattr(self, name, value)

    # inspect.signature reads __signature__, which typeshed's function type does not declare.
    __init__.__signature__ = sig  # type: ignore[attr-defined]
    return __init__


class MLPClassifier(ClassifierMixin, BaseMLP):
    """A multi-layer perceptron classifier with scikit-learn's interface, trained by pycvnn.

    Parameters are scikit-learn's MLPClassifier's (without lbfgs and max_fun), and:

    - activation: scikit-learn's identity/logistic/tanh/relu or a pycvnn activation name;
    - solver: "sgd" (pycvnn's heavy-ball Momentum with `momentum` and Nesterov when
      `nesterovs_momentum`, scikit-learn's update at a constant lr; plain GD for momentum=0), "adam",
      or pycvnn's "gd", "momentum", "rmsprop", "adamw";
    - alpha: scikit-learn adds alpha * W / (the batch's sample-weight sum) to each weight
      gradient (biases excluded). Here it becomes pycvnn's coupled weight_decay
      alpha / (batch_size * mean sample weight), times 2 / n_outputs for the l2 loss (whose
      gradient is 2 / n_outputs times scikit-learn's squared-loss gradient): the same update
      for every full batch of an unweighted fit and for the whole set with batch_size >= n;
      a smaller last batch, and batches whose weights do not sum to batch_size times the
      mean, are decayed as a full, average batch (for adamw the decay is decoupled);
    - learning_rate_init: the sgd/gd/momentum step is divided by that same gradient scale,
      so their updates are scikit-learn's (Adam's do not depend on the scale);
      learning_rate ("constant", "invscaling" with power_t, "adaptive") as scikit-learn's,
      for sgd only; the adaptive lr is kept by warm starts while learning_rate_init stays.
      With momentum and an lr that changes (invscaling, adaptive, a schedule) the steps
      differ from scikit-learn's: pycvnn's heavy-ball velocity (PyTorch's) is scaled by the
      current lr as a whole, scikit-learn's velocity keeps each step's own lr;
    - warm_start keeps the optimizer's state (scikit-learn restarts it) unless set_params
      changed the solver or its hyperparameters;
    - loss: "cross_entropy" (default: softmax outputs, or for two classes one sigmoid output
      with binary cross-entropy, as scikit-learn does: two softmax outputs would only add a
      redundant column of weights, and one output keeps scikit-learn's coefs_ shapes and
      n_outputs_) or "l2" on the softmax / sigmoid output with one-hot targets;
    - class_weight: None, "balanced" (n_samples / (n_classes * count) per class) or a dict
      {label: weight}, multiplied into sample_weight;
    - schedule: None or pycvnn.schedules object / callable epoch -> lr (epochs counted over
      the estimator's life; it takes the place of learning_rate); momentum_form: "heavy_ball" or "ema" (sgd/momentum);
      backend: None (the current one), "cpp" or "numpy"; dtype: None (float32 input trains
      in float32, any other in float64, as scikit-learn) or "float32" / "float64".

    loss_curve_ holds scikit-learn's loss: the epoch's mean loss plus
    0.5 * alpha * ||W||^2 / batch_size with the weights at the epoch's start (scikit-learn's
    for a full-batch fit; scikit-learn takes each batch's own). Training stops as
    scikit-learn's: when the loss (with early_stopping, the accuracy on a stratified
    validation_fraction, whose best weights are restored) has not improved by tol for more
    than n_iter_no_change epochs, else with a ConvergenceWarning after max_iter. partial_fit
    trains one epoch without early stopping. warm_start and partial_fit keep the optimizer's
    state and the shuffling stream, so fit(max_iter=a + b) equals fit(max_iter=a) then a warm
    fit of b epochs, and equals a + b partial_fit calls (while no stopping rule ends a fit). Multilabel targets are refused
    (pycvnn's binary cross-entropy takes a single output). Weights start as pycvnn's MLP
    does (He for relu, Xavier otherwise), not with scikit-learn's Glorot rule.
    """

    if TYPE_CHECKING:
        # A type checker sees no parameters in an assigned __init__ (the class would be Any).
        def __init__(self, *args: Any, **kwargs: Any) -> None: ...
    else:
        __init__ = _estimator_init({"loss": "cross_entropy"}, class_weight=None)
    class_weight: Union[None, str, dict[Any, float]]
    classes_: Array
    LOSSES = ("cross_entropy", "l2", "mse")
    _y_numeric = False

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = None) -> Self:
        """Train on X (N, features) and labels y (N,) of any type; returns self."""
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        classes: Optional[ArrayLike] = None,
        sample_weight: Optional[ArrayLike] = None,
    ) -> Self:
        """One epoch over X, y; `classes` (every label) is needed on the first call."""
        if not hasattr(self, "model_") and classes is None:
            raise ValueError("classes: expected every class label on the first partial_fit call")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def _targets(self, y: Array, first: bool, classes: Optional[ArrayLike]) -> Array:
        check_classification_targets(y)
        if type_of_target(y) == "multilabel-indicator":
            raise ValueError(
                f"y: expected one label per sample (binary or multiclass), got a multilabel "
                f"indicator matrix of shape {y.shape}; multilabel is not supported"
            )
        y = column_or_1d(y, warn=True)
        if first:
            labels = np.unique(y if classes is None else np.asarray(classes))
            if labels.size < 2:
                raise ValueError(f"y: expected at least 2 classes, got 1 class ({labels[0]!r})")
            self.classes_ = labels
            self.n_outputs_ = 1 if labels.size == 2 else labels.size
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"classes: expected {self.classes_.tolist()} (those of the first call), got "
                f"{np.unique(classes).tolist()}"
            )
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValueError(
                f"y: expected labels in {self.classes_.tolist()}, got {unknown[:5].tolist()}"
            )
        ids = np.searchsorted(self.classes_, y)
        if self.n_outputs_ == 1:
            return ids.astype(np.float64).reshape(-1, 1)
        return np.eye(self.n_outputs_)[ids] if self.loss != "cross_entropy" else ids

    @staticmethod
    def _ids(targets: Array) -> IntArray:
        if targets.ndim == 1:
            return targets
        return targets.argmax(axis=1) if targets.shape[1] > 1 else targets[:, 0].astype(np.int64)

    def _weights(self, targets: Array, weights: Optional[FloatArray]) -> Optional[FloatArray]:
        """sample_weight times the class weights."""
        cw = self.class_weight
        if cw is None:
            return weights
        ids, n_classes = self._ids(targets), self.classes_.size
        if isinstance(cw, str) and cw == "balanced":
            counts = np.bincount(ids, minlength=n_classes)
            present = np.count_nonzero(counts)
            per_class = ids.size / (present * np.maximum(counts, 1))
        elif isinstance(cw, dict):
            unknown = [k for k in cw if k not in set(self.classes_.tolist())]
            if unknown:
                raise ValueError(
                    f"class_weight: expected keys among the classes {self.classes_.tolist()}, "
                    f"got {unknown}"
                )
            per_class = np.array([float(cw.get(c, 1.0)) for c in self.classes_.tolist()])
        else:
            raise ValueError(
                f"class_weight: expected None, 'balanced' or a dict {{label: weight}}, got {cw!r}"
            )
        weighted: FloatArray = (1.0 if weights is None else weights) * per_class[ids]
        return weighted

    def _out_activation(self) -> str:
        return "sigmoid" if self.n_outputs_ == 1 else "softmax"

    def _fit_loss(self) -> str:
        if self.n_outputs_ == 1 and self.loss == "cross_entropy":
            return "binary_cross_entropy"
        return self.loss

    def _stratify(self) -> bool:
        return True

    def _score_on(self, X: FloatArray, targets: Array, weights: Optional[FloatArray]) -> float:
        hits = self._decide(self.model_.predict(X)) == self._ids(targets)
        return float(np.average(hits, weights=weights))

    def _decide(self, out: FloatArray) -> IntArray:
        return (out[:, 0] > 0.5).astype(np.int64) if out.shape[1] == 1 else out.argmax(axis=1)

    def predict(self, X: ArrayLike) -> Array:
        """The predicted label per row of X."""
        out = self._output(X)  # checks the fit first
        return self.classes_[self._decide(out)]

    def predict_proba(self, X: ArrayLike) -> FloatArray:
        """(N, n_classes) class probabilities, columns in classes_ order."""
        out = self._output(X)
        return np.hstack([1 - out, out]) if out.shape[1] == 1 else out

    def predict_log_proba(self, X: ArrayLike) -> FloatArray:
        """The log of predict_proba."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))


class MLPRegressor(RegressorMixin, BaseMLP):
    """A multi-layer perceptron regressor with scikit-learn's interface, trained by pycvnn.

    Parameters as MLPClassifier's (without class_weight); loss is "l2" (default; alias "mse":
    mean squared error, reported in loss_curve_ as half of it, scikit-learn's squared loss),
    "l1" or "huber". The output layer is linear (out_activation_ "identity"); y may be (N,)
    or (N, n_outputs). With early_stopping the validation score is R2.
    """

    if TYPE_CHECKING:
        # A type checker sees no parameters in an assigned __init__ (the class would be Any).
        def __init__(self, *args: Any, **kwargs: Any) -> None: ...
    else:
        __init__ = _estimator_init({})
    LOSSES = ("l2", "mse", "l1", "huber")
    _y_numeric = True

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = None) -> Self:
        """Train on X (N, features) and targets y (N,) or (N, n_outputs); returns self."""
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = None
    ) -> Self:
        """One epoch over X, y (the first call builds the network)."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _targets(self, y: Array, first: bool, classes: Optional[ArrayLike]) -> Array:
        y = np.asarray(y, dtype=np.float64)
        y = y.reshape(-1, 1) if y.ndim == 1 else y
        if first:
            self.n_outputs_ = y.shape[1]
        elif y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y: expected {self.n_outputs_} output(s) (as fitted), got {y.shape[1]}"
            )
        return y

    def _weights(self, targets: Array, weights: Optional[FloatArray]) -> Optional[FloatArray]:
        return weights

    def _out_activation(self) -> None:
        return None

    def _fit_loss(self) -> str:
        return self.loss

    def _stratify(self) -> bool:
        return False

    def _score_on(self, X: FloatArray, targets: Array, weights: Optional[FloatArray]) -> float:
        return float(r2_score(targets, self.model_.predict(X), sample_weight=weights))

    def predict(self, X: ArrayLike) -> FloatArray:
        """(N,) predictions, or (N, n_outputs) for several outputs."""
        out = self._output(X)
        return out.ravel() if self.n_outputs_ == 1 else out

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
