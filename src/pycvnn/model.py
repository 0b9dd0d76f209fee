"""Models: Sequential and MLP over one flat parameter arena.

The arena is [W1, ..., WL, b1, ..., bL] (weights first, so weight decay touches one prefix);
each Dense's W and b are views into it, and its dW, db views into the gradient arena. The
backend's Network runs forward and backward over these buffers; fit hands it whole epochs.
"""

import threading

import numpy as np

from . import _validate as v
from ._backend import backend, get_backend
from .layers import ACTIVATION_LAYERS, Dense, Layer, initial_weights

DTYPES = {"float32": np.float32, "float64": np.float64}
# A model ending in this activation, trained with this loss, takes the loss on the logits.
FUSED_OUTPUT = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}


def _dtype(dtype):
    try:  # np.dtype(None) is float64: None must not pass as a choice
        name = None if dtype is None else np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    return DTYPES[name]


def arena_zeros(n, dtype):
    """n zeros starting on a 64-byte boundary (a cache line, one AVX-512 vector): the core's
    vector loads and stores over the arena then never split two lines."""
    dtype = np.dtype(dtype)
    raw = np.zeros(n * dtype.itemsize + 64, np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start:start + n * dtype.itemsize].view(dtype)


def rng_for(seed):
    """np.random.default_rng(seed), with the error naming `seed`."""
    if seed is not None and (isinstance(seed, (bool, np.bool_))
                             or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed: expected None or a non-negative int, got {seed!r}")
    if seed is not None and seed < 0:
        raise ValueError(f"seed: expected None or a non-negative int, got {seed!r}")
    return np.random.default_rng(seed)


def _ops(layers):
    """Layers -> ops [(kind, in, out, activation, alpha)], each Dense fused with the
    activation layer right after it (when it has none of its own)."""
    ops, i, width = [], 0, None
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, Dense):
            if width is not None and layer.in_features != width:
                raise ValueError(f"layers[{i}]: expected in_features={width} (the previous "
                                 f"layer's output), got {layer.in_features}")
            act, alpha = layer.dense_activation or "none", 0.01
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if act == "none" and nxt is not None and nxt.activation is not None:
                act, alpha, i = nxt.activation, nxt.alpha, i + 1
            width = layer.out_features
            ops.append(("dense", layer.in_features, width, act, alpha))
        else:
            if width is None:
                raise ValueError(f"layers[{i}]: expected a Dense first layer (it fixes the "
                                 f"input size), got {layer!r}")
            ops.append(("act", width, width, layer.activation, layer.alpha))
        i += 1
    return ops


def strip_output(ops, loss_name):
    """The training ops for this loss: a final softmax (cross-entropy) or sigmoid (binary
    cross-entropy) is dropped so the loss takes logits with the fused gradient.
    Returns (ops, fused)."""
    if FUSED_OUTPUT.get(loss_name) != ops[-1][3]:
        return ops, False
    kind, fin, fout, _, alpha = ops[-1]
    last = [] if kind == "act" else [(kind, fin, fout, "none", alpha)]
    ops = ops[:-1] + last
    if not ops:
        raise ValueError(f"layers: a model of a lone {FUSED_OUTPUT[loss_name]} has nothing to train")
    return ops, True


def forward_in_chunks(net, params, X, rows):
    """net.forward over X, `rows` at a time, so the network's workspace never grows past
    that many rows (fit passes its batch size)."""
    if X.shape[0] <= rows:
        return net.forward(params, X, keep=False)
    with backend().ThreadSession():  # one thread count for every chunk
        return np.concatenate([net.forward(params, X[i : i + rows], keep=False)
                               for i in range(0, X.shape[0], rows)])


def decisions(out, last_activation, fused=False):
    """Class decisions from a model's output: argmax per row, or for one output the 0/1
    decision at 0.5 after a sigmoid applied (not fused into the loss), else at 0."""
    if out.shape[1] > 1:
        return out.argmax(axis=1)
    threshold = 0.5 if (last_activation == "sigmoid" and not fused) else 0.0
    return (out[:, 0] > threshold).astype(np.int64)


