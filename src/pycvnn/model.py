"""Models: Sequential and MLP over one flat parameter arena.

The arena is [W1, ..., WL, b1, ..., bL] (weights first, so weight decay touches one prefix);
each Dense's W and b are views into it, and its dW, db views into the gradient arena. The
backend's Network runs forward and backward over these buffers; fit hands it whole epochs.
"""

from __future__ import annotations

import secrets
import threading
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    Iterable,
    List,
    Literal,
    Optional,
    Sequence,
    Tuple,
    Union,
    overload,
)

import numpy as np

from . import _validate as v
from . import io, training
from ._backend import backend, get_backend
from ._net import (
    Op,
    arena_zeros,
    decisions,
    forward_in_chunks,
    model_dtype,
    ops_of,
    read_only,
    rng_for,
)
from ._types import Array, ArrayLike, DTypeLike, FloatArray, IntArray, PathLike
from .activations import REGISTRY
from .layers import ACTIVATION_LAYERS, Dense, Layer, initial_weights
from .losses import Loss
from .optim import Optimizer

if TYPE_CHECKING:
    from ._core import Network

# A Dense layer's views into the arenas: (W, b, dW, db).
Views = Tuple[FloatArray, FloatArray, FloatArray, FloatArray]

# The activations a model may name: those with a layer class.
ACTIVATION_NAMES = tuple(name for name in ACTIVATION_LAYERS if name is not None)


