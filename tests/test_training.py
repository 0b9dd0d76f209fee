"""fit, evaluate, History, schedules in fit, callbacks, EarlyStopping, continuing fits,
divergence, bad input, and cpp vs numpy over whole
shuffled mini-batch runs. The reference for fit is a hand loop over the public
forward/backward/opt.step with np.random.default_rng(seed).permutation(N) per epoch."""

import math

import numpy as np
import pytest
from nethelpers import (
    BACKENDS,
    Recorder,
    backend_fixture,
    batches,
    close,
    close_list,
    needs_core_net,
)

import pycvnn
from pycvnn import losses as L
from pycvnn import optim
from pycvnn import schedules as S

backend = pytest.fixture(params=BACKENDS)(backend_fixture)

N = 10


def regression_data(n=N, f=3, out=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, f))
    return X, X @ rng.normal(size=(f, out)) + 0.1 * rng.normal(size=(n, out))


def class_data(n=N, f=3, c=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, f))
    return X, rng.integers(0, c, n)


LOSS_FUNCS = {"l2": (L.l2, L.l2_grad), "cross_entropy": (L.cross_entropy, L.cross_entropy_grad)}


def manual_fit(model, opt, X, y, loss, orders, batch_size, lrs=None):
    """The documented algorithm by hand: per epoch, batches of `order` (the last partial one
    used), forward, the loss's mean gradient, backward, opt.step. Returns each epoch's
    sample-weighted mean loss and the plain mean of its batch losses."""
    value, grad = LOSS_FUNCS[loss]
    weighted, plain = [], []
    for e, order in enumerate(orders):
        if lrs is not None:
            opt.lr = lrs[e]
        values, sizes = [], []
        for idx in batches(order, batch_size):
            pred = model.forward(X[idx])
            values.append(value(pred, y[idx]))
            sizes.append(len(idx))
            model.backward(grad(pred, y[idx]))
            opt.step(model)
        weighted.append(float(np.dot(values, sizes) / np.sum(sizes)))
        plain.append(float(np.mean(values)))
    return weighted, plain


def twin_models(sizes, seed=1, dtype="float64"):
    return (
        pycvnn.MLP(sizes, activation="tanh", seed=seed, dtype=dtype),
        pycvnn.MLP(sizes, activation="tanh", seed=seed, dtype=dtype),
    )


# ---- batching -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "batch_size,steps", [(None, 1), (1, N), (4, 3), (5, 2), (N, 1), (N + 7, 1)]
)
def test_steps_per_epoch(backend, batch_size, steps):
    X, y = regression_data()
    m = pycvnn.MLP([3, 4, 2], seed=0)
    opt = optim.GD(lr=0.01)
    m.fit(X, y, loss="l2", optimizer=opt, epochs=3, batch_size=batch_size, seed=0, verbose=False)
    assert opt.t == 3 * steps


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opt_name", ["gd", "momentum", "adam"])
@pytest.mark.parametrize("loss", ["l2", "cross_entropy"])
@pytest.mark.parametrize("batch_size", [None, 1, 4])
def test_fit_is_the_documented_loop(backend, opt_name, loss, batch_size, dtype):
    # Same permutations (one default_rng(seed) per fit, permutation(N) per epoch), the last
    # partial batch used, History's loss the sample-weighted mean of the batch losses.
    if loss == "l2":
        X, y = regression_data()
        sizes = [3, 5, 2]
    else:
        X, y = class_data()
        sizes = [3, 5, 3]
    a, b = twin_models(sizes, dtype=np.dtype(dtype).name)
    X = X.astype(dtype)
    opt_a, opt_b = optim.get(opt_name, lr=0.05), optim.get(opt_name, lr=0.05)
    h = a.fit(
        X, y, loss=loss, optimizer=opt_a, epochs=3, batch_size=batch_size, seed=42, verbose=False
    )
    rng = np.random.default_rng(42)
    orders = [rng.permutation(N) for _ in range(3)]
    weighted, plain = manual_fit(
        b, opt_b, X, y.astype(dtype) if loss == "l2" else y, loss, orders, batch_size or N
    )
    assert all(w.dtype == dtype for w in a.get_weights())
    close_list(a.get_weights(), b.get_weights(), dtype)
    close(h["loss"], weighted, dtype)
    if batch_size == 4:  # batches of 4, 4, 2: the weighting matters
        assert not np.allclose(h["loss"], plain, rtol=1e-6)
    assert opt_a.t == opt_b.t


def test_shuffle_false_visits_rows_in_order(backend):
    X, y = regression_data()
    a, b = twin_models([3, 4, 2])
    opt_a, opt_b = optim.Adam(lr=0.01), optim.Adam(lr=0.01)
    h = a.fit(
        X, y, loss="l2", optimizer=opt_a, epochs=2, batch_size=3, shuffle=False, verbose=False
    )
    weighted, _ = manual_fit(b, opt_b, X, y, "l2", [np.arange(N)] * 2, 3)
    close_list(a.get_weights(), b.get_weights(), np.float64)
    close(h["loss"], weighted, np.float64)


