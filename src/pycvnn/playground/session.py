"""One playground session (its data, its model, its optimizer and its history) and the store
that keeps the most recently used ones.

Every use of a session's model holds the session's lock, so the model never runs on two
threads at once; different sessions train in parallel (the core releases the GIL).
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .. import TrainingDiverged, activations
from .._types import FloatArray
from ..layers import Dense
from ..model import Sequential
from ..optim import Optimizer
from . import config as cfg
from . import data

# The pycvnn loss each playground loss trains with, and the output activation it needs: a
# single output unit, whose sigmoid gives P(class 1) for cross-entropy.
_TRAINING_LOSS: dict[str, tuple[str, Optional[str]]] = {
    "cross_entropy": ("binary_cross_entropy", "sigmoid")
}
HISTORY_LIMIT = 2000  # records kept; past it every second one is dropped
# The work one train call may do, in batches and in rows: about a second on one core at the
# largest network and data set, so no client holds the worker threads from the other sessions.
MAX_STEPS, MAX_ROWS = 200_000, 2_000_000


class SessionError(ValueError):
    """Training failed in a way the client can act on; the message names the field to change."""


class _FromEpoch:
    """A schedule counted from the session's first epoch rather than from each fit call's."""

    def __init__(self, schedule: Callable[[int], float], start: int) -> None:
        self.schedule, self.start = schedule, start

    def __call__(self, epoch: int) -> float:
        try:
            return self.schedule(self.start + epoch)
        except ValueError as err:  # a decay past float's range: the schedule's setting is at fault
            raise SessionError(f"schedule.{err}") from None

    def step(self, metric: float) -> None:
        # A ReduceOnPlateau-like schedule also takes the metric: a method no type names.
        schedule: Any = self.schedule
        if hasattr(schedule, "step"):
            schedule.step(metric)


class _Counter:
    """Counts the epochs a fit finished, so a diverged fit still counts the ones before."""

    def __init__(self) -> None:
        self.done = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.done = epoch + 1


def build_model(config: cfg.Config, n_inputs: int, output: Optional[str]) -> Sequential:
    """The network [inputs, *hidden, 1] with the configured activation between layers."""
    act = None if config["activation"] == "linear" else config["activation"]
    init = activations.REGISTRY[act].init if act else "xavier"
    sizes = [n_inputs, *config["hidden"], 1]
    layers = [
        Dense(fin, fout, activation=act if i < len(sizes) - 2 else output, init=init)
        for i, (fin, fout) in enumerate(zip(sizes[:-1], sizes[1:]))
    ]
    return Sequential(layers, seed=config["seed"])


def _hidden_outputs(
    X: FloatArray, weights: Sequence[FloatArray], activation: str
) -> list[FloatArray]:
    """Each hidden layer's activations for the inputs X, from the weights [W1, b1, ...]."""
    outputs: list[FloatArray] = []
    a = X
    for W, b in zip(weights[0:-2:2], weights[1:-2:2]):
        z = a @ W.T + b
        a = z if activation == "linear" else activations.get(activation)(z)
        outputs.append(a)
    return outputs


