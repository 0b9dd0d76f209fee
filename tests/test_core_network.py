"""The training core (Network, LossSpec, UpdateRule): C++ against its NumPy twin, and bad input."""

import numpy as np
import pytest

from pycvnn import _core, reference

RTOL = {np.float32: 1e-4, np.float64: 1e-10}
OPS = [
    ("dense", 6, 9, "tanh", 0.01),
    ("dense", 9, 5, "leaky_relu", 0.1),
    ("act", 5, 5, "relu", 0.01),
    ("dense", 5, 4, "none", 0.01),
]


def arena(ops, dtype, seed=0):
    n = reference.Network(ops).n_params
    return np.random.default_rng(seed).standard_normal(n).astype(dtype) * 0.5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 64])
def test_forward_backward_match_reference(n, dtype):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 6)).astype(dtype)
    dout = rng.standard_normal((n, 4)).astype(dtype)
    params = arena(OPS, dtype)
    out = {}
    for name, mod in (("cpp", _core), ("ref", reference)):
        net = mod.Network(OPS)
        grads = np.zeros_like(params)
        a = net.forward(params, x)
        dx = net.backward(params, grads, dout)
        out[name] = (a, dx, grads)
        assert net.n_params == params.size and net.n_decay == 6 * 9 + 9 * 5 + 5 * 4
    for got, want in zip(out["cpp"], out["ref"]):
        assert got.dtype == want.dtype == dtype
        np.testing.assert_allclose(
            got, want, rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-2 * np.abs(want).max()
        )


# Dense ReLU layers below dense layers: their backward goes into the dx GEMM's epilogue (a
# gate), on the small kernels (in 7), the blocked ones (in 150: past 2^18 multiply-adds) or
# OpenBLAS's path (no gate); the ReLU after an "act" op is not gated.
RELU_NETS = {
    "small": [
        ("dense", 7, 33, "relu", 0.01),
        ("dense", 33, 17, "relu", 0.01),
        ("act", 17, 17, "relu", 0.01),
        ("dense", 17, 4, "none", 0.01),
    ],
    "blocked": [
        ("dense", 150, 300, "relu", 0.01),
        ("dense", 300, 70, "relu", 0.01),
        ("dense", 70, 5, "none", 0.01),
    ],
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("net_name", list(RELU_NETS))
@pytest.mark.parametrize("n", [1, 9, 300])
@pytest.mark.parametrize("threads", [1, 2])
def test_relu_backward_in_the_gemm_matches_reference(net_name, n, threads, dtype):
    import pycvnn

    ops = RELU_NETS[net_name]
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, ops[0][1])).astype(dtype)
    dout = rng.standard_normal((n, ops[-1][2])).astype(dtype)
    y = rng.integers(0, ops[-1][2], n)
    params = (arena(ops, dtype) / np.sqrt(ops[0][1])).astype(dtype)
    before = pycvnn.get_num_threads()
    out = {}
    try:
        pycvnn.set_num_threads(threads)
        for name, mod in (("cpp", _core), ("ref", reference)):
            net = mod.Network(ops)
            grads = np.zeros_like(params)
            a = net.forward(params, x)
            dx = net.backward(params, grads, dout)
            trained = params.copy()  # plain GD: the update goes into the weight GEMMs
            losses = net.train_epoch(
                trained,
                np.zeros_like(params),
                np.zeros(0, dtype),
                np.zeros(0, dtype),
                x,
                y,
                np.arange(n),
                64,
                0.1,
                0,
                mod.LossSpec("cross_entropy", from_logits=True),
                mod.UpdateRule("gd"),
            )
            out[name] = (a, dx, grads, np.asarray(losses), trained)
    finally:
        pycvnn.set_num_threads(before)
    hidden = reference.Network(ops[:1]).forward(params, x)
    assert 0.2 < np.mean(hidden == 0) < 0.8  # the gate has work to do
    assert out["cpp"][2].dtype == dtype
    for got, want in zip(out["cpp"], out["ref"]):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(
            got, want, rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-2 * np.abs(want).max()
        )