def test_seed_none_still_trains_and_same_seed_repeats(backend):
    X, y = regression_data()
    runs = []
    for seed in (None, 3, 3):
        m = pycvnn.MLP([3, 4, 2], seed=0, dtype="float64")
        m.fit(X, y, loss="l2", optimizer="adam", epochs=2, batch_size=3, seed=seed, verbose=False)
        runs.append(m.get_weights())
    for x, z in zip(runs[1], runs[2]):
        np.testing.assert_array_equal(x, z)


# ---- History ------------------------------------------------------------------------------------


def test_history_columns_values_and_table(backend):
    X, y = regression_data()
    m = pycvnn.MLP([3, 4, 2], seed=0)
    h = m.fit(X, y, loss="l2", optimizer=optim.GD(lr=0.05), epochs=4, batch_size=3, verbose=False)
    assert isinstance(h, pycvnn.History)
    assert h.columns == ["epoch", "loss", "lr", "seconds"]  # no accuracy for regression
    assert len(h) == 4
    assert h["epoch"] == [0, 1, 2, 3]
    assert h["lr"] == [0.05] * 4
    assert all(isinstance(s, float) and s >= 0 for s in h["seconds"])
    assert all(isinstance(v, float) and math.isfinite(v) for v in h["loss"])
    assert h["loss"][-1] < h["loss"][0]
    with pytest.raises(KeyError, match="accuracy"):
        h["accuracy"]
    lines = h.table().splitlines()
    assert len(lines) == 5
    assert lines[0].split() == ["epoch", "loss", "lr", "seconds"]
    for e, line in enumerate(lines[1:]):
        cells = line.split()
        assert int(cells[0]) == e
        assert float(cells[1]) == pytest.approx(h["loss"][e], rel=1e-5)
        assert float(cells[2]) == pytest.approx(0.05)


def test_zero_epochs_is_an_empty_history(backend):
    X, y = regression_data()
    m = pycvnn.MLP([3, 4, 2], seed=0)
    w = m.get_weights()
    h = m.fit(X, y, loss="l2", epochs=0, verbose=False)
    assert len(h) == 0
    for a, b in zip(m.get_weights(), w):
        np.testing.assert_array_equal(a, b)


def test_validation_adds_val_loss_and_val_accuracy(backend):
    X, y = class_data(n=30)
    Xv, yv = class_data(n=12, seed=1)
    m = pycvnn.MLP([3, 6, 3], output="softmax", seed=0, dtype="float64")
    rec = Recorder()
    h = m.fit(
        X,
        y,
        loss="cross_entropy",
        optimizer="adam",
        epochs=3,
        batch_size=8,
        seed=0,
        validation_data=(Xv, yv),
        callbacks=[rec],
        verbose=False,
    )
    assert h.columns == ["epoch", "loss", "lr", "seconds", "accuracy", "val_loss", "val_accuracy"]
    for e in range(3):  # each epoch's figures are those of the weights at that epoch's end
        probe = pycvnn.MLP([3, 6, 3], output="softmax", dtype="float64")
        probe.set_weights(rec.weights[e])
        val = probe.evaluate(Xv, yv, loss="cross_entropy")
        assert h["val_loss"][e] == pytest.approx(val["loss"], rel=1e-9)
        assert h["val_accuracy"][e] == pytest.approx(val["accuracy"])
        assert h["accuracy"][e] == pytest.approx(np.mean(probe.predict_classes(X) == y))


def test_fit_evaluates_in_chunks_past_its_batch(backend, monkeypatch):
    # fit's accuracy and validation passes go in chunks of EVAL_FLOATS output values: at 90,
    # 10 rows, past the batch of 8, so the forward's outputs outgrow the backward's buffers.
    # Training is untouched (the same weights, bit for bit) and the figures are the same.
    from pycvnn import training

    X, y = class_data(n=30)
    Xv, yv = class_data(n=12, seed=1)
    runs = []
    for floats in (90, training.EVAL_FLOATS):
        monkeypatch.setattr(training, "EVAL_FLOATS", floats)
        m = pycvnn.MLP([3, 6, 3], output="softmax", seed=0, dtype="float64")
        h = m.fit(X, y, epochs=3, batch_size=8, seed=0, validation_data=(Xv, yv), verbose=False)
        runs.append((h, m.get_weights()))
    (h1, w1), (h2, w2) = runs
    for column in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert h1[column] == pytest.approx(h2[column], rel=1e-12)
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)


