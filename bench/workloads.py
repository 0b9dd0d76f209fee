"""Training-step workloads shared by compare.py and bench_step.py.

The reference configs (tiny, mnist, wide), random float32 data with integer labels, and one
runner per peer (pycvnn cpp, pycvnn numpy, PyTorch CPU, scikit-learn MLPClassifier). Every
runner starts from the same initial weights (a pycvnn MLP's arena) and trains on the same K
batches, in order, with cross-entropy on softmax outputs:

    runner.chunk()     the K training steps (one timing sample)
    runner.steps(n)    the first n of them, from the current weights
    runner.losses(n)   the first n batch losses from a fresh copy of the initial weights,
                       for checking the peer against the NumPy reference before timing
"""

import importlib.util
from dataclasses import dataclass

import numpy as np

import pycvnn
from pycvnn import _core, reference
from pycvnn._net import arena_zeros, strip_output

# name -> (layer sizes, batch size)
CONFIGS = {
    "tiny": ((64, 32, 10), 32),
    "mnist": ((784, 256, 128, 10), 128),
    "wide": ((1024, 1024, 1024, 10), 256),
}
LEARNING_RATES = {"gd": 0.01, "adam": 1e-3}
N_STATE = {"gd": 0, "adam": 2}  # optimizer state buffers, as pycvnn.optim keeps them
PEERS = ("cpp", "numpy", "torch", "sklearn")
# Peer -> (importable module, what to install); pycvnn's own peers are always there.
OPTIONAL = {
    "torch": ("torch", "torch==2.13.0 (pip install -e .[bench])"),
    "sklearn": ("sklearn", "scikit-learn (pip install -e .[bench])"),
    "keras": ("keras", "keras (pip install -e .[bench])"),
}


def missing_reason(peer):
    """None if the peer can run here, else why not."""
    if peer not in OPTIONAL:
        return None
    module, install = OPTIONAL[peer]
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed: {install}"
    return None


_limits = None  # threadpoolctl's limiter, kept alive for the whole process


def single_thread():
    """One thread for every peer: pycvnn's core, NumPy's and scikit-learn's BLAS/OpenMP pools
    (threadpoolctl), PyTorch's intra-op pool. Returns notes on what could not be limited."""
    global _limits
    notes = []
    if missing_reason("torch") is None:
        import torch

        torch.set_num_threads(1)
    if missing_reason("sklearn") is None:
        import sklearn.neural_network  # noqa: F401  (loads its OpenMP runtime before limiting)
    try:
        from threadpoolctl import threadpool_limits

        _limits = threadpool_limits(limits=1)
    except ImportError:
        notes.append(
            "threadpoolctl is not installed: NumPy's BLAS threads are not limited "
            "(pip install -e .[bench])"
        )
    pycvnn.set_num_threads(1)  # after threadpoolctl, which also sees the core's OpenBLAS
    return notes


@dataclass
class Workload:
    config: str
    optimizer: str
    sizes: tuple
    batch: int
    n_batches: int
    X: np.ndarray  # (n_batches * batch, sizes[0]) float32
    y: np.ndarray  # (n_batches * batch,) int64 class ids
    params: np.ndarray  # the initial arena [W1, ..., WL, b1, ..., bL], float32
    ops: list  # the training network's ops (softmax stripped: fused into the loss)

    @property
    def lr(self):
        return LEARNING_RATES[self.optimizer]

    def batch_slice(self, i):
        return slice(i * self.batch, (i + 1) * self.batch)

    def layers(self, params=None):
        """[(W (out, in), b (out,))] views of an arena (the initial one by default)."""
        params = self.params if params is None else params
        pairs = list(zip(self.sizes[:-1], self.sizes[1:]))
        off_w, off_b = 0, sum(i * o for i, o in pairs)
        views = []
        for fin, fout in pairs:
            views.append(
                (
                    params[off_w : off_w + fin * fout].reshape(fout, fin),
                    params[off_b : off_b + fout],
                )
            )
            off_w, off_b = off_w + fin * fout, off_b + fout
        return views


def make_workload(config, optimizer, n_batches, seed=0):
    """The config's MLP (ReLU hidden layers, softmax output) and n_batches of random data."""
    sizes, batch = CONFIGS[config]
    model = pycvnn.MLP(list(sizes), activation="relu", output="softmax", seed=seed)
    ops, _ = strip_output(model.ops, "cross_entropy")
    rng = np.random.default_rng(seed + 1)
    X = rng.standard_normal((n_batches * batch, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], n_batches * batch, dtype=np.int64)
    return Workload(config, optimizer, sizes, batch, n_batches, X, y, model._params.copy(), ops)


# ---- peers ----------------------------------------------------------------------------------


class PycvnnRunner:
    """Network.train_epoch over the K batches: exactly one fit epoch's call (fit with
    verbose=False makes one such call per epoch, with a shuffled order)."""

    def __init__(self, work, module):
        self.work, self.module = work, module
        self.net = module.Network(work.ops)
        self.rule = module.UpdateRule(work.optimizer)
        self.spec = module.LossSpec("cross_entropy", from_logits=True)
        self.order = np.arange(work.n_batches * work.batch, dtype=np.int64)
        self.reset()

    def reset(self):
        # 64-byte aligned buffers, as a model's arena and its optimizer state are (fit's case)
        p = self.work.params
        self.params, self.grads = arena_zeros(p.size, p.dtype), arena_zeros(p.size, p.dtype)
        self.params[...] = p
        n_state = N_STATE[self.work.optimizer]
        self.state = [arena_zeros(p.size if i < n_state else 0, p.dtype) for i in range(2)]
        self.t = 0

    def run(self, order):
        out = self.net.train_epoch(
            self.params,
            self.grads,
            *self.state,
            self.work.X,
            self.work.y,
            order,
            self.work.batch,
            self.work.lr,
            self.t,
            self.spec,
            self.rule,
        )
        self.t += len(out)
        return out

    def steps(self, n):
        out = self.run(self.order[: n * self.work.batch])
        if len(out) != n:
            raise RuntimeError(f"{self.module.__name__}: training diverged during timing")

    def chunk(self):
        self.steps(self.work.n_batches)

    def losses(self, n):
        self.reset()
        out = self.run(self.order[: n * self.work.batch])
        self.reset()
        return np.asarray(out)