@pytest.mark.parametrize(
    "rule,hyper",
    [
        ("adam", {}),
        ("adamw", {"weight_decay": 0.1}),
        ("momentum", {"clip_norm": 0.5}),
        ("rmsprop", {"weight_decay": 0.01}),
    ],
)
@pytest.mark.parametrize("batch", [8, 64])
@pytest.mark.parametrize("threads", [1, 2])
def test_update_by_the_threads_of_each_weight_row_matches_reference(rule, hyper, batch, threads):
    # On 2 threads with a batch of 64 the big layers' GEMMs, and so their update, are split by
    # weight rows (16- and 64-row parts; the 5-wide layer on one thread); a batch of 8 runs
    # on one thread. Every parameter must be updated once, with its own state. float64: in
    # float32, Adam's m / sqrt(v) turns the rounding noise of near-zero gradients into
    # lr-sized steps, on one thread as on two.
    import pycvnn

    ops = RELU_NETS["blocked"]
    rng = np.random.default_rng(batch)
    n = 2 * batch + 3  # the last batch partial
    x = rng.standard_normal((n, ops[0][1]))
    y = rng.integers(0, ops[-1][2], n)
    before = pycvnn.get_num_threads()
    results = {}
    try:
        pycvnn.set_num_threads(threads)
        for name, mod in (("cpp", _core), ("ref", reference)):
            params = arena(ops, np.float64) / np.sqrt(ops[0][1])
            grads, s1, s2 = (np.zeros_like(params) for _ in range(3))
            net, upd = mod.Network(ops), mod.UpdateRule(rule, **hyper)
            spec = mod.LossSpec("cross_entropy", from_logits=True)
            losses = net.train_epoch(
                params, grads, s1, s2, x, y, np.arange(n), batch, 0.01, 0, spec, upd
            )
            results[name] = (np.asarray(losses), params, s1, s2)
    finally:
        pycvnn.set_num_threads(before)
    for got, want in zip(results["cpp"], results["ref"]):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * np.abs(want).max())


def test_backward_past_the_rows_of_earlier_backwards_matches_reference():
    # A forward grows only its outputs (inference in large chunks); a backward on more rows
    # than any before it grows its own buffers then.
    rng = np.random.default_rng(5)
    params = arena(OPS, np.float64)
    small, big = rng.standard_normal((3, 6)), rng.standard_normal((40, 6))
    dsmall, dbig = rng.standard_normal((3, 4)), rng.standard_normal((40, 4))
    net = _core.Network(OPS)
    net.forward(params, small)
    net.backward(params, np.zeros_like(params), dsmall)
    grads, want_grads = np.zeros_like(params), np.zeros_like(params)
    got = (net.forward(params, big), net.backward(params, grads, dbig), grads)
    ref = reference.Network(OPS)
    want = (ref.forward(params, big), ref.backward(params, want_grads, dbig), want_grads)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12 * np.abs(w).max())


RULES = [
    ("gd", {}),
    ("momentum", {"form": "ema"}),
    ("momentum", {"form": "heavy_ball", "nesterov": True}),
    ("rmsprop", {}),
    ("adam", {"weight_decay": 0.01}),
    ("adamw", {"weight_decay": 0.1}),
    ("adam", {"clip_norm": 0.5}),
]
LOSSES = [  # (loss name, options, output activation, targets maker)
    ("cross_entropy", {}, "none", lambda r, n, c: r.integers(0, c, n)),
    ("cross_entropy", {}, "none", lambda r, n, c: r.dirichlet(np.ones(c), n)),
    ("l2", {}, "none", lambda r, n, c: r.standard_normal((n, c))),
    ("huber", {"delta": 0.3}, "tanh", lambda r, n, c: r.standard_normal((n, c))),
    ("l1", {}, "none", lambda r, n, c: r.standard_normal((n, c))),
    ("hinge", {}, "none", lambda r, n, c: r.integers(0, c, n)),
    ("squared_hinge", {}, "none", lambda r, n, c: r.integers(0, c, n)),
    ("dice", {"smooth": 1.0}, "sigmoid", lambda r, n, c: (r.random((n, c)) > 0.5) * 1.0),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule,hyper", RULES)
@pytest.mark.parametrize("loss,opts,out_act,make_y", LOSSES)
def test_train_epoch_matches_reference(loss, opts, out_act, make_y, rule, hyper, dtype):
    rng = np.random.default_rng(1)
    ops = OPS[:-1] + [("dense", 5, 4, out_act, 0.01)]
    n = 23  # 3 batches of 8, the last partial
    x = rng.standard_normal((n, 6)).astype(dtype)
    y = make_y(rng, n, 4)
    y = y if y.dtype.kind == "i" else y.astype(dtype)
    results = {}
    for name, mod in (("cpp", _core), ("ref", reference)):
        params = arena(ops, dtype)
        grads, s1, s2 = (np.zeros_like(params) for _ in range(3))
        net, spec, upd = mod.Network(ops), mod.LossSpec(loss, **opts), mod.UpdateRule(rule, **hyper)
        losses = []
        # epoch 0 in order (rows read in place), 1-2 shuffled (rows gathered), 3 runs out of
        # place: batches [8, 16) in place from row 8, [16, 23) + [0] gathered, [1, 8) in place
        orders = [
            np.arange(n),
            *(np.random.default_rng(e).permutation(n) for e in (1, 2)),
            np.r_[8:n, 0:8],
        ]
        for epoch, order in enumerate(orders):
            losses.append(
                net.train_epoch(params, grads, s1, s2, x, y, order, 8, 0.05, 3 * epoch, spec, upd)
            )
        results[name] = (np.concatenate(losses), params, s1, s2)
    for got, want in zip(results["cpp"], results["ref"]):
        scale = max(np.abs(want).max(), 1e-30)
        np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-2 * scale)
    assert results["cpp"][0].shape == (12,)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("classes", [2, 10, 16, 17, 40])