# accuracy for class ids, one-hot, {0,1} and ±1 targets
def accuracy_case(kind, rng):
    X = rng.normal(size=(24, 3))
    if kind == "class ids":
        y = rng.integers(0, 3, 24)
        return X, y, y, pycvnn.MLP([3, 5, 3], output="softmax", seed=0), "cross_entropy"
    if kind == "one-hot (cross_entropy)":
        labels = rng.integers(0, 3, 24)
        return X, np.eye(3)[labels], labels, pycvnn.MLP([3, 5, 3], seed=0), "cross_entropy"
    if kind == "one-hot (l2)":
        labels = rng.integers(0, 3, 24)
        return X, np.eye(3)[labels], labels, pycvnn.MLP([3, 5, 3], seed=0), "l2"
    if kind == "{0,1} (binary_cross_entropy)":
        y = rng.integers(0, 2, 24)
        return X, y, y, pycvnn.MLP([3, 5, 1], output="sigmoid", seed=0), "binary_cross_entropy"
    if kind == "{0,1} (hinge)":
        y = rng.integers(0, 2, 24)
        return X, y, y, pycvnn.MLP([3, 5, 1], seed=0), "hinge"
    if kind == "+-1 (hinge)":
        y = rng.choice([-1, 1], 24)
        return X, y, (y > 0).astype(int), pycvnn.MLP([3, 5, 1], seed=0), "squared_hinge"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "class ids",
        "one-hot (cross_entropy)",
        "one-hot (l2)",
        "{0,1} (binary_cross_entropy)",
        "{0,1} (hinge)",
        "+-1 (hinge)",
    ],
)
def test_accuracy_is_reported_for_class_targets(backend, kind):
    X, y, labels, m, loss = accuracy_case(kind, np.random.default_rng(7))
    h = m.fit(
        X,
        y,
        loss=loss,
        optimizer="adam",
        epochs=2,
        batch_size=8,
        seed=0,
        validation_data=(X, y),
        verbose=False,
    )
    want = float(np.mean(m.predict_classes(X) == labels))
    assert h["accuracy"][-1] == pytest.approx(want)
    assert h["val_accuracy"][-1] == pytest.approx(want)
    result = m.evaluate(X, y, loss=loss)
    assert result["accuracy"] == pytest.approx(want)
    assert result["loss"] == pytest.approx(h["val_loss"][-1], rel=1e-5)


def test_regression_targets_get_no_accuracy(backend):
    X, y = regression_data()
    m = pycvnn.MLP([3, 4, 2], seed=0)
    assert set(m.evaluate(X, y, loss="l2")) == {"loss"}


def test_evaluate_defaults_to_the_last_fit_loss(backend):
    X, y = regression_data()
    m = pycvnn.MLP([3, 4, 2], seed=0, dtype="float64")
    Xc, yc = class_data(c=2)
    assert pycvnn.MLP([3, 2], seed=0).evaluate(Xc, yc) == pycvnn.MLP([3, 2], seed=0).evaluate(
        Xc, yc, loss="cross_entropy"
    )
    m.fit(X, y, loss="l1", epochs=1, verbose=False)
    assert m.evaluate(X, y) == m.evaluate(X, y, loss="l1")
    assert m.evaluate(X, y)["loss"] == pytest.approx(L.l1(m.predict(X), y), rel=1e-12)


# ---- losses by name or object -------------------------------------------------------------------


def test_losses_by_name_or_object_and_training_takes_the_mean(backend):
    X, y = regression_data()
    runs = {}
    for key, loss in [
        ("l2", "l2"),
        ("mse", "mse"),
        ("L2(sum)", L.L2(reduction="sum")),
        ("huber", "huber"),
        ("Huber(0.1)", L.Huber(delta=0.1)),
    ]:
        m = pycvnn.MLP([3, 4, 2], seed=0, dtype="float64")
        runs[key] = m.fit(
            X,
            3 * y,
            loss=loss,
            optimizer=optim.GD(lr=0.1),
            epochs=2,
            batch_size=4,
            seed=0,
            verbose=False,
        )["loss"]
    assert runs["l2"] == runs["mse"] == runs["L2(sum)"]
    assert runs["huber"] != runs["Huber(0.1)"]


def test_dice_with_sigmoid_output_trains(backend):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 4))
    masks = (X @ rng.normal(size=(4, 6)) > 0).astype(float)
    m = pycvnn.MLP([4, 8, 6], output="sigmoid", seed=0)
    h = m.fit(
        X,
        masks,
        loss="dice",
        optimizer=optim.Adam(lr=0.02),
        epochs=15,
        batch_size=8,
        seed=0,
        verbose=False,
    )
    assert h["loss"][-1] < 0.7 * h["loss"][0]


# ---- schedules ----------------------------------------------------------------------------------


def test_schedule_sets_lr_each_epoch_and_history_records_it(backend):
    X, y = regression_data()
    a, b = twin_models([3, 4, 2])
    calls = []

    def schedule(epoch):
        calls.append(epoch)
        return S.StepDecay(0.1, step_size=2, gamma=0.5)(epoch)

    opt_a = optim.GD(lr=1.0)
    h = a.fit(
        X,
        y,
        loss="l2",
        optimizer=opt_a,
        epochs=5,
        batch_size=4,
        seed=1,
        schedule=schedule,
        verbose=False,
    )
    assert calls == [0, 1, 2, 3, 4]
    assert h["lr"] == [0.1, 0.1, 0.05, 0.05, 0.025]
    assert opt_a.lr == 0.025
    rng = np.random.default_rng(1)
    weighted, _ = manual_fit(
        b, optim.GD(lr=1.0), X, y, "l2", [rng.permutation(N) for _ in range(5)], 4, lrs=h["lr"]
    )
    close_list(a.get_weights(), b.get_weights(), np.float64)
    close(h["loss"], weighted, np.float64)