class Sequential:
    """Layers applied in order. Sequential([Dense(64, 32, "relu"), Dense(32, 10), Softmax()])."""

    def __init__(self, layers, seed=None, dtype="float32"):
        layers = list(layers) if isinstance(layers, (list, tuple)) else None
        if not layers or not all(isinstance(layer, Layer) for layer in layers):
            raise ValueError("layers: expected a non-empty list of pycvnn layers")
        self.layers = layers
        self.dtype = _dtype(dtype)
        self.ops = _ops(layers)
        self._nets = {}  # (backend, role, ops) -> the backend's Network
        self._nets_lock = threading.Lock()
        self._train_lock = threading.RLock()  # one fit at a time
        self._local = threading.local()  # each thread's forward pass, for its backward
        self.rng = rng_for(seed)
        dense = [layer for layer in layers if isinstance(layer, Dense)]
        n_w = sum(d.in_features * d.out_features for d in dense)
        n_b = sum(d.out_features for d in dense)
        self.n_decay = n_w
        self._params = arena_zeros(n_w + n_b, self.dtype)
        self._grads = arena_zeros(n_w + n_b, self.dtype)
        # The model keeps its own views (W, b, dW, db) per Dense: a layer object placed in
        # a second model points its attributes at the newest arena, never this model's.
        self._views = []
        off_w, off_b = 0, n_w
        for d in dense:
            size = d.in_features * d.out_features
            shape = (d.out_features, d.in_features)
            views = (self._params[off_w : off_w + size].reshape(shape),
                     self._params[off_b : off_b + d.out_features],
                     self._grads[off_w : off_w + size].reshape(shape),
                     self._grads[off_b : off_b + d.out_features])
            d.W, d.b, d.dW, d.db = views
            d.W[...] = initial_weights(d.init, d.in_features, d.out_features, self.rng)
            self._views.append(views)
            off_w, off_b = off_w + size, off_b + d.out_features
        self._dense = dense
        self.last_loss = None  # the loss of the last fit, evaluate's default

    # ---- structure ------------------------------------------------------------------------
    @property
    def in_features(self):
        return self.ops[0][1]

    @property
    def out_features(self):
        return self.ops[-1][2]

    @property
    def n_params(self):
        return self._params.size

    def network(self, ops=None, role="run"):
        """The current backend's Network for these ops (the model's own by default), cached.
        forward/backward use their own ("forward" role), so a predict, evaluate or fit in
        between does not replace the pass that backward differentiates."""
        key = (get_backend(), role, tuple(ops or self.ops))
        net = self._nets.get(key)
        if net is None:
            with self._nets_lock:  # threads asking at once share one Network
                net = self._nets.setdefault(key, backend().Network(list(key[2])))
        return net

    def __getstate__(self):
        """copy.deepcopy and pickle: the layers, the dtype, the weights, the generator and the
        last fit's loss; the arena's views, the workspaces and the locks are made afresh."""
        return {"layers": self.layers, "dtype": np.dtype(self.dtype).name,
                "params": self._params.copy(), "rng": self.rng, "last_loss": self.last_loss}

    def __setstate__(self, state):
        self.__init__(state["layers"], dtype=state["dtype"])
        self._params[...] = state["params"]
        self.rng, self.last_loss = state["rng"], state["last_loss"]

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential([{inner}], dtype={np.dtype(self.dtype).name})"

    # ---- forward / backward ---------------------------------------------------------------
    def _input(self, X):
        X = v.floating(X, "X")
        if X.ndim != 2 or X.shape[1] != self.in_features:
            raise ValueError(f"X: expected shape (N, {self.in_features}), got {X.shape}")
        return np.ascontiguousarray(X, dtype=self.dtype)

    def forward(self, X):
        """X (N, in) -> the last layer's output (N, out); keeps what backward needs (per
        thread: a backward differentiates the forward made on its own thread)."""
        local = self._local
        local.net, local.out_shape = self.network(role="forward"), None
        out = local.net.forward(self._params, self._input(X))
        local.out_shape = out.shape
        return out

    def backward(self, dout):
        """dout = d loss / d output (N, out) -> dX; overwrites every layer's gradients."""
        local = self._local
        if getattr(local, "out_shape", None) is None:
            raise ValueError("dout: expected a forward pass on this thread before backward")
        dout = v.floating(dout, "dout")
        if dout.shape != local.out_shape:
            raise ValueError(f"dout: expected shape {local.out_shape} (the forward output), got {dout.shape}")
        dout = np.ascontiguousarray(dout, dtype=self.dtype)
        with self._train_lock:  # the gradient arena holds one backward's gradients, whole
            return local.net.backward(self._params, self._grads, dout)

    def predict(self, X, rows=1024):
        """The last layer's output for X (N, in), computed `rows` at a time."""
        rows = v.integer(rows, "rows", minimum=1)
        return forward_in_chunks(self.network(), self._params, self._input(X), rows)

    def predict_classes(self, X):
        """argmax per row, or for one output the 0/1 decision (0.5 after a sigmoid, else 0)."""
        return decisions(self.predict(X), self.ops[-1][3])

    # ---- parameters -----------------------------------------------------------------------
    def get_weights(self):
        """Copies, in the order [W1, b1, W2, b2, ...]."""
        return [a.copy() for W, b, _, _ in self._views for a in (W, b)]

    def gradients(self):
        """Copies of the last backward's gradients, in get_weights' order. (fit with plain GD
        updates the weights inside the weight GEMMs and does not store gradients here.)"""
        return [a.copy() for _, _, dW, db in self._views for a in (dW, db)]

    def set_weights(self, weights):
        """Weights in get_weights' order, shapes exactly as there."""
        targets = [a for W, b, _, _ in self._views for a in (W, b)]
        if isinstance(weights, (str, bytes, np.ndarray)) or not hasattr(weights, "__iter__"):
            raise TypeError(f"weights: expected a list of arrays [W1, b1, ...], got {type(weights).__name__}")
        weights = list(weights)
        if len(weights) != len(targets):
            raise ValueError(f"weights: expected {len(targets)} arrays [W1, b1, ...], got {len(weights)}")
        checked = []
        for i, (w, t) in enumerate(zip(weights, targets)):
            w = v.floating(w, f"weights[{i}]")
            if w.shape != t.shape:
                raise ValueError(f"weights[{i}]: expected shape {t.shape}, got {w.shape}")
            checked.append(w)
        for w, t in zip(checked, targets):
            t[...] = w

    # ---- training -------------------------------------------------------------------------
    def fit(self, X, y, loss="cross_entropy", optimizer="adam", epochs=10, batch_size=32,
            shuffle=True, seed=None, validation_data=None, schedule=None, callbacks=(),
            verbose=True):
        """Train; returns a History. batch_size=None is batch GD, 1 stochastic, m mini-batch."""
        from .training import fit

        return fit(self, X, y, loss=loss, optimizer=optimizer, epochs=epochs,
                   batch_size=batch_size, shuffle=shuffle, seed=seed,
                   validation_data=validation_data, schedule=schedule, callbacks=callbacks,
                   verbose=verbose)

    def evaluate(self, X, y, loss=None):
        """{"loss": ..., and "accuracy" for class targets}; loss defaults to the last fit's."""
        from .training import evaluate

        return evaluate(self, X, y, loss if loss is not None else (self.last_loss or "cross_entropy"))

    def save(self, path):
        from .io import save

        save(self, path)


def MLP(sizes, activation="relu", output=None, seed=None, dtype="float32"):
    """Dense layers of the given sizes, [in, h1, ..., out], with `activation` between them and
    `output` (None, "softmax", "sigmoid", ...) after the last. He init for relu/leaky_relu,
    Xavier otherwise."""
    if isinstance(sizes, np.ndarray) and sizes.ndim == 1:
        sizes = sizes.tolist()
    if not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
        raise ValueError(f"sizes: expected [in, ..., out] with at least two sizes, got {sizes!r}")
    sizes = [v.integer(n, f"sizes[{i}]", minimum=1, exc=ValueError) for i, n in enumerate(sizes)]
    v.name_in(activation, "activation", ACTIVATION_LAYERS)
    if output is not None:
        v.name_in(output, "output", ACTIVATION_LAYERS)
    init = "he" if activation in ("relu", "leaky_relu") else "xavier"
    layers = []
    for i, (fin, fout) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        layers.append(Dense(fin, fout, activation=output if last else activation, init=init))
    return Sequential(layers, seed=seed, dtype=dtype)