@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_fused_cross_entropy_matches_reference_at_every_width(classes, scale, dtype):
    # float32 rows of <= 16 classes take the AVX-512 path (one register per row), wider ones
    # and float64 the portable loops; 1e3 logits check the max shift.
    rng = np.random.default_rng(classes)
    ops = [("dense", 7, classes, "none", 0.01)]
    x = (scale * rng.standard_normal((13, 7))).astype(dtype)
    ids = rng.integers(0, classes, 13)
    results = {}
    for name, mod in (("cpp", _core), ("ref", reference)):
        params = arena(ops, dtype)
        grads, s = np.zeros_like(params), np.zeros(0, dtype)
        losses = mod.Network(ops).train_epoch(
            params,
            grads,
            s,
            s,
            x,
            ids,
            np.arange(13),
            5,
            1e-3,
            0,
            mod.LossSpec("cross_entropy"),
            mod.UpdateRule("gd"),
        )
        results[name] = (np.asarray(losses), params)
    for got, want in zip(results["cpp"], results["ref"]):
        np.testing.assert_allclose(
            got, want, rtol=RTOL[dtype], atol=RTOL[dtype] * np.abs(want).max()
        )
    assert results["cpp"][0].shape == (3,) and (results["cpp"][0] >= 0).all()


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_train_epoch_stops_at_a_non_finite_loss_without_applying_it():
    ops = [("dense", 2, 1, "none", 0.01)]
    x = np.array([[1.0, 2.0], [1e30, 1e30], [3.0, 4.0]], np.float32)
    y = np.array([[1.0], [1.0], [1.0]], np.float32)
    for mod in (_core, reference):
        params = np.ones(3, np.float32)
        grads, s = np.zeros(3, np.float32), np.zeros(0, np.float32)
        losses = mod.Network(ops).train_epoch(
            params,
            grads,
            s,
            s,
            x,
            y,
            np.arange(3),
            1,
            0.01,
            0,
            mod.LossSpec("l2"),
            mod.UpdateRule("gd"),
        )
        assert len(losses) == 2 and np.isfinite(losses[0]) and not np.isfinite(losses[1])
        # Only the first batch's update: pred = 1 + 2 + 1 = 4, dL/dpred = 2 (4 - 1) = 6,
        # so W -= 0.01 * 6 x and b -= 0.01 * 6.
        np.testing.assert_allclose(params, [0.94, 0.88, 0.94], rtol=1e-6)