class Session:
    """A network training on one data set, as the configuration (see config.parse) says."""

    # Set by _set_training, which keeps the optimizer when its settings did not change.
    optimizer: Optimizer
    optimizer_spec: dict[str, Any]
    schedule: Optional[Callable[[int], float]]

    def __init__(self, config: cfg.Config) -> None:
        self.id = secrets.token_hex(8)
        self.lock = threading.Lock()
        self.config = config
        self.kind = cfg.kind_of(config)
        split = data.generate(
            config["dataset"],
            config["n"],
            config["noise"],
            config["train_fraction"],
            config["seed"],
        )
        self.split = split
        self.X_train = data.features(split.train_points, config["features"])
        self.X_test = data.features(split.test_points, config["features"])
        self.loss, output = _TRAINING_LOSS.get(config["loss"], (config["loss"], None))
        self.model = build_model(config, self.X_train.shape[1], output)
        self.epoch = 0
        self.history: dict[str, list[float]] = {key: [] for key in self._metric_keys()}
        self._grids: dict[int, FloatArray] = {}  # size -> the grid's input features
        self._set_training(config)

    def _metric_keys(self) -> list[str]:
        keys = ["epoch", "train_loss", "test_loss"]
        return keys + (["train_accuracy", "test_accuracy"] if self.kind == "classification" else [])

    def _set_training(self, config: cfg.Config) -> None:
        """Optimizer and schedule from the config; a changed optimizer starts with fresh state."""
        old = getattr(self, "optimizer_spec", None)
        spec = config["optimizer"]
        same = old is not None and {**old, "lr": 0} == {**spec, "lr": 0}
        if same:
            self.optimizer.lr = spec["lr"]
            self.optimizer.weight_decay = config["weight_decay"]
        else:
            self.optimizer = cfg.build_optimizer(spec, config["weight_decay"])
        self.optimizer_spec = spec
        self.schedule = cfg.build_schedule(config["schedule"], spec["lr"])
        self.config = config

    # ---- what the API calls; each holds the lock while it uses the model -----------------

    def update(self, body: object) -> None:
        """Apply a PATCH of the training settings, keeping the weights."""
        with self.lock:
            settings = cfg.parse_training(body, self.config)
            self._set_training({**self.config, **settings})

    def max_epochs(self) -> int:
        """The most epochs one train call may ask for (at least 1), by MAX_STEPS and MAX_ROWS."""
        rows = len(self.X_train)
        batch = self.config["batch_size"]
        batches = 1 if batch == "full" else -(-rows // batch)
        return max(1, min(MAX_STEPS // batches, MAX_ROWS // rows))

    def train(self, epochs: int) -> dict[str, float]:
        """Train `epochs` more epochs; returns the metrics after them."""
        with self.lock:
            limit = self.max_epochs()
            if epochs > limit:
                raise SessionError(
                    f"epochs: expected at most {limit} for this session in one call (a call "
                    f"trains at most {MAX_STEPS:,} batches and {MAX_ROWS:,} rows), got {epochs}"
                )
            counter = _Counter()
            batch = self.config["batch_size"]
            seed = np.random.SeedSequence([self.config["seed"], self.epoch]).generate_state(1)
            try:
                self.model.fit(
                    self.X_train,
                    self.split.train_targets,
                    loss=self.loss,
                    optimizer=self.optimizer,
                    epochs=epochs,
                    batch_size=None if batch == "full" else batch,
                    seed=int(seed[0]),
                    schedule=self.schedule and _FromEpoch(self.schedule, self.epoch),
                    callbacks=[counter],
                    verbose=False,
                )
            except SessionError:  # from the schedule, after counter.done epochs
                self.epoch += counter.done
                if counter.done:
                    self._record()
                raise
            except TrainingDiverged:
                self.epoch += counter.done
                if counter.done:
                    self._record()
                raise SessionError(
                    f"optimizer.lr: training diverged in epoch {self.epoch + 1} (the loss "
                    f"became NaN or Inf); the weights of that epoch's start were kept; try an "
                    f"lr smaller than {self.optimizer_spec['lr']:g}"
                ) from None
            self.epoch += epochs
            return self._record()

    def _record(self) -> dict[str, float]:
        """The current metrics, also appended to the history."""
        record: dict[str, float] = {"epoch": self.epoch}
        for part, X, y in (
            ("train", self.X_train, self.split.train_targets),
            ("test", self.X_test, self.split.test_targets),
        ):
            result = self.model.evaluate(X, y, loss=self.loss)
            record[f"{part}_loss"] = result["loss"]
            if self.kind == "classification":
                record[f"{part}_accuracy"] = result["accuracy"]
        for key, value in record.items():
            self.history[key].append(value)
        if len(self.history["epoch"]) > HISTORY_LIMIT:
            for key in self.history:
                self.history[key] = self.history[key][1::2]
        return {**record, "lr": self.optimizer.lr}

    def _grid(self, size: int) -> FloatArray:
        if size not in self._grids:
            if len(self._grids) >= 4:
                self._grids.clear()
            self._grids[size] = data.features(data.grid(size), self.config["features"])
        return self._grids[size]

    def boundary(self, size: int) -> dict[str, Any]:
        """The output and every hidden neuron's output over a size x size grid of the plane.

        For classification the output is in [0, 1] with 0.5 on the decision boundary: the
        sigmoid's P(class 1) for cross-entropy, and for the hinge losses the score s mapped
        by clip((s + 1) / 2, 0, 1) (the margin band [-1, 1] spans [0, 1])."""
        with self.lock:
            X = self._grid(size)
            output = self.model.predict(X)[:, 0]
            weights = self.model.get_weights()
        neurons = _hidden_outputs(X, weights, self.config["activation"])
        result: dict[str, Any] = {"size": size, "extent": list(data.EXTENT)}
        if self.kind == "classification" and self.loss != "binary_cross_entropy":
            output = np.clip((output + 1) / 2, 0, 1)
        result["output"] = output
        if self.kind == "regression":
            result["range"] = [float(output.min()), float(output.max())]
        # One row per hidden neuron, layer by layer.
        result["neurons"] = np.ascontiguousarray(
            np.concatenate([a.T for a in neurons]) if neurons else np.empty((0, size * size))
        )
        return result

    def describe(self) -> dict[str, Any]:
        """The configuration, the data, the weights (input to output) and the history."""
        with self.lock:
            weights = self.model.get_weights()
            history = {key: list(values) for key, values in self.history.items()}
            epoch, config, max_epochs = self.epoch, self.config, self.max_epochs()
        split = self.split
        points = {
            part: np.column_stack([p, t]).tolist()
            for part, p, t in (
                ("train", split.train_points, split.train_targets),
                ("test", split.test_points, split.test_targets),
            )
        }
        layers = [{"W": W.tolist(), "b": b.tolist()} for W, b in zip(weights[::2], weights[1::2])]
        return {
            "id": self.id,
            "config": config,
            "epoch": epoch,
            "max_epochs": max_epochs,
            "points": points,
            "layers": layers,
            "history": history,
        }


class Store:
    """The live sessions by id, at most `capacity`: adding one more drops the least recently
    used."""

    def __init__(self, capacity: int = 32) -> None:
        self.capacity = capacity
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, session: Session) -> None:
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > self.capacity:
                self._sessions.popitem(last=False)

    def get(self, session_id: str) -> Session:
        """The session, marked as just used; KeyError if there is none by that id."""
        with self._lock:
            session = self._sessions[session_id]
            self._sessions.move_to_end(session_id)
            return session

    def delete(self, session_id: str) -> None:
        with self._lock:
            del self._sessions[session_id]

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._sessions