class SpyPlateau(S.ReduceOnPlateau):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.fed = []

    def step(self, metric):
        self.fed.append(metric)
        return super().step(metric)


@pytest.mark.parametrize("with_validation", [True, False])
def test_reduce_on_plateau_is_fed_the_val_loss_else_the_loss(backend, with_validation):
    X, y = regression_data(n=20)
    Xv, yv = regression_data(n=8, seed=5)
    m = pycvnn.MLP([3, 4, 2], seed=0)
    # threshold 0.5: only a halving of the metric counts as an improvement, so lr drops.
    sched = SpyPlateau(0.05, factor=0.5, patience=0, threshold=0.5)
    run = dict(loss="l2", optimizer="momentum", epochs=6, batch_size=5, seed=0, verbose=False)
    h = m.fit(X, y, **run, schedule=sched, validation_data=(Xv, yv) if with_validation else None)
    fed = h["val_loss"] if with_validation else h["loss"]
    assert sched.fed == fed
    replay = S.ReduceOnPlateau(0.05, factor=0.5, patience=0, threshold=0.5)
    want = [0.05] + [replay.step(v) for v in fed[:-1]]
    assert h["lr"] == pytest.approx(want)
    assert h["lr"][-1] < 0.05  # it did reduce


# ---- callbacks and EarlyStopping ----------------------------------------------------------------


def test_callbacks_are_called_in_order_and_true_stops(backend):
    X, y = regression_data()
    m = pycvnn.MLP([3, 4, 2], seed=0)
    rec, partial_calls = Recorder(stop_at=2), []

    class OnlyEpochEnd:  # a callback need not have every method; None does not stop
        def on_epoch_end(self, epoch, logs):
            partial_calls.append(epoch)

    h = m.fit(
        X, y, loss="l2", epochs=10, batch_size=4, callbacks=[OnlyEpochEnd(), rec], verbose=False
    )
    assert len(h) == 3
    assert rec.calls == ["begin", 0, 1, 2, "end"]
    assert partial_calls == [0, 1, 2]
    assert rec.logs[1]["epoch"] == 1 and rec.logs[1]["loss"] == h["loss"][1]
    assert set(rec.logs[0]) == set(h.columns)


def plateau_run(backend, restore_best, patience=2):
    """Batch GD on a linear model: lr 0.05 for epochs 0-2, then 2.0 (beyond 2/lambda_max), so
    the loss falls for three epochs and then grows: the best epoch is 2."""
    X, y = regression_data(n=20, out=1)
    m = pycvnn.Sequential([pycvnn.Dense(3, 1)], seed=0, dtype="float64")
    rec = Recorder()
    stop = pycvnn.EarlyStopping(patience=patience, restore_best=restore_best)
    h = m.fit(
        X,
        y,
        loss="l2",
        optimizer="gd",
        epochs=20,
        batch_size=None,
        schedule=lambda e: 0.05 if e < 3 else 2.0,
        validation_data=(X, y),
        callbacks=[rec, stop],
        verbose=False,
    )
    return m, h, rec


@pytest.mark.parametrize("patience", [1, 2, 4])
def test_early_stopping_restores_the_best_epoch(backend, patience):
    m, h, rec = plateau_run(backend, restore_best=True, patience=patience)
    val = h["val_loss"]
    assert int(np.argmin(val)) == 2 and val[3] > val[2]  # the scenario is what we think
    assert len(h) == 3 + patience  # stops after `patience` epochs without improvement
    for a, b in zip(m.get_weights(), rec.weights[2]):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_without_restore_keeps_the_last_weights(backend):
    m, h, rec = plateau_run(backend, restore_best=False)
    assert len(h) == 5
    for a, b in zip(m.get_weights(), rec.weights[-1]):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_rule_on_scripted_logs():
    m = pycvnn.MLP([2, 1], seed=0)
    stop = pycvnn.EarlyStopping(monitor="val_accuracy", patience=2)
    stop.on_train_begin(m)
    decisions = [
        stop.on_epoch_end(e, {"val_accuracy": a})
        for e, a in enumerate([0.5, 0.7, 0.6, 0.7, 0.8, 0.8, 0.75])
    ]
    assert decisions == [False, False, False, True, False, False, True]  # accuracy improves upwards
    stop = pycvnn.EarlyStopping(monitor="loss", patience=1)
    stop.on_train_begin(m)
    assert [stop.on_epoch_end(e, {"loss": v}) for e, v in enumerate([3.0, 2.0, 2.5])] == [
        False,
        False,
        True,
    ]
    stop = pycvnn.EarlyStopping()  # monitor val_loss by default
    stop.on_train_begin(m)
    with pytest.raises(ValueError, match="monitor.*val_loss"):
        stop.on_epoch_end(0, {"loss": 1.0})
    with pytest.raises(ValueError, match="patience"):
        pycvnn.EarlyStopping(patience=-1)


def test_early_stopping_on_val_loss_without_validation_data_is_a_clear_error(backend):
    X, y = regression_data()
    m = pycvnn.MLP([3, 4, 2], seed=0)
    with pytest.raises(ValueError, match="val_loss"):
        m.fit(X, y, loss="l2", epochs=3, callbacks=[pycvnn.EarlyStopping()], verbose=False)


# ---- a second fit continues ---------------------------------------------------------------------


@pytest.mark.parametrize("opt_name", ["adam", "momentum", "rmsprop"])
def test_second_fit_continues_the_optimizer(backend, opt_name):
    X, y = class_data()

    def fit(model, opt, seed):
        run = dict(loss="cross_entropy", epochs=1, batch_size=4, seed=seed, verbose=False)
        return model.fit(X, y, optimizer=opt, **run)

    a, b = twin_models([3, 5, 3])
    opt_a, opt_b = optim.get(opt_name, lr=0.05), optim.get(opt_name, lr=0.05)
    fit(a, opt_a, 11)
    assert opt_a.t == 3
    h2 = fit(a, opt_a, 22)
    assert opt_a.t == 6  # the step count carries over (Adam's bias correction continues)
    orders = [np.random.default_rng(11).permutation(N), np.random.default_rng(22).permutation(N)]
    weighted, _ = manual_fit(b, opt_b, X, y, "cross_entropy", orders, 4)
    close_list(a.get_weights(), b.get_weights(), np.float64)
    close(h2["loss"], weighted[1:], np.float64)
    # ... and it matters: restarting the optimizer's state gives another trajectory.
    c, _ = twin_models([3, 5, 3])
    for seed in (11, 22):
        fit(c, optim.get(opt_name, lr=0.05), seed)
    assert not np.allclose(c.get_weights()[0], a.get_weights()[0], rtol=1e-6)


# ---- divergence ---------------------------------------------------------------------------------


def first_bad_batch(model, X, y, lrs, batch_size, seed):
    """(epoch, batch) of the first non-finite batch loss of the same run, by hand (numpy)."""
    with pycvnn.using_backend("numpy"), np.errstate(all="ignore"):
        opt = optim.GD(lr=1.0)
        rng = np.random.default_rng(seed)
        for e, lr in enumerate(lrs):
            opt.lr = lr
            for k, idx in enumerate(batches(rng.permutation(len(X)), batch_size)):
                pred = model.forward(X[idx])
                if not (np.all(np.isfinite(pred)) and np.isfinite(L.l2(pred, y[idx]))):
                    return e, k
                model.backward(L.l2_grad(pred, y[idx]))
                opt.step(model)
    raise AssertionError("the run did not diverge")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("diverge_at", [0, 1])
@pytest.mark.parametrize("verbose", [False, True])  # the epoch in one call, or in chunks
def test_divergence_raises_and_restores_the_epoch_start_weights(
    backend, dtype, diverge_at, verbose
):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4)), rng.normal(size=(20, 1)) * 1e3
    lrs = [1e-4] * diverge_at + [1e6] * 3
    m = pycvnn.MLP([4, 5, 1], seed=0, dtype=dtype)
    w0 = m.get_weights()
    twin = pycvnn.MLP([4, 5, 1], seed=0, dtype=dtype)
    where = first_bad_batch(twin, X, y, lrs, 5, seed=3)
    assert where[0] == diverge_at
    rec = Recorder()
    opt = optim.GD(lr=1.0)
    with pytest.raises(pycvnn.TrainingDiverged) as info:
        m.fit(
            X,
            y,
            loss="l2",
            optimizer=opt,
            epochs=len(lrs),
            batch_size=5,
            seed=3,
            schedule=lambda e: lrs[e],
            callbacks=[rec],
            verbose=verbose,
        )
    assert isinstance(info.value, RuntimeError)
    msg = str(info.value)
    assert f"epoch {where[0]}," in msg and f"batch {where[1]}" in msg, msg
    start = w0 if diverge_at == 0 else rec.weights[diverge_at - 1]
    for a, b in zip(m.get_weights(), start):
        np.testing.assert_array_equal(a, b)
        assert np.all(np.isfinite(a))
    assert opt.t == 0 and all(np.all(b == 0) for b in opt._state)  # the optimizer is reset
    # the model is still usable: a sane run continues from the restored weights
    m.fit(X, y / 1e3, loss="l2", optimizer=optim.GD(lr=1e-3), epochs=1, verbose=False)
    assert all(np.all(np.isfinite(w)) for w in m.get_weights())


# ---- progress output ----------------------------------------------------------------------------