def test_update_rule_step_matches_reference_and_spares_biases():
    g = np.random.default_rng(0).standard_normal(10)
    for rule, hyper in RULES:
        res = []
        for mod in (_core, reference):
            p, s1, s2 = np.linspace(-1, 1, 10), np.zeros(10), np.zeros(10)
            mod.UpdateRule(rule, **hyper).step(p, g.copy(), s1, s2, 6, 0.1, 1)
            res.append(p)
        np.testing.assert_allclose(res[0], res[1], rtol=1e-12, err_msg=rule)
    # Coupled decay on the first n_decay entries only: with g = 0 the biases do not move.
    p, g0 = np.ones(4), np.zeros(4)
    _core.UpdateRule("gd", weight_decay=0.5).step(p, g0, g0[:0], g0[:0], 2, 0.1, 1)
    np.testing.assert_allclose(p, [0.95, 0.95, 1.0, 1.0])


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: _core.Network([]), "ops"),
        (lambda: _core.Network([("conv", 2, 2, "none", 0.0)]), r"ops\[0\]"),
        (
            lambda: _core.Network([("dense", 2, 3, "none", 0.0), ("dense", 4, 1, "none", 0.0)]),
            r"ops\[1\]",
        ),
        (lambda: _core.Network([("dense", 2, 3, "swish", 0.0)]), "activation"),
        (lambda: _core.LossSpec("cross_entropyy"), "name"),
        (lambda: _core.LossSpec("huber", delta=0.0), "delta"),
        (lambda: _core.UpdateRule("adagrad"), "rule"),
        (lambda: _core.UpdateRule("momentum", form="ema", nesterov=True), "nesterov"),
        (lambda: _core.UpdateRule("adam", beta2=1.0), "beta2"),
        (lambda: _core.UpdateRule("gd", clip_norm=-1.0), "clip_norm"),
    ],
)
def test_bad_construction(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def _epoch_args(**change):
    ops = [("dense", 3, 2, "none", 0.01)]
    args = dict(
        params=np.zeros(8, np.float32),
        grads=np.zeros(8, np.float32),
        state1=np.zeros(8, np.float32),
        state2=np.zeros(8, np.float32),
        x=np.ones((4, 3), np.float32),
        y=np.array([0, 1, 1, 0]),
        order=np.arange(4),
        batch_size=2,
        lr=0.1,
        t=0,
        loss=_core.LossSpec("cross_entropy"),
        rule=_core.UpdateRule("adam"),
    )
    args.update(change)
    return _core.Network(ops), args


def test_train_epoch_checks_the_class_ids_of_the_rows_it_trains_on():
    # Only those rows are read, and only their ids are checked: a call costs O(order), not
    # O(rows) (fit's progress bar makes up to 20 calls an epoch).
    net, args = _epoch_args(y=np.array([0, 1, 7, 0]), order=np.array([0, 1, 3]))
    assert len(net.train_epoch(**args)) == 2  # row 2 is not trained on
    net, args = _epoch_args(y=np.array([0, 1, 7, 0]), order=np.array([3, 2]))
    with pytest.raises(
        ValueError, match=r"target: expected class ids in \[0, 2\), got 7 at index 2"
    ):
        net.train_epoch(**args)


@pytest.mark.parametrize(
    "change,exc,match",
    [
        ({"params": np.zeros(7, np.float32)}, ValueError, "params"),
        ({"params": np.zeros(8, np.int32)}, TypeError, "params"),
        ({"grads": np.zeros(8)}, TypeError, "grads"),
        ({"state2": np.zeros(3, np.float32)}, ValueError, "state2"),
        ({"x": np.ones((4, 5), np.float32)}, ValueError, "x"),
        ({"x": np.array([["a"] * 3] * 4)}, TypeError, "x"),
        ({"y": np.array([0, 1, 2, 0])}, ValueError, "target"),
        ({"y": np.ones((4, 3), np.float32)}, ValueError, "y"),
        ({"order": np.array([0, 1, 4])}, ValueError, "order"),
        ({"order": np.array([0.0, 1.0])}, ValueError, "order"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"lr": float("nan")}, ValueError, "lr"),
        (
            {"loss": _core.LossSpec("binary_cross_entropy"), "y": np.ones((4, 2), np.float32)},
            ValueError,
            "loss",
        ),
    ],
)
def test_train_epoch_bad_input(change, exc, match):
    net, args = _epoch_args(**change)
    with pytest.raises(exc, match=match):
        net.train_epoch(**args)


def test_backward_needs_a_forward_of_the_same_dtype():
    net = _core.Network([("dense", 3, 2, "relu", 0.01)])
    p, g = np.zeros(8, np.float32), np.zeros(8, np.float32)
    with pytest.raises(ValueError, match="forward"):
        net.backward(p, g, np.ones((1, 2), np.float32))
    net.forward(p, np.ones((5, 3), np.float32))
    with pytest.raises(ValueError, match="dout"):
        net.backward(p, g, np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match="forward"):
        net.backward(p.astype(np.float64), g.astype(np.float64), np.ones((5, 2)))


# ---- the core's thread pool (parallel.hpp) ----------------------------------------------------


def _big_update(rule, n=600_000, **hyper):
    rng = np.random.default_rng(0)
    p, g = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    s1, s2 = np.zeros_like(p), np.zeros_like(p)
    for t in range(1, 4):
        _core.UpdateRule(rule, **hyper).step(p, g.copy(), s1, s2, n // 3, 0.01, t)
    return p, s1, s2


@pytest.fixture
def threads():
    import pycvnn

    before = pycvnn.get_num_threads()
    yield pycvnn.set_num_threads
    pycvnn.set_num_threads(before)


@pytest.mark.parametrize("n", [150_000, 600_000])  # mnist's arena (235k) is split too
@pytest.mark.parametrize("rule,hyper", RULES)
def test_update_split_over_threads_is_bitwise_the_serial_one(threads, rule, hyper, n):
    threads(1)
    serial = _big_update(rule, n, **hyper)
    threads(2)
    split = _big_update(rule, n, **hyper)
    for a, b in zip(serial, split):
        np.testing.assert_array_equal(a, b)


def test_pool_survives_fork_and_concurrent_callers(threads):
    import multiprocessing
    import threading

    threads(2)
    want = _big_update("adam")[0]
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_big_update, args=("adam",))
    child.start()
    child.join(60)
    assert child.exitcode == 0, "a forked child could not run the pool (deadlock or crash)"
    results = [None] * 4

    def work(i):
        results[i] = _big_update("adam")[0]

    workers = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    for r in results:
        np.testing.assert_array_equal(r, want)
