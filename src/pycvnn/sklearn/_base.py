"""What the classifier and the regressor share: parameter checks, the network and optimizer
they build, and the epoch loop with scikit-learn's stopping rule."""

from __future__ import annotations

import contextlib
import numbers
import warnings
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Optional, Sequence, Tuple, Union

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .. import optim
from .._backend import using_backend
from .._types import Array, ArrayLike, DTypeLike, FloatArray
from ..activations import REGISTRY as ACTIVATIONS
from ..layers import Dense
from ..model import Sequential
from ._checks import check_choice, check_flag, check_int, check_real

if TYPE_CHECKING:
    from sklearn.utils import Tags
    from typing_extensions import Self

# Rows, targets and sample weights (None for none) of a training or validation part.
Part = Tuple[FloatArray, Array, Optional[FloatArray]]

# scikit-learn's activation names and the pycvnn activation each stands for ("identity" is a
# Dense layer without one).
SKLEARN_ACTIVATIONS = {"identity": None, "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
HIDDEN_ACTIVATIONS = sorted(set(SKLEARN_ACTIVATIONS) | set(ACTIVATIONS.keys()) - {"softmax"})
SOLVERS = ("sgd", "adam", "gd", "momentum", "rmsprop", "adamw")


class BaseMLP(BaseEstimator):
    """The shared machinery; the subclasses say how targets become outputs and a score."""

    LOSSES: tuple[str, ...] = ()  # the loss names a subclass accepts, its default first
    _y_numeric: bool  # whether validate_data is to convert y to numbers

    # The parameters, which the subclasses' __init__ sets (see _estimators._init).
    hidden_layer_sizes: Union[int, Sequence[int]]
    activation: str
    solver: str
    alpha: float
    batch_size: Union[int, str]
    learning_rate: str
    learning_rate_init: float
    power_t: float
    max_iter: int
    shuffle: bool
    random_state: Union[int, np.random.RandomState, None]
    tol: float
    verbose: bool
    warm_start: bool
    momentum: float
    nesterovs_momentum: bool
    early_stopping: bool
    validation_fraction: float
    beta_1: float
    beta_2: float
    epsilon: float
    n_iter_no_change: int
    loss: str
    schedule: Optional[Callable[[int], float]]
    momentum_form: str
    backend: Optional[str]
    dtype: Optional[DTypeLike]

    # What fit sets.
    model_: Sequential
    n_outputs_: int
    n_layers_: int
    out_activation_: str
    loss_: float
    loss_curve_: list[float]
    t_: int
    n_iter_: int
    best_loss_: Optional[float]
    validation_scores_: Optional[list[float]]
    best_validation_score_: Optional[float]
    _rng: np.random.Generator
    _hidden: tuple[int, ...]
    _optimizer: optim.Optimizer
    _optimizer_made_for: tuple[Any, ...]
    _no_improvement_count: int
    _best_params: Optional[FloatArray]
    _adaptive: list[float]

    if TYPE_CHECKING:
        # What each subclass defines: how targets become outputs, weights and a score.
        def _targets(self, y: Array, first: bool, classes: Optional[ArrayLike]) -> Array: ...

        def _weights(
            self, targets: Array, weights: Optional[FloatArray]
        ) -> Optional[FloatArray]: ...

        def _fit_loss(self) -> str: ...

        def _stratify(self) -> bool: ...

        def _score_on(
            self, X: FloatArray, targets: Array, weights: Optional[FloatArray]
        ) -> float: ...

    # ---- parameters -----------------------------------------------------------------------
    def _checked_params(self) -> tuple[int, ...]:
        """Every parameter checked before any work starts (scikit-learn's estimators must not
        check in __init__ or set_params)."""
        hidden: Any = self.hidden_layer_sizes  # whatever the user set: checked here
        if isinstance(hidden, numbers.Integral) and not isinstance(hidden, (bool, np.bool_)):
            hidden = (hidden,)
        if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
            raise TypeError(
                f"hidden_layer_sizes: expected a tuple of layer sizes, got {self.hidden_layer_sizes!r}"
            )
        sizes = tuple(
            check_int(h, f"hidden_layer_sizes[{i}]", 1) for i, h in enumerate(list(hidden))
        )
        check_choice(self.activation, "activation", HIDDEN_ACTIVATIONS)
        hint = " (lbfgs is not available: pycvnn trains by mini-batch steps)"
        check_choice(self.solver, "solver", SOLVERS, hint if self.solver == "lbfgs" else "")
        check_real(self.alpha, "alpha", 0)
        if self.batch_size != "auto":
            check_int(self.batch_size, "batch_size", 1)
        check_real(self.learning_rate_init, "learning_rate_init", 0, low_open=True)
        check_choice(self.learning_rate, "learning_rate", ("constant", "invscaling", "adaptive"))
        check_real(self.power_t, "power_t", 0)
        check_int(self.max_iter, "max_iter", 1)
        check_real(self.tol, "tol", 0)
        check_int(self.n_iter_no_change, "n_iter_no_change", 1)
        for name in ("shuffle", "warm_start", "early_stopping", "nesterovs_momentum"):
            check_flag(getattr(self, name), name)
        check_real(self.validation_fraction, "validation_fraction", 0, 1, low_open=True)
        check_real(self.momentum, "momentum", 0, 1)
        check_real(self.beta_1, "beta_1", 0, 1)
        check_real(self.beta_2, "beta_2", 0, 1)
        check_real(self.epsilon, "epsilon", 0, low_open=True)
        check_choice(self.loss, "loss", self.LOSSES)
        check_choice(self.momentum_form, "momentum_form", ("heavy_ball", "ema"))
        plain = self.solver in ("sgd", "momentum")
        if plain and self.momentum_form == "ema" and self.nesterovs_momentum:
            raise ValueError(
                "nesterovs_momentum: expected False with momentum_form='ema' (Nesterov "
                "needs the heavy-ball form), got True"
            )
        if self.schedule is not None and not callable(self.schedule):
            raise TypeError(
                f"schedule: expected None or a callable schedule(epoch) -> lr, got {self.schedule!r}"
            )
        if self.backend is not None:
            check_choice(self.backend, "backend", ("cpp", "numpy"))
        if self.dtype is not None:
            check_choice(np.dtype(self.dtype).name, "dtype", ("float32", "float64"))
        return sizes

    def _backend(self) -> ContextManager[None]:
        return contextlib.nullcontext() if self.backend is None else using_backend(self.backend)

    # ---- the network and its optimizer ----------------------------------------------------
    def _out_activation(self) -> Optional[str]:
        """The pycvnn activation after the last Dense (None for none); set per subclass."""
        raise NotImplementedError

    def _new_model(
        self, hidden: Sequence[int], n_in: int, dtype: DTypeLike, seed: int
    ) -> Sequential:
        act = SKLEARN_ACTIVATIONS.get(self.activation, self.activation)
        init = ACTIVATIONS[act].init if act else "xavier"
        sizes = [n_in, *hidden, self.n_outputs_]
        last = len(sizes) - 2
        layers = [
            Dense(fin, fout, self._out_activation() if i == last else act, init=init)
            for i, (fin, fout) in enumerate(zip(sizes[:-1], sizes[1:]))
        ]
        return Sequential(layers, seed=seed, dtype=dtype)

    def _gradient_scale(self) -> float:
        """pycvnn's gradient of the loss over scikit-learn's (2 / n_outputs for the l2 loss,
        whose pycvnn form is the mean over outputs of the squared error, not half its sum)."""
        return 2.0 / self.n_outputs_ if self.loss in ("l2", "mse") else 1.0

    def _weight_decay(self, batch: int, mean_weight: float) -> float:
        """pycvnn's coupled weight decay standing for scikit-learn's alpha (see the class
        docstring): alpha / (the batch's weight) times the gradient scale."""
        return self._gradient_scale() * self.alpha / (batch * mean_weight)

    def _lr(self, lr: float) -> float:
        """The pycvnn lr giving scikit-learn's step: the plain-gradient solvers take the
        gradient scale out; Adam, RMSProp and AdamW do not see a gradient's scale."""
        plain = self.solver in ("sgd", "gd", "momentum")
        return lr / self._gradient_scale() if plain else lr

    def _optimizer_config(self) -> tuple[Any, ...]:
        names = ("solver", "momentum", "nesterovs_momentum", "momentum_form", "beta_1", "beta_2")
        return tuple(getattr(self, name) for name in names) + (self.epsilon,)

    def _new_optimizer(self) -> optim.Optimizer:
        lr = self.learning_rate_init
        if self.solver == "adam":
            return optim.Adam(lr, beta1=self.beta_1, beta2=self.beta_2, eps=self.epsilon)
        if self.solver in ("sgd", "momentum") and self.momentum > 0:
            nesterov = self.nesterovs_momentum and self.momentum_form == "heavy_ball"
            return optim.Momentum(lr, self.momentum, self.momentum_form, nesterov)
        if self.solver in ("sgd", "momentum", "gd"):
            return optim.GD(lr)
        if self.solver == "rmsprop":
            return optim.RMSProp(lr, eps=self.epsilon)
        return optim.AdamW(lr, beta1=self.beta_1, beta2=self.beta_2, eps=self.epsilon)

    # ---- fitting --------------------------------------------------------------------------
    def _validate_X(self, X: ArrayLike, reset: bool) -> FloatArray:
        dtype = (np.float64, np.float32) if self.dtype is None else np.dtype(self.dtype)
        checked: FloatArray = validate_data(self, X, reset=reset, dtype=dtype)
        return checked

    def _fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: Optional[ArrayLike],
        incremental: bool,
        classes: Optional[ArrayLike] = None,
    ) -> Self:
        hidden = self._checked_params()
        if incremental and self.early_stopping:
            # An epoch at a time has no held-out part to stop on, as in scikit-learn.
            raise ValueError("early_stopping: partial_fit does not support early_stopping=True")
        first = not hasattr(self, "model_") or not (incremental or self.warm_start)
        if not first and tuple(self._hidden) != hidden:
            raise ValueError(
                f"hidden_layer_sizes: expected {self._hidden} (the fitted network's) to continue "
                f"with warm_start or partial_fit, got {hidden}"
            )
        dtype = (np.float64, np.float32) if self.dtype is None else np.dtype(self.dtype)
        checked: tuple[FloatArray, Array] = validate_data(
            self, X, y, reset=first, dtype=dtype, multi_output=True, y_numeric=self._y_numeric
        )
        rows, labels = checked
        targets = self._targets(labels, first, classes)
        weights: Optional[FloatArray] = None
        if sample_weight is not None:
            weights = _check_sample_weight(sample_weight, rows, ensure_non_negative=True)
        weights = self._weights(targets, weights)
        if weights is not None and not weights.sum() > 0:
            raise ValueError("sample_weight: expected a positive total weight, got all zeros")
        if first:
            self._initialize(hidden, rows.shape[1], rows.dtype)
        with self._backend():
            self._epochs(rows, targets, weights, incremental)
        return self

    def _initialize(self, hidden: tuple[int, ...], n_in: int, x_dtype: DTypeLike) -> None:
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        self._rng = np.random.default_rng(seed)
        dtype = self.dtype if self.dtype is not None else x_dtype
        self.model_ = self._new_model(hidden, n_in, dtype, seed)
        self._hidden = hidden
        self._optimizer, self._optimizer_made_for = self._new_optimizer(), self._optimizer_config()
        self.n_layers_ = len(hidden) + 2
        self.out_activation_ = self._out_activation() or "identity"
        if self.out_activation_ == "sigmoid":
            self.out_activation_ = "logistic"
        self.loss_curve_, self.t_, self.n_iter_ = [], 0, 0
        self._no_improvement_count, self._best_params = 0, None
        # learning_rate="adaptive": [the learning_rate_init it started from, the current lr]
        self._adaptive = [self.learning_rate_init, self.learning_rate_init]
        self.best_loss_ = None if self.early_stopping else np.inf
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_validation_score_ = -np.inf if self.early_stopping else None

    def _split(
        self, X: FloatArray, targets: Array, weights: Optional[FloatArray], incremental: bool
    ) -> tuple[Part, Optional[Part]]:
        """(train, validation) parts; the validation part is None without early stopping."""
        if not self.early_stopping or incremental:
            return (X, targets, weights), None
        parts = [X, targets] + ([] if weights is None else [weights])
        stratify = targets if self._stratify() else None
        parts = train_test_split(
            *parts,
            test_size=self.validation_fraction,
            random_state=int(self._rng.integers(np.iinfo(np.int32).max)),
            stratify=stratify,
        )
        if parts[1].shape[0] < 2:
            raise ValueError(
                f"validation_fraction: expected a validation set of at least 2 samples, got "
                f"{parts[1].shape[0]} (raise validation_fraction or give more data)"
            )
        train, val = parts[0::2], parts[1::2]
        if weights is None:
            train, val = train + [None], val + [None]
        return tuple(train), tuple(val)

    def _epochs(
        self, X: FloatArray, targets: Array, weights: Optional[FloatArray], incremental: bool
    ) -> None:
        (X, targets, weights), val = self._split(X, targets, weights, incremental)
        n = X.shape[0]
        batch = min(200, n) if self.batch_size == "auto" else min(self.batch_size, n)
        if self.batch_size != "auto" and self.batch_size > n:
            warnings.warn(
                f"batch_size: got {self.batch_size}, larger than the {n} training samples; "
                f"clipped to {n}",
                UserWarning,
                stacklevel=4,
            )
        if self._optimizer_config() != self._optimizer_made_for:
            # a warm start after set_params changed the solver: continuing is not possible
            self._optimizer, self._optimizer_made_for = (
                self._new_optimizer(),
                self._optimizer_config(),
            )
        opt = self._optimizer
        if self._adaptive[0] != self.learning_rate_init:
            self._adaptive = [self.learning_rate_init, self.learning_rate_init]
        opt.weight_decay = self._weight_decay(batch, 1.0 if weights is None else weights.mean())
        model, n_decay = self.model_, self.model_.n_decay
        self.n_iter_ = 0
        for _ in range(1 if incremental else self.max_iter):
            opt.lr = self._lr(self._epoch_lr())
            order = self._rng.permutation(n) if self.shuffle else np.arange(n)
            # scikit-learn's penalty is on the weights before each step: here the epoch's first
            decay = float(np.dot(model.params[:n_decay], model.params[:n_decay]))
            history = model.fit(
                X[order],
                targets[order],
                loss=self._fit_loss(),
                optimizer=opt,
                epochs=1,
                batch_size=batch,
                shuffle=False,
                verbose=False,
                sample_weight=None if weights is None else weights[order],
            )
            penalty = 0.5 * opt.weight_decay / self._gradient_scale() * decay
            self.loss_ = self._loss_scale() * history["loss"][-1] + penalty
            self.n_iter_ += 1
            self.t_ += n
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {len(self.loss_curve_)}, loss = {self.loss_:.8f}")
            score = None if val is None else self._score_on(*val)
            # A ReduceOnPlateau-like schedule also takes the metric: a method no type names.
            schedule: Any = self.schedule
            if hasattr(schedule, "step"):
                schedule.step(self.loss_ if score is None else -score)
            if self._no_improvement(score) and not self._lowered_lr():
                if self.verbose:
                    what = "Validation score" if val is not None else "Training loss"
                    print(
                        f"{what} did not improve more than tol={self.tol:f} for "
                        f"{self.n_iter_no_change} consecutive epochs. Stopping."
                    )
                break
        else:
            if not incremental:
                warnings.warn(
                    f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and "
                    "the optimization hasn't converged yet.",
                    ConvergenceWarning,
                    stacklevel=4,
                )
        if val is not None and self._best_params is not None:
            model._params[...] = self._best_params

    def _epoch_lr(self) -> float:
        """The coming epoch's lr: the schedule's, else scikit-learn's learning_rate rule
        (for sgd; the other solvers keep learning_rate_init)."""
        if self.schedule is not None:
            return self.schedule(len(self.loss_curve_))
        if self.solver != "sgd" or self.learning_rate == "constant":
            return self.learning_rate_init
        if self.learning_rate == "invscaling":
            # int ** float is Any to a type checker (its sign decides between float and complex).
            decayed: float = self.learning_rate_init / (self.t_ + 1) ** self.power_t
            return decayed
        return self._adaptive[1]

    def _lowered_lr(self) -> bool:
        """scikit-learn's "adaptive" sgd: instead of stopping, divide the lr by 5 (until it
        is at most 1e-6) and count afresh. True if it did."""
        adaptive = self.solver == "sgd" and self.learning_rate == "adaptive"
        if not adaptive or self.schedule is not None or self._adaptive[1] <= 1e-6:
            return False
        self._adaptive[1] /= 5.0
        self._no_improvement_count = 0
        if self.verbose:
            print(f"Setting learning rate to {self._adaptive[1]:f}")
        return True

    def _no_improvement(self, score: Optional[float]) -> bool:
        """scikit-learn's rule: count epochs whose loss fell (or validation score rose) by
        less than tol; True once that count passes n_iter_no_change."""
        if score is None:
            # Without early_stopping (partial_fit refuses it) best_loss_ is a float.
            assert self.best_loss_ is not None
            if self.loss_ > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_loss_ = min(self.best_loss_, self.loss_)
        else:
            # A score exists only with early_stopping, which set both to a list and a float.
            assert self.validation_scores_ is not None and self.best_validation_score_ is not None
            self.validation_scores_.append(score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = self.model_.params.copy()
        return self._no_improvement_count > self.n_iter_no_change

    def _loss_scale(self) -> float:
        """pycvnn's l2 is the mean squared error; scikit-learn reports half of it."""
        return 0.5 if self.loss in ("l2", "mse") else 1.0

    def _output(self, X: ArrayLike) -> FloatArray:
        """The network's output for X (N, n_outputs_) after the checks scikit-learn asks for."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        with self._backend():
            return self.model_.predict(X)

    # ---- scikit-learn's (in, out) view of the weights -------------------------------------
    @property
    def coefs_(self) -> list[FloatArray]:
        check_is_fitted(self)
        return [W.T.copy() for W in self.model_.get_weights()[0::2]]

    @property
    def intercepts_(self) -> list[FloatArray]:
        check_is_fitted(self)
        return self.model_.get_weights()[1::2]

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags
