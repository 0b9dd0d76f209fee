"""fit and evaluate: the glue around the backend's epoch loop, History, callbacks, progress.

On either backend an epoch is one call (a few, for the progress bar) to Network.train_epoch,
which shuffles nothing itself: the order comes from np.random.default_rng(seed), one
permutation per epoch, so both backends visit the samples in the same order.
"""

from __future__ import annotations

import functools
import math
import sys
import time
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    TextIO,
    Tuple,
    TypeVar,
    Union,
    cast,
)

import numpy as np

from . import _validate as v
from . import losses as L
from . import optim
from ._backend import backend
from ._net import TrainingDiverged, decisions, rng_for, strip_output
from ._types import Array, ArrayLike, DTypeLike, FloatArray, IntArray

if TYPE_CHECKING:
    from ._core import LossSpec, Network
    from .model import Sequential

F = TypeVar("F", bound=Callable[..., Any])
# What training or evaluating a model with a loss runs on: (network, LossSpec, loss name,
# fused, the loss with reduction "none").
Plan = Tuple["Network", "LossSpec", str, bool, L.Loss]

# ---- losses and targets -------------------------------------------------------------------


def loss_spec(loss: Union[str, L.Loss]) -> Tuple[str, Dict[str, Any]]:
    """A loss name or pycvnn.losses object -> (name, options). Training always takes the
    batch mean, whatever reduction the object was built with."""
    if not isinstance(loss, (str, L.Loss)):
        raise ValueError(f"loss: expected a loss name or a pycvnn.losses object, got {loss!r}")
    if isinstance(loss, str):
        v.name_in(loss, "loss", L._CLASSES)
    obj = L.get(loss)
    return ("l2" if obj.name == "mse" else obj.name), dict(obj.options)


def prepare_targets(
    y: ArrayLike, name: str, n: int, out: int, dtype: DTypeLike
) -> Tuple[Array, Optional[IntArray]]:
    """y checked and shaped for the loss kernels on an output of (n, out).
    Returns (targets, labels) where labels are class ids for accuracy, or None."""
    y = v.numeric(y, "y")
    if name == "binary_cross_entropy" and out != 1:
        raise ValueError(
            f"loss: binary_cross_entropy needs one output (a sigmoid), got a model "
            f"with {out} outputs; use cross_entropy for several classes"
        )
    if y.ndim == 0 or y.shape[0] != n:
        got = "a scalar" if y.ndim == 0 else y.shape[0]
        raise ValueError(f"y: expected {n} rows (as X), got {got}")
    if name in ("cross_entropy", "hinge", "squared_hinge") and out > 1:
        if y.ndim == 1:
            ids = v.class_ids(y, "y", n, out)
            return ids, ids
        if name == "cross_entropy" and y.shape == (n, out):
            probs = v.like(y, np.empty((n, out), dtype), "y", "the model output")
            v.in_range(probs, "y", 0, 1, "class probabilities")
            return probs, probs.argmax(axis=1)
        raise ValueError(
            f"y: expected class ids ({n},) or probabilities ({n}, {out}), got {y.shape}"
        )
    if name in ("cross_entropy", "hinge", "squared_hinge", "binary_cross_entropy") and out == 1:
        if y.shape not in ((n,), (n, 1)):
            raise ValueError(
                f"y: expected binary labels of shape ({n},) or ({n}, 1), got {y.shape}"
            )
        y = v.floating(y, "y").astype(dtype).reshape(n, 1)
        labels = set(np.unique(y).tolist())
        if name == "binary_cross_entropy":
            v.in_range(y, "y", 0, 1, "labels")
            return y, (y[:, 0] > 0.5).astype(np.int64) if labels <= {0, 1} else None
        if name == "cross_entropy":
            raise ValueError(
                "loss: cross_entropy needs at least two outputs; use "
                "binary_cross_entropy for one sigmoid output"
            )
        if labels <= {0, 1}:
            y = 2 * y - 1
        elif not labels <= {-1, 1}:
            raise ValueError(
                f"y: expected binary labels in {{-1, +1}} or {{0, 1}}, got {sorted(labels)[:4]}"
            )
        return y, (y[:, 0] > 0).astype(np.int64)
    if y.ndim == 1 and out == 1:
        y = y.reshape(n, 1)
    if y.shape != (n, out):
        raise ValueError(f"y: expected shape ({n}, {out}) (the model output), got {y.shape}")
    y = v.like(y, np.empty((n, out), dtype), "y", "the model output")
    if name == "dice":
        v.in_range(y, "y", 0, 1, "mask values")
    if (
        name in ("l1", "l2", "huber")
        and out > 1
        and np.all((y == 0) | (y == 1))
        and np.all(y.sum(axis=1) == 1)
    ):
        return y, y.argmax(axis=1)  # one-hot targets: class decisions by argmax
    return y, None


def _plan(model: Sequential, loss: Union[str, L.Loss]) -> Plan:
    """(network, LossSpec, loss name, fused, row losses) for training or evaluating model with
    loss; row losses is the loss with reduction "none", which a weighted mean needs."""
    name, opts = loss_spec(loss)
    ops, fused = strip_output(model.ops, name)
    if fused:
        opts["from_logits"] = True
    spec = backend().LossSpec(name, **opts)
    return model.network(ops), spec, name, fused, L.get(name, **opts, reduction="none")


def sample_weights(
    sample_weight: Optional[ArrayLike], n: int, name: str = "sample_weight"
) -> Optional[FloatArray]:
    """One weight per row as float64, finite, >= 0 and not all zero; None stays None."""
    if sample_weight is None:
        return None
    w = v.numeric(sample_weight, name)
    if w.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},) (one weight per row of X), got {w.shape}")
    w = v._finite(w.astype(np.float64), name)
    if (w < 0).any():
        i = int(np.argmax(w < 0))
        raise ValueError(f"{name}: expected weights >= 0, got {w[i]} at index {i}")
    if not w.sum() > 0:
        raise ValueError(f"{name}: expected a positive total weight, got all zeros")
    return w


# fit evaluates over X in chunks of at least its batch size and up to EVAL_FLOATS output values
# a chunk: far fewer forward calls than one a batch, with the network's workspace still bounded
# (a forward grows only its outputs), and a larger chunk gains no speed for its memory.
EVAL_FLOATS = 1 << 16


def _eval_rows(model: Sequential, batch: int) -> int:
    return max(batch, EVAL_FLOATS // sum(op.fout for op in model.ops))


def _loss_and_accuracy(
    model: Sequential,
    plan: Plan,
    X: FloatArray,
    targets: Array,
    labels: Optional[IntArray],
    rows: int,
    with_loss: bool = True,
    weights: Optional[FloatArray] = None,
) -> Tuple[float, Optional[float]]:
    """Mean loss and accuracy over X (weighted by `weights`, if given), `rows` at a time:
    neither the network's workspace nor any temporary grows with len(X). Every loss's "mean"
    weighs rows equally, so the chunk means combine by their row counts. One thread count for
    every chunk."""
    net, spec, _, fused, row_losses = plan
    total, correct, n = 0.0, 0.0, X.shape[0]
    with backend().ThreadSession():
        for i in range(0, n, rows):
            pred = net.forward(model.params, X[i : i + rows], keep=False)
            m = pred.shape[0]
            w = None if weights is None else weights[i : i + m]
            if with_loss and w is None:
                total += float(spec.value(pred, targets[i : i + rows])) * m
            elif with_loss:
                per_row = np.asarray(row_losses(pred, targets[i : i + rows]), np.float64)
                total += float(w @ per_row.reshape(m, -1).mean(axis=1))
            if labels is not None:
                hits = decisions(pred, model.ops[-1].activation, fused) == labels[i : i + rows]
                correct += float(np.count_nonzero(hits) if w is None else w @ hits)
    norm = n if weights is None else float(weights.sum())
    return total / norm, (correct / norm if labels is not None else None)


def evaluate(
    model: Sequential,
    X: ArrayLike,
    y: ArrayLike,
    loss: Union[str, L.Loss] = "cross_entropy",
    rows: int = 1024,
    sample_weight: Optional[ArrayLike] = None,
) -> dict[str, float]:
    """{"loss": mean loss over X, "accuracy": fraction correct (class targets only)}; with
    sample_weight, both are weighted means."""
    X = model._input(X)
    plan = _plan(model, loss)
    targets, labels = prepare_targets(y, plan[2], X.shape[0], model.out_features, model.dtype)
    weights = sample_weights(sample_weight, X.shape[0])
    value, accuracy = _loss_and_accuracy(model, plan, X, targets, labels, rows, weights=weights)
    result = {"loss": value}
    if accuracy is not None:
        result["accuracy"] = accuracy
    return result


# ---- history, callbacks, progress ---------------------------------------------------------


class Log:
    """A table of records (dicts with the same keys): log["loss"] is a column, log.table()
    a printable table."""

    def __init__(self) -> None:
        self.records: List[Dict[str, Any]] = []

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(dict(record))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: str) -> list[Any]:
        if not self.records or key not in self.records[0]:
            known = list(self.records[0]) if self.records else []
            raise KeyError(f"history: no column {key!r}; columns are {known}")
        return [r[key] for r in self.records]

    @property
    def columns(self) -> list[str]:
        return list(self.records[0]) if self.records else []

    def table(self) -> str:
        cols = self.columns
        lines = ["  ".join(f"{c:>12}" for c in cols)]
        for r in self.records:
            cells = [f"{r[c]:>12d}" if isinstance(r[c], int) else f"{r[c]:>12.6g}" for c in cols]
            lines.append("  ".join(cells))
        return "\n".join(lines)


class History(Log):
    """One record per epoch: epoch, loss, lr, seconds, and accuracy / val_loss / val_accuracy
    where they apply. With fit(..., log_every="batch"), history.batches holds one record per
    batch: step (the optimizer's step count after it), epoch, batch, loss, lr; else it is empty."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = Log()

    def __repr__(self) -> str:
        return f"History({len(self)} epochs)"


class EarlyStopping:
    """Stop when `monitor` has not improved for `patience` epochs; with restore_best, put back
    the weights of the best epoch at the end. Losses improve downwards, accuracies upwards."""

    model: Sequential
    best: float
    wait: int
    best_weights: Optional[FloatArray]
    best_epoch: Optional[int]

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        restore_best: bool = True,
        min_delta: float = 0.0,
    ) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise (ValueError if isinstance(monitor, str) else TypeError)(
                f"monitor: expected the name of a logged column such as 'val_loss', got {monitor!r}"
            )
        self.monitor = monitor
        self.patience = v.integer(patience, "patience", minimum=0, exc=ValueError)
        self.restore_best = v.flag(restore_best, "restore_best")
        self.min_delta = v.number(min_delta, "min_delta", minimum=0)
        self.sign = -1.0 if "acc" in monitor else 1.0

    def on_train_begin(self, model: Sequential) -> None:
        self.model, self.best, self.wait, self.best_weights, self.best_epoch = (
            model,
            math.inf,
            0,
            None,
            None,
        )

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> bool:
        if self.monitor not in logs:
            raise ValueError(f"monitor: {self.monitor!r} is not logged; logged are {sorted(logs)}")
        value = self.sign * logs[self.monitor]
        if value < self.best - self.min_delta:
            self.best, self.wait, self.best_epoch = value, 0, epoch
            if self.restore_best:
                self.best_weights = self.model.params.copy()
            return False
        self.wait += 1
        return self.wait >= self.patience

    def on_train_end(self, model: Sequential) -> None:
        if self.restore_best and self.best_weights is not None:
            model._params[...] = self.best_weights


class ProgressBar:
    """A one-line bar on stderr: epoch 1/10, batches done, running loss."""

    def __init__(self, epochs: int, n_batches: int, stream: Optional[TextIO] = None) -> None:
        self.epochs, self.n_batches = epochs, n_batches
        self.stream = stream or sys.stderr
        self.live = getattr(self.stream, "isatty", lambda: False)()

    def update(self, epoch: int, done: int, running_loss: float) -> None:
        if self.live:
            filled = int(20 * done / self.n_batches)
            self.stream.write(
                f"\repoch {epoch + 1}/{self.epochs} [{'#' * filled}{'.' * (20 - filled)}] "
                f"{done}/{self.n_batches} loss {running_loss:.4f}"
            )
            self.stream.flush()

    def end_epoch(self, epoch: int, logs: Mapping[str, float]) -> None:
        figures = "  ".join(f"{k} {logs[k]:.4g}" for k in logs if k not in ("epoch",))
        self.stream.write(
            f"\repoch {epoch + 1}/{self.epochs} {figures}\x1b[K\n"
            if self.live
            else f"epoch {epoch + 1}/{self.epochs} {figures}\n"
        )
        self.stream.flush()


# ---- fit ----------------------------------------------------------------------------------

CALLBACK_HOOKS = ("on_train_begin", "on_epoch_end", "on_train_end")


def _callbacks(callbacks: Optional[Iterable[Any]]) -> List[Any]:
    """callbacks as a list (None is none), each an object with at least one hook."""
    if callbacks is None:
        return []
    if isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__"):
        raise TypeError(
            f"callbacks: expected a list of callback objects (or None), got {callbacks!r}"
        )
    callbacks = list(callbacks)
    for i, cb in enumerate(callbacks):
        if not any(callable(getattr(cb, hook, None)) for hook in CALLBACK_HOOKS):
            raise TypeError(
                f"callbacks[{i}]: expected an object with any of {list(CALLBACK_HOOKS)}, got {cb!r}"
            )
    return callbacks


def _one_fit_at_a_time(fn: F) -> F:
    """Fits of one model run one at a time (a second waits for the first), and a fit keeps the
    thread count it started with to its end (set_num_threads meanwhile applies after it)."""

    @functools.wraps(fn)
    def run(model: Sequential, *args: Any, **kwargs: Any) -> Any:
        with model._train_lock, backend().ThreadSession():
            return fn(model, *args, **kwargs)

    return cast(F, run)


@_one_fit_at_a_time
def fit(
    model: Sequential,
    X: ArrayLike,
    y: ArrayLike,
    loss: Union[str, L.Loss] = "cross_entropy",
    optimizer: Union[str, optim.Optimizer] = "adam",
    epochs: int = 10,
    batch_size: Optional[int] = 32,
    shuffle: bool = True,
    seed: Optional[int] = None,
    validation_data: Optional[Sequence[ArrayLike]] = None,
    schedule: Optional[Callable[[int], float]] = None,
    callbacks: Optional[Iterable[Any]] = (),
    verbose: bool = True,
    log_every: str = "epoch",
    sample_weight: Optional[ArrayLike] = None,
) -> History:
    """Train model; returns a History. batch_size=None is batch GD, 1 stochastic, m mini-batch.
    The loss and the optimizer are names or objects (pycvnn.losses, pycvnn.optim); schedule
    maps an epoch to its lr; callbacks have any of on_train_begin, on_epoch_end(epoch, logs)
    (returning True stops the fit) and on_train_end. log_every="batch" also records each
    batch's loss in history.batches. sample_weight (N,) weighs each sample's loss and
    gradient: a batch's loss is sum w_i l_i / sum w_i (scikit-learn's normalisation);
    validation_data may then be (X_val, y_val, w_val)."""
    X = model._input(X)
    n = X.shape[0]
    plan = _plan(model, loss)
    net, spec, name = plan[:3]
    targets, labels = prepare_targets(y, name, n, model.out_features, model.dtype)
    epochs = v.integer(epochs, "epochs", minimum=0, exc=ValueError)
    batch = (
        n
        if batch_size is None
        else min(v.integer(batch_size, "batch_size", minimum=1, exc=ValueError), n)
    )
    shuffle = v.flag(shuffle, "shuffle")
    weights = sample_weights(sample_weight, n)
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError(
                "validation_data: expected (X_val, y_val) or (X_val, y_val, w_val), got "
                f"{type(validation_data).__name__}"
            )
        try:  # checked now, not after the first epoch's training
            X_val = model._input(validation_data[0])
            prepare_targets(
                validation_data[1], name, X_val.shape[0], model.out_features, model.dtype
            )
            if len(validation_data) == 3:
                sample_weights(validation_data[2], X_val.shape[0], "w_val")
        except (TypeError, ValueError) as err:
            raise type(err)(f"validation_data: {err}") from None
    if schedule is not None and not callable(schedule):
        raise ValueError(f"schedule: expected a callable schedule(epoch) -> lr, got {schedule!r}")
    callbacks = _callbacks(callbacks)
    per_batch = v.name_in(log_every, "log_every", ("epoch", "batch")) == "batch"
    opt = optim.get(optimizer)
    state1, state2 = opt.state(model)
    rule = opt.update_rule()
    model.last_loss = loss
    rng = rng_for(seed)
    n_batches = math.ceil(n / batch)
    eval_rows = _eval_rows(model, batch)
    # Batches per call: the whole epoch when quiet; ~20 bar updates per epoch when verbose.
    chunk = n_batches if not verbose else max(1, math.ceil(n_batches / 20))
    bar = ProgressBar(epochs, n_batches) if verbose else None
    history = History()
    # The weights at each epoch's start, restored if it diverges (one buffer for the whole fit).
    epoch_start = np.empty_like(model._params)
    for cb in callbacks:
        getattr(cb, "on_train_begin", lambda m: None)(model)

    for epoch in range(epochs):
        if schedule is not None:
            opt.lr = schedule(epoch)
        order = rng.permutation(n) if shuffle else np.arange(n)
        # What each batch's loss counts for in the epoch's: its rows, or its rows' weight.
        batch_weights = (
            np.minimum(batch, n - batch * np.arange(n_batches)).astype(np.float64)
            if weights is None
            else np.add.reduceat(weights[order], np.arange(0, n, batch))
        )
        np.copyto(epoch_start, model._params)
        start = time.perf_counter()
        batch_losses = []
        for first in range(0, n_batches, chunk):
            part = order[first * batch : (first + chunk) * batch]
            # opt._steps is advanced in place, step by step, with the weights.
            out = net.train_epoch(
                model._params,
                model._grads,
                state1,
                state2,
                X,
                targets,
                part,
                batch,
                opt.lr,
                opt._steps,
                spec,
                rule,
                sample_weight=weights,
            )
            batch_losses.extend(out.tolist())
            if not math.isfinite(batch_losses[-1]):
                np.copyto(model._params, epoch_start)
                opt.reset()  # its state holds the diverging steps: start it afresh
                raise TrainingDiverged(
                    f"training diverged at epoch {epoch}, batch {len(batch_losses) - 1}: the loss "
                    f"is {batch_losses[-1]}; the weights from the start of epoch {epoch} were "
                    f"restored and the optimizer reset (try a smaller lr or clip_norm)"
                )
            if bar:
                sizes = batch_weights[: len(batch_losses)]
                bar.update(
                    epoch, len(batch_losses), float(np.dot(sizes, batch_losses) / sizes.sum())
                )
        if per_batch:
            first_step = opt.t - n_batches + 1
            for i, value in enumerate(batch_losses):
                history.batches.append(
                    {
                        "step": first_step + i,
                        "epoch": epoch,
                        "batch": i,
                        "loss": value,
                        "lr": opt.lr,
                    }
                )
        logs = {
            "epoch": epoch,
            "loss": float(np.dot(batch_weights, batch_losses) / batch_weights.sum()),
            "lr": opt.lr,
            "seconds": time.perf_counter() - start,
        }
        if labels is not None:
            # With labels given the accuracy is a number, never None.
            logs["accuracy"] = cast(
                float,
                _loss_and_accuracy(model, plan, X, targets, labels, eval_rows, False, weights)[1],
            )
        if validation_data is not None:
            X_val, y_val, *w_val = validation_data
            val = evaluate(model, X_val, y_val, loss, eval_rows, *w_val)
            logs.update({f"val_{k}": val[k] for k in val})
        if schedule is not None and hasattr(schedule, "step"):
            schedule.step(logs.get("val_loss", logs["loss"]))
        history.append(logs)
        if bar:
            bar.end_epoch(epoch, logs)
        stop = False
        for cb in callbacks:
            stop = bool(getattr(cb, "on_epoch_end", lambda e, lg: False)(epoch, dict(logs))) or stop
        if stop:
            break

    for cb in callbacks:
        getattr(cb, "on_train_end", lambda m: None)(model)
    return history