class Sequential:
    """Layers applied in order. Sequential([Dense(64, 32, "relu"), Dense(32, 10), Softmax()])."""

    def __init__(
        self, layers: Sequence[Layer], seed: Optional[int] = None, dtype: DTypeLike = "float32"
    ) -> None:
        self._setup(layers, dtype, rng_for(seed), params=None)

    def _setup(
        self,
        layers: Sequence[Layer],
        dtype: DTypeLike,
        rng: np.random.Generator,
        params: Optional[Array],
    ) -> None:
        """Places the layers on a new arena: their initial weights drawn from rng, or params
        (a flat arena of the right size) copied in."""
        checked = list(layers) if isinstance(layers, (list, tuple)) else None
        if not checked or not all(isinstance(layer, Layer) for layer in checked):
            raise ValueError("layers: expected a non-empty list of pycvnn layers")
        self.layers = layers = checked
        self.dtype = model_dtype(dtype)
        self.ops = ops_of(layers)
        self._nets: Dict[Tuple[str, str, Tuple[Op, ...]], Network] = {}  # (backend, role, ops)
        self._nets_lock = threading.Lock()
        self._train_lock = threading.RLock()  # one fit at a time
        self._local = threading.local()  # each thread's forward pass, for its backward
        self.rng = rng
        # Who an optimizer's state belongs to: kept by copies and pickles, so a copied model
        # with its copied optimizer continues where the pair left off.
        self._uid = secrets.token_hex(8)
        dense = [layer for layer in layers if isinstance(layer, Dense)]
        n_w = sum(d.in_features * d.out_features for d in dense)
        n_b = sum(d.out_features for d in dense)
        self.n_decay = n_w
        self._params = arena_zeros(n_w + n_b, self.dtype)
        self._grads = arena_zeros(n_w + n_b, self.dtype)
        # The model keeps its own views (W, b, dW, db) per Dense: a layer object placed in
        # a second model points its attributes at the newest arena, never this model's.
        self._views: List[Views] = []
        off_w, off_b = 0, n_w
        for d in dense:
            size = d.in_features * d.out_features
            shape = (d.out_features, d.in_features)
            views = (
                self._params[off_w : off_w + size].reshape(shape),
                self._params[off_b : off_b + d.out_features],
                self._grads[off_w : off_w + size].reshape(shape),
                self._grads[off_b : off_b + d.out_features],
            )
            d.W, d.b, d.dW, d.db = views
            if params is None:
                d.W[...] = initial_weights(d.init, d.in_features, d.out_features, rng)
            self._views.append(views)
            off_w, off_b = off_w + size, off_b + d.out_features
        if params is not None:
            self._params[...] = params
        self._dense = dense
        self.last_loss: Union[str, Loss, None] = None  # the last fit's loss, evaluate's default

    # ---- structure ------------------------------------------------------------------------
    @property
    def in_features(self) -> int:
        return self.ops[0].fin

    @property
    def out_features(self) -> int:
        return self.ops[-1].fout

    @property
    def n_params(self) -> int:
        return self._params.size

    @property
    def params(self) -> FloatArray:
        """The flat parameter arena [W1, ..., WL, b1, ..., bL] (Wi of shape (out, in), row-major),
        read only: fit and the optimizers update it in place."""
        return read_only(self._params)

    @property
    def grads(self) -> FloatArray:
        """The gradients of the last backward, laid out as params, read only."""
        return read_only(self._grads)

    def network(self, ops: Optional[Sequence[Op]] = None, role: str = "run") -> Network:
        """The current backend's Network for these ops (the model's own by default), cached.
        forward/backward use their own ("forward" role), so a predict, evaluate or fit in
        between does not replace the pass that backward differentiates."""
        key = (get_backend(), role, tuple(ops or self.ops))
        net = self._nets.get(key)
        if net is None:
            with self._nets_lock:  # threads asking at once share one Network
                net = self._nets.setdefault(key, backend().Network(list(key[2])))
        return net

    def __getstate__(self) -> Dict[str, Any]:
        """copy.deepcopy and pickle: the layers, the dtype, the weights, the generator and the
        last fit's loss; the arena's views, the workspaces and the locks are made afresh."""
        return {
            "layers": self.layers,
            "dtype": np.dtype(self.dtype).name,
            "params": self._params.copy(),
            "rng": self.rng,
            "last_loss": self.last_loss,
            "uid": self._uid,
        }

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self._setup(state["layers"], state["dtype"], state["rng"], state["params"])
        self.last_loss = state["last_loss"]
        self._uid = state.get("uid") or self._uid

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential([{inner}], dtype={np.dtype(self.dtype).name})"

    # ---- forward / backward ---------------------------------------------------------------
    def _input(self, X: ArrayLike) -> FloatArray:
        X = v.floating(X, "X")
        if X.ndim != 2 or X.shape[1] != self.in_features:
            raise ValueError(f"X: expected shape (N, {self.in_features}), got {X.shape}")
        return np.ascontiguousarray(X, dtype=self.dtype)

    def forward(self, X: ArrayLike) -> FloatArray:
        """X (N, in) -> the last layer's output (N, out); keeps what backward needs (per
        thread: a backward differentiates the forward made on its own thread)."""
        local = self._local
        local.net, local.out_shape = self.network(role="forward"), None
        out: FloatArray = local.net.forward(self._params, self._input(X))
        local.out_shape = out.shape
        return out

    def backward(self, dout: ArrayLike) -> FloatArray:
        """dout = d loss / d output (N, out) -> dX; overwrites every layer's gradients."""
        local = self._local
        if getattr(local, "out_shape", None) is None:
            raise ValueError("dout: expected a forward pass on this thread before backward")
        dout = v.floating(dout, "dout")
        if dout.shape != local.out_shape:
            raise ValueError(
                f"dout: expected shape {local.out_shape} (the forward output), got {dout.shape}"
            )
        dout = np.ascontiguousarray(dout, dtype=self.dtype)
        with self._train_lock:  # the gradient arena holds one backward's gradients, whole
            dx: FloatArray = local.net.backward(self._params, self._grads, dout)
            return dx

    def predict(self, X: ArrayLike, rows: int = 1024) -> FloatArray:
        """The last layer's output for X (N, in), computed `rows` at a time."""
        rows = v.integer(rows, "rows", minimum=1)
        return forward_in_chunks(self.network(), self._params, self._input(X), rows)

    def predict_classes(self, X: ArrayLike) -> IntArray:
        """argmax per row, or for one output the 0/1 decision (0.5 after a sigmoid, else 0)."""
        return decisions(self.predict(X), self.ops[-1].activation)

    # ---- parameters -----------------------------------------------------------------------
    def get_weights(self) -> list[FloatArray]:
        """Copies, in the order [W1, b1, W2, b2, ...]."""
        return [a.copy() for W, b, _, _ in self._views for a in (W, b)]

    def gradients(self) -> list[FloatArray]:
        """Copies of the last backward's gradients, in get_weights' order. (fit with plain GD
        updates the weights inside the weight GEMMs and does not store gradients here.)"""
        return [a.copy() for _, _, dW, db in self._views for a in (dW, db)]

    def set_weights(self, weights: Iterable[ArrayLike]) -> None:
        """Weights in get_weights' order, shapes exactly as there."""
        targets = [a for W, b, _, _ in self._views for a in (W, b)]
        if isinstance(weights, (str, bytes, np.ndarray)) or not hasattr(weights, "__iter__"):
            raise TypeError(
                f"weights: expected a list of arrays [W1, b1, ...], got {type(weights).__name__}"
            )
        weights = list(weights)
        if len(weights) != len(targets):
            raise ValueError(
                f"weights: expected {len(targets)} arrays [W1, b1, ...], got {len(weights)}"
            )
        checked = []
        for i, (w, t) in enumerate(zip(weights, targets)):
            w = v.floating(w, f"weights[{i}]")
            if w.shape != t.shape:
                raise ValueError(f"weights[{i}]: expected shape {t.shape}, got {w.shape}")
            checked.append(w)
        for w, t in zip(checked, targets):
            t[...] = w

    # ---- training -------------------------------------------------------------------------
    # Train; returns a History (see training.fit for the arguments).
    fit = training.fit

    def evaluate(
        self,
        X: ArrayLike,
        y: ArrayLike,
        loss: Union[str, Loss, None] = None,
        sample_weight: Optional[ArrayLike] = None,
    ) -> dict[str, float]:
        """{"loss": ..., and "accuracy" for class targets}, weighted means with sample_weight;
        loss defaults to the last fit's."""
        loss = loss if loss is not None else (self.last_loss or "cross_entropy")
        return training.evaluate(self, X, y, loss, sample_weight=sample_weight)

    def save(self, path: PathLike, optimizer: Optional[Optimizer] = None) -> None:
        """Write the model to path atomically (see pycvnn.io); with the optimizer that trains
        it, its hyperparameters, step count and state too, so a loaded pair resumes exactly."""
        io.save(self, path, optimizer=optimizer)