def test_verbose_prints_epoch_figures_to_stderr(backend, capsys):
    X, y = class_data(n=20)
    m = pycvnn.MLP([3, 4, 3], seed=0)
    h = m.fit(X, y, epochs=3, batch_size=4, verbose=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "epoch 1/3" in captured.err and "epoch 3/3" in captured.err
    assert f"{h['loss'][-1]:.4g}" in captured.err
    m.fit(X, y, epochs=2, verbose=False)
    assert capsys.readouterr().err == ""


def test_progress_bar_on_a_terminal_shows_the_running_loss():
    from pycvnn.training import ProgressBar

    class Tty:
        def __init__(self):
            self.text = ""

        def isatty(self):
            return True

        def write(self, s):
            self.text += s

        def flush(self):
            pass

    tty = Tty()
    bar = ProgressBar(epochs=10, n_batches=4, stream=tty)
    bar.update(0, 2, 0.12345)
    assert tty.text.startswith("\repoch 1/10") and "2/4" in tty.text
    assert tty.text.endswith("loss 0.1235") and "\n" not in tty.text  # redrawn in place
    bar.update(0, 4, 0.2)
    bar.end_epoch(0, {"epoch": 0, "loss": 0.1, "lr": 0.01})
    last = tty.text.split("\r")[-1]
    assert last.startswith("epoch 1/10") and "loss 0.1" in last and "lr 0.01" in last
    assert tty.text.endswith("\n")


def test_fit_accepts_int_and_non_contiguous_inputs(backend):
    X, y = regression_data(n=12, f=6)
    a, b = twin_models([3, 4, 2])
    Xi = np.round(X * 3).astype(np.int64)
    ha = a.fit(Xi[:, ::2], y, loss="l2", epochs=2, batch_size=4, seed=0, verbose=False)
    hb = b.fit(
        np.ascontiguousarray(Xi[:, ::2], dtype=np.float64),
        y,
        loss="l2",
        epochs=2,
        batch_size=4,
        seed=0,
        verbose=False,
    )
    assert ha["loss"] == hb["loss"]


# ---- optimizers: construction and step ------------------------------------------------------------


@pytest.mark.parametrize(
    "make,exc,pattern",
    [
        (lambda: optim.GD(lr=-1e-9), ValueError, "lr"),
        (lambda: optim.GD(lr=-0.1), ValueError, "lr"),
        (lambda: optim.GD(lr=float("nan")), ValueError, "lr"),
        (lambda: optim.GD(lr="0.1"), TypeError, "lr"),
        (lambda: optim.GD(weight_decay=-1), ValueError, "weight_decay"),
        (lambda: optim.GD(clip_norm=0), ValueError, "clip_norm"),
        (lambda: optim.Momentum(beta=1.0), ValueError, "beta"),
        (lambda: optim.Momentum(form="polyak"), ValueError, "form"),
        (lambda: optim.Momentum(nesterov=True), ValueError, "nesterov"),  # with form "ema"
        (lambda: optim.RMSProp(rho=1.5), ValueError, "rho"),
        (lambda: optim.RMSProp(eps=0), ValueError, "eps"),
        (lambda: optim.Adam(beta1=1.0), ValueError, "beta1"),
        (lambda: optim.Adam(beta2=-0.1), ValueError, "beta2"),
        (lambda: optim.AdamW(weight_decay=-0.01), ValueError, "weight_decay"),
        (lambda: optim.get("lion"), ValueError, "optimizer"),
    ],
)
def test_optimizer_bad_arguments(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


def test_optimizer_lr_is_settable_and_checked():
    opt = optim.Adam()
    assert opt.lr == 0.001 and optim.AdamW().weight_decay == 0.01
    opt.lr = 0.5
    assert opt.lr == 0.5
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1.0
    assert optim.SGD is optim.GD
    assert isinstance(optim.get("sgd", lr=0.2), optim.GD) and optim.get("sgd", lr=0.2).lr == 0.2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_step_is_the_design_formula(backend, dtype):
    # Momentum "ema" by hand over two steps, weight decay on weights only, from the gradients.
    m = pycvnn.MLP([3, 2], seed=0, dtype=np.dtype(dtype).name)
    X, y = regression_data()
    opt = optim.Momentum(lr=0.1, beta=0.8, weight_decay=0.5)
    W, b = (w.astype(np.float64) for w in m.get_weights())
    vW, vb = np.zeros_like(W), np.zeros_like(b)
    for _ in range(2):
        pred = m.forward(X)
        m.backward(L.l2_grad(pred, y.astype(dtype)))
        gW, gb = (g.astype(np.float64) for g in m.gradients())
        opt.step(m)
        vW = 0.8 * vW + 0.2 * (gW + 0.5 * W)
        vb = 0.8 * vb + 0.2 * gb
        W, b = W - 0.1 * vW, b - 0.1 * vb
        close_list(m.get_weights(), [W, b], dtype)
    assert opt.t == 2


# ---- bad input ----------------------------------------------------------------------------------

X_GOOD, Y_GOOD = class_data(n=12)


@pytest.mark.parametrize(
    "kwargs,exc,pattern",
    [
        ({"X": X_GOOD[:, :2]}, ValueError, r"X.*\(N, 3\)"),
        ({"X": X_GOOD[0]}, ValueError, r"X"),
        ({"X": X_GOOD.astype(str)}, TypeError, r"X"),
        ({"X": np.where(X_GOOD > 1, np.nan, X_GOOD)}, ValueError, r"X.*finite"),
        ({"X": X_GOOD[:0]}, ValueError, r"X"),
        ({"y": Y_GOOD[:10]}, ValueError, r"y.*12"),
        ({"y": Y_GOOD + 3}, ValueError, r"y.*\[0, 3\)"),
        ({"y": Y_GOOD - 1}, ValueError, r"y.*\[0, 3\)"),
        ({"y": Y_GOOD + 0.5}, ValueError, r"y.*integer"),
        ({"y": Y_GOOD.astype(str)}, TypeError, r"y"),
        ({"y": 1}, ValueError, r"y.*12"),
        ({"validation_data": (X_GOOD, 1)}, ValueError, r"validation_data.*y"),
        ({"y": np.eye(4)[Y_GOOD]}, ValueError, r"y"),
        ({"loss": "cross_entropie"}, ValueError, r"loss.*cross_entropie"),
        ({"loss": 3}, ValueError, r"loss"),
        ({"optimizer": "adagrad"}, ValueError, r"optimizer.*adagrad"),
        ({"optimizer": 0.1}, ValueError, r"optimizer"),
        ({"batch_size": 0}, ValueError, r"batch_size"),
        ({"batch_size": -4}, ValueError, r"batch_size"),
        ({"batch_size": 2.5}, ValueError, r"batch_size"),
        ({"batch_size": "32"}, ValueError, r"batch_size"),
        ({"batch_size": True}, ValueError, r"batch_size"),
        ({"epochs": -1}, ValueError, r"epochs"),
        ({"epochs": 1.5}, ValueError, r"epochs"),
        ({"epochs": None}, ValueError, r"epochs"),
        ({"shuffle": "yes"}, TypeError, r"shuffle"),
        ({"schedule": 0.1}, ValueError, r"schedule"),
        ({"validation_data": X_GOOD}, ValueError, r"validation_data"),
        ({"validation_data": (X_GOOD,)}, ValueError, r"validation_data"),
        ({"validation_data": (X_GOOD[:, :2], Y_GOOD)}, ValueError, r"validation_data.*X"),
        ({"validation_data": (X_GOOD, Y_GOOD[:5])}, ValueError, r"validation_data.*y"),
        ({"validation_data": (X_GOOD, Y_GOOD + 3)}, ValueError, r"validation_data.*y"),
        (
            {"validation_data": (np.full_like(X_GOOD, np.nan), Y_GOOD)},
            ValueError,
            r"validation_data.*X",
        ),
    ],
)
def test_fit_bad_input_names_the_argument_and_trains_nothing(backend, kwargs, exc, pattern):
    m = pycvnn.MLP([3, 4, 3], seed=0)
    w = m.get_weights()
    args = {"X": X_GOOD, "y": Y_GOOD, "loss": "cross_entropy", "epochs": 2, "verbose": False}
    args.update(kwargs)
    X, y = args.pop("X"), args.pop("y")
    with pytest.raises(exc, match=pattern):
        m.fit(X, y, **args)
    for a, b in zip(m.get_weights(), w):  # checked before anything is trained
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "out,loss,y,pattern",
    [
        (1, "binary_cross_entropy", np.array([0, 1, 2, 1]), r"y.*\[0, 1\]"),
        (1, "binary_cross_entropy", np.zeros((4, 2)), r"y"),
        (1, "hinge", np.array([0.5, 1, -1, 1]), r"y.*\+1"),
        (1, "cross_entropy", np.array([0, 1, 0, 1]), r"binary_cross_entropy"),
        (
            2,
            "binary_cross_entropy",
            np.array([[0, 1], [1, 0], [0, 0], [1, 1]]),
            r"loss.*one output",
        ),
        (
            2,
            "binary_cross_entropy",
            np.array([[0, 2], [1, 0], [0, 0], [1, 1]]),
            r"loss.*one output",
        ),
        (2, "dice", np.array([[0, 1], [1, 2], [0, 0], [1, 1]]), r"y.*\[0, 1\]"),
        (2, "l2", np.zeros((4, 3)), r"y.*\(4, 2\)"),
        (2, "l2", np.zeros(4), r"y.*\(4, 2\)"),
        (2, "l2", np.array([[0, np.nan]] * 4), r"y.*finite"),
        (3, "cross_entropy", np.full((4, 3), 0.5) * [[1, 1, -1]], r"y.*\[0, 1\]"),
    ],
)
def test_fit_bad_targets_for_the_loss(backend, out, loss, y, pattern):
    m = pycvnn.MLP([3, out], seed=0)
    with pytest.raises(ValueError, match=pattern):
        m.fit(np.zeros((4, 3)), y, loss=loss, epochs=1, verbose=False)


@pytest.mark.parametrize(
    "X,y,loss,exc,pattern",
    [
        (X_GOOD[:, :2], Y_GOOD, "cross_entropy", ValueError, r"X"),
        (X_GOOD, Y_GOOD[:3], "cross_entropy", ValueError, r"y"),
        (X_GOOD, 2, "cross_entropy", ValueError, r"y"),
        (X_GOOD, 2.0, "l2", ValueError, r"y"),
        (X_GOOD, Y_GOOD + 5, "cross_entropy", ValueError, r"y"),
        (X_GOOD, Y_GOOD, "kl_div", ValueError, r"loss.*kl_div"),
        (X_GOOD.astype(object), Y_GOOD, "cross_entropy", TypeError, r"X"),
    ],
)
def test_evaluate_bad_input(backend, X, y, loss, exc, pattern):
    m = pycvnn.MLP([3, 4, 3], seed=0)
    with pytest.raises(exc, match=pattern):
        m.evaluate(X, y, loss=loss)


# ---- cpp vs numpy over a whole shuffled mini-batch run --------------------------------------------

OPTIMIZERS = {
    "gd": lambda: optim.GD(lr=0.05),
    "momentum-ema": lambda: optim.Momentum(lr=0.05, beta=0.9),
    "momentum-heavy_ball": lambda: optim.Momentum(lr=0.01, beta=0.9, form="heavy_ball"),
    "momentum-nesterov": lambda: optim.Momentum(
        lr=0.01, beta=0.8, form="heavy_ball", nesterov=True
    ),
    "rmsprop": lambda: optim.RMSProp(lr=0.002, rho=0.9),
    "adam": lambda: optim.Adam(lr=0.002),
    "adamw": lambda: optim.AdamW(lr=0.002, weight_decay=0.1),
    "adam-coupled-wd": lambda: optim.Adam(lr=0.002, weight_decay=0.05),
    "gd-clip": lambda: optim.GD(lr=0.05, clip_norm=0.05),
    "momentum-clip-wd": lambda: optim.Momentum(lr=0.05, weight_decay=0.01, clip_norm=0.1),
}


def crossrun_case(loss, rng):
    X = rng.normal(size=(60, 8)).astype(np.float32)
    if loss in ("cross_entropy", "hinge"):
        y = rng.integers(0, 4, 60)
        out = "softmax" if loss == "cross_entropy" else None
        return X, y, pycvnn.MLP([8, 16, 4], activation="tanh", output=out, seed=5)
    if loss == "binary_cross_entropy":
        y = rng.integers(0, 2, 60)
        return X, y, pycvnn.MLP([8, 16, 1], activation="leaky_relu", output="sigmoid", seed=5)
    y = (X @ rng.normal(size=(8, 3)) + 0.5).astype(np.float32)
    return X, y, pycvnn.MLP([8, 16, 3], activation="relu", seed=5)


@needs_core_net
@pytest.mark.parametrize("loss", ["cross_entropy", "l2", "huber", "hinge", "binary_cross_entropy"])
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_cpp_and_numpy_agree_over_a_shuffled_run(opt_name, loss):
    # float32, 6 epochs x 10 batches of 6 = 60 steps, small lr: far from converged.
    results = {}
    for name in ("numpy", "cpp"):
        X, y, m = crossrun_case(loss, np.random.default_rng(3))
        opt = OPTIMIZERS[opt_name]()
        with pycvnn.using_backend(name):
            h = m.fit(X, y, loss=loss, optimizer=opt, epochs=6, batch_size=6, seed=9, verbose=False)
        results[name] = (m.get_weights(), h["loss"], opt.t)
    (w_np, loss_np, t_np), (w_cpp, loss_cpp, t_cpp) = results["numpy"], results["cpp"]
    assert t_np == t_cpp == 60
    assert loss_np[-1] < loss_np[0] and loss_np[-1] > 1e-3 * loss_np[0]  # moving, not converged
    close(loss_cpp, loss_np, np.float32)
    close_list(w_cpp, w_np, np.float32)


@pytest.mark.parametrize("loss,out", [("cross_entropy", 3), ("l2", 2), ("dice", 2), ("hinge", 1)])
def test_evaluate_in_chunks_equals_one_pass(backend, loss, out):
    # evaluate runs `rows` at a time (bounded memory); chunk means must combine exactly.
    rng = np.random.default_rng(5)
    X = rng.normal(size=(23, 4))
    y = {
        "cross_entropy": rng.integers(0, 3, 23),
        "l2": rng.normal(size=(23, 2)),
        "dice": (rng.random((23, 2)) > 0.5) * 1.0,
        "hinge": rng.choice([-1.0, 1.0], 23),
    }[loss]
    m = pycvnn.MLP(
        [4, 5, out], output="sigmoid" if loss == "dice" else None, seed=1, dtype="float64"
    )
    whole = pycvnn.training.evaluate(m, X, y, loss, rows=1000)
    parts = pycvnn.training.evaluate(m, X, y, loss, rows=5)
    assert whole.keys() == parts.keys()
    for k in whole:
        assert parts[k] == pytest.approx(whole[k], rel=1e-12)