class TorchRunner:
    """A plain PyTorch loop on pre-sliced batch tensors: zero_grad, forward,
    CrossEntropyLoss, backward, step (torch.optim.SGD / Adam, default settings)."""

    def __init__(self, work):
        import torch

        self.torch, self.work = torch, work
        layers = []
        for i, (fin, fout) in enumerate(zip(work.sizes[:-1], work.sizes[1:])):
            layers.append(torch.nn.Linear(fin, fout))
            if i < len(work.sizes) - 2:
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.batches = [
            (
                torch.from_numpy(work.X[work.batch_slice(i)]),
                torch.from_numpy(work.y[work.batch_slice(i)]),
            )
            for i in range(work.n_batches)
        ]
        self.reset()

    def reset(self):
        linears = [m for m in self.model if isinstance(m, self.torch.nn.Linear)]
        with self.torch.no_grad():
            for lin, (W, b) in zip(linears, self.work.layers()):
                lin.weight.copy_(self.torch.from_numpy(W))
                lin.bias.copy_(self.torch.from_numpy(b))
        make = {"gd": self.torch.optim.SGD, "adam": self.torch.optim.Adam}[self.work.optimizer]
        self.opt = make(self.model.parameters(), lr=self.work.lr)

    def step(self, xb, yb):
        self.opt.zero_grad()
        loss = self.loss_fn(self.model(xb), yb)
        loss.backward()
        self.opt.step()
        return loss

    def steps(self, n):
        for xb, yb in self.batches[:n]:
            self.step(xb, yb)

    def chunk(self):
        self.steps(self.work.n_batches)

    def losses(self, n):
        self.reset()
        out = [self.step(*self.batches[i]).item() for i in range(n)]
        self.reset()
        return np.asarray(out)


class SklearnRunner:
    """MLPClassifier (solver 'sgd' without momentum, or 'adam'; alpha=0; shuffle=False);
    a chunk is one partial_fit over the K batches: scikit-learn's own mini-batch loop."""

    def __init__(self, work):
        from sklearn.neural_network import MLPClassifier

        self.work = work
        solver = {"gd": "sgd", "adam": "adam"}[work.optimizer]
        self.make = lambda: MLPClassifier(
            hidden_layer_sizes=work.sizes[1:-1],
            activation="relu",
            solver=solver,
            alpha=0.0,
            batch_size=work.batch,
            learning_rate="constant",
            learning_rate_init=work.lr,
            momentum=0.0,
            nesterovs_momentum=False,
            shuffle=False,
            random_state=0,
        )
        self.reset()

    def reset(self):
        """A fresh classifier holding the initial weights and a fresh optimizer state. The
        first partial_fit only creates the weights (its update is overwritten here)."""
        w = self.work
        self.clf = self.make()
        one = w.batch_slice(0)
        self.clf.partial_fit(w.X[one], w.y[one], classes=np.arange(w.sizes[-1]))
        for coef, icpt, (W, b) in zip(self.clf.coefs_, self.clf.intercepts_, w.layers()):
            coef[...] = W.T
            icpt[...] = b
        del self.clf._optimizer  # the next partial_fit starts a new SGD/Adam state

    def steps(self, n):
        rows = slice(0, n * self.work.batch)
        self.clf.partial_fit(self.work.X[rows], self.work.y[rows])

    def chunk(self):
        self.steps(self.work.n_batches)

    def losses(self, n):
        self.reset()
        out = []
        for i in range(n):
            s = self.work.batch_slice(i)
            self.clf.partial_fit(self.work.X[s], self.work.y[s])
            out.append(self.clf.loss_)  # this batch's loss, before its update
        self.reset()
        return np.asarray(out)


def make_runner(peer, work):
    if peer == "cpp":
        return PycvnnRunner(work, _core)
    if peer == "numpy":
        return PycvnnRunner(work, reference)
    if peer == "torch":
        return TorchRunner(work)
    if peer == "sklearn":
        return SklearnRunner(work)
    raise ValueError(f"peer: expected one of {PEERS}, got {peer!r}")


# Losses of the first VERIFY_STEPS steps must match the NumPy reference. cpp is the same
# arithmetic in float32 (rtol 1e-4), and so is PyTorch's; scikit-learn's Adam adds eps to
# sqrt(v) rather than sqrt(v_hat), which moves its losses by ~1e-4 after two steps on wide.
VERIFY_STEPS = 3
RTOL = {"cpp": 1e-4, "numpy": 0.0, "torch": 1e-4, "sklearn": 1e-3}


def verify(runner, peer, want):
    """Raise AssertionError unless the peer's first losses match the reference's `want`."""
    got = runner.losses(len(want))
    np.testing.assert_allclose(
        got,
        want,
        rtol=RTOL[peer],
        atol=0,
        err_msg=f"{peer}: first {len(want)} batch losses vs the NumPy reference",
    )
    return got