def MLP(
    sizes: Sequence[int],
    activation: str = "relu",
    output: Optional[str] = None,
    seed: Optional[int] = None,
    dtype: DTypeLike = "float32",
) -> Sequential:
    """Dense layers of the given sizes, [in, h1, ..., out], with `activation` between them and
    `output` (None, "softmax", "sigmoid", ...) after the last, initialised as the activation's
    registry entry says (He for relu/leaky_relu, Xavier otherwise)."""
    if isinstance(sizes, np.ndarray) and sizes.ndim == 1:
        sizes = sizes.tolist()
    if not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
        raise ValueError(f"sizes: expected [in, ..., out] with at least two sizes, got {sizes!r}")
    sizes = [v.integer(n, f"sizes[{i}]", minimum=1, exc=ValueError) for i, n in enumerate(sizes)]
    v.name_in(activation, "activation", ACTIVATION_NAMES)
    if output is not None:
        v.name_in(output, "output", ACTIVATION_NAMES)
    init = REGISTRY[activation].init
    layers = []
    for i, (fin, fout) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        layers.append(Dense(fin, fout, activation=output if last else activation, init=init))
    return Sequential(layers, seed=seed, dtype=dtype)


@overload
def load(path: PathLike, with_optimizer: Literal[False] = False) -> Sequential: ...
@overload
def load(
    path: PathLike, with_optimizer: Literal[True]
) -> Tuple[Sequential, Optional[Optimizer]]: ...
@overload
def load(
    path: PathLike, with_optimizer: bool
) -> Union[Sequential, Tuple[Sequential, Optional[Optimizer]]]: ...
def load(
    path: PathLike, with_optimizer: bool = False
) -> Union[Sequential, Tuple[Sequential, Optional[Optimizer]]]:
    """The model saved at path; with_optimizer=True gives (model, optimizer), the optimizer
    saved with it (None if there is none) bound to the new model, so that
    model.fit(..., optimizer=optimizer) continues as the saved pair would have.
    FileNotFoundError if missing; ValueError naming the file for a foreign, truncated,
    damaged, hostile or newer-version file."""
    with_optimizer = v.flag(with_optimizer, "with_optimizer")
    layers, dtype, params, saved = io.read(path, with_optimizer=True)
    model = Sequential.__new__(Sequential)
    model._setup(layers, dtype, rng_for(None), params)
    if not with_optimizer:
        return model
    if saved is None:
        return model, None
    optimizer, t, state = saved
    for buf, row in zip(optimizer.state(model), state):  # state() makes it the model's own
        buf[...] = row
    optimizer.t = t
    return model, optimizer
