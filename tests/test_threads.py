"""Concurrency: calls from many threads give the serial answers bit for bit, nothing another
thread does to the arrays or the thread count crashes, hangs or changes a fit, and Ctrl-C
stops a fit between batches with the weights, the optimizer state and its step count in step."""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import pycvnn
from pycvnn import _core, reference

BACKENDS = ["cpp", "numpy"]


def run_threads(n, target, timeout=120):
    """Runs target(i) on n threads at once; returns their results, re-raising any error."""
    results, errors = [None] * n, []
    start = threading.Barrier(n)

    def body(i):
        try:
            start.wait()
            results[i] = target(i)
        except BaseException as err:  # noqa: BLE001  (reported to the test below)
            errors.append(err)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a thread did not finish: hang"
    if errors:
        raise errors[0]
    return results


@pytest.fixture
def two_threads():
    before = pycvnn.get_num_threads()
    pycvnn.set_num_threads(2)
    yield
    pycvnn.set_num_threads(before)


# ---- predictions from many threads ---------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sizes", [[64, 32, 10], [784, 256, 128, 10]])
def test_predict_from_8_threads_equals_serial_bit_for_bit(backend, sizes, two_threads):
    rng = np.random.default_rng(0)
    with pycvnn.using_backend(backend):
        model = pycvnn.MLP(sizes, output="softmax", seed=1)
        # Batches of different sizes, so concurrent calls need workspaces of different sizes;
        # 300 rows of 784-256-128-10 is past the size where one call's GEMMs split over threads.
        batches = [
            rng.standard_normal((n, sizes[0])).astype(np.float32) for n in (1, 3, 17, 64, 300)
        ]
        serial = [model.predict(x) for x in batches]
        calls = 1200 if sizes[0] < 100 else 200

        def work(i):
            wrong = 0
            for k in range(calls // 8):
                j = (i + k) % len(batches)
                wrong += not np.array_equal(model.predict(batches[j]), serial[j])
            return wrong

        assert sum(run_threads(8, work)) == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_backward_pairs_per_thread(backend):
    """A backward differentiates the forward made on its own thread, whatever other threads
    run in between: dX equals the serial one."""
    rng = np.random.default_rng(1)
    with pycvnn.using_backend(backend):
        model = pycvnn.MLP([20, 16, 5], activation="tanh", seed=0, dtype="float64")
        xs = [rng.standard_normal((n, 20)) for n in range(1, 9)]
        douts = [rng.standard_normal((n, 5)) for n in range(1, 9)]
        want = []
        for x, d in zip(xs, douts):
            model.forward(x)
            want.append(model.backward(d))

        def work(i):
            bad = 0
            for _ in range(50):
                model.forward(xs[i])
                time.sleep(0)  # let the other threads' forwards in between
                bad += not np.array_equal(model.backward(douts[i]), want[i])
            return bad

        assert sum(run_threads(8, work)) == 0


def test_backward_on_a_thread_without_forward_is_an_error():
    model = pycvnn.MLP([4, 3], seed=0)
    model.forward(np.ones((2, 4)))
    with pytest.raises(ValueError, match="forward pass on this thread"):
        run_threads(1, lambda i: model.backward(np.ones((2, 3))))


@pytest.mark.parametrize("backend", BACKENDS)
def test_fits_of_one_model_from_two_threads_run_one_after_the_other(backend):
    X, y = pycvnn.datasets.digits()
    X, y = X[:400], y[:400]
    with pycvnn.using_backend(backend):
        model = pycvnn.MLP([64, 32, 10], output="softmax", seed=0)
        start = model.get_weights()
        opts = [pycvnn.optim.Adam(1e-2), pycvnn.optim.Adam(1e-2)]
        run_threads(
            2, lambda i: model.fit(X, y, optimizer=opts[i], epochs=2, seed=i, verbose=False)
        )
        together = model.get_weights()
        # The same two fits in either order, one after the other.
        outcomes = []
        for first in (0, 1):
            model.set_weights(start)
            for i in (first, 1 - first):
                model.fit(X, y, optimizer=pycvnn.optim.Adam(1e-2), epochs=2, seed=i, verbose=False)
            outcomes.append(model.get_weights())
    assert any(all(np.array_equal(a, b) for a, b in zip(together, o)) for o in outcomes)


# ---- what another thread does while the GIL is released -----------------------------------


def test_class_ids_rewritten_during_train_epoch_cannot_crash():
    """The ids and the order are copied when checked; writing out-of-range ids into y while
    the epoch runs without the GIL changes nothing it reads."""
    rng = np.random.default_rng(0)
    n = 20000
    x = rng.standard_normal((n, 16)).astype(np.float32)
    y = rng.integers(0, 4, n)
    order = rng.permutation(n)
    net = _core.Network([("dense", 16, 4, "none", 0.0)])
    params = (rng.standard_normal(net.n_params) * 0.1).astype(np.float32)
    grads = np.zeros_like(params)
    empty = np.zeros(0, np.float32)
    spec, rule = _core.LossSpec("cross_entropy"), _core.UpdateRule("gd")
    want_params = params.copy()
    want = net.train_epoch(
        want_params, grads, empty, empty, x, y.copy(), order.copy(), 1, 0.01, 0, spec, rule
    )
    stop = threading.Event()

    def vandal():
        while not stop.is_set():
            y[:] = 10**12
            order[:] = -(10**12)
            y[:] = -1

    t = threading.Thread(target=vandal)
    y_arg, order_arg = y, order
    y_ref, order_ref = y.copy(), order.copy()
    y_arg[:], order_arg[:] = y_ref, order_ref
    got_params = params.copy()
    # Start the vandal once the call has checked its arguments (it copies them then).
    t.start()
    try:
        got = net.train_epoch(
            got_params, grads, empty, empty, x, y_arg, order_arg, 1, 0.01, 0, spec, rule
        )
    except ValueError as err:  # the vandal got in before the check: refused, not run
        assert "target" in str(err) or "order" in str(err)
        got = None
    finally:
        stop.set()
        t.join()
    if got is not None:
        assert np.array_equal(got, want) and np.array_equal(got_params, want_params)


@pytest.mark.parametrize(
    "kernel",
    ["cross_entropy_forward", "cross_entropy_backward", "hinge_forward", "squared_hinge_backward"],
)
def test_class_ids_rewritten_during_a_loss_kernel_cannot_crash(kernel):
    rng = np.random.default_rng(0)
    pred = rng.standard_normal((200_000, 7)).astype(np.float32)
    ids = rng.integers(0, 7, 200_000)
    want = getattr(_core, kernel)(pred, ids.copy())
    stop = threading.Event()

    def vandal():
        while not stop.is_set():
            ids[::997] = 10**15
            ids[::997] = -(10**15)

    t = threading.Thread(target=vandal)
    t.start()
    try:
        for _ in range(20):
            try:
                got = getattr(_core, kernel)(pred, ids)
            except ValueError as err:  # caught by the check: refused, never read
                assert "target" in str(err)
                continue
            # Whatever the vandal did after the check, the kernel used the ids it checked.
            assert np.all(np.isfinite(got))
    finally:
        stop.set()
        t.join()
    assert np.all(np.isfinite(want))


def test_set_num_threads_during_fit_neither_hangs_nor_changes_the_fit(two_threads):
    """The fit keeps the count it started with; the other thread's changes apply after it."""
    X, y = pycvnn.datasets.digits()
    want = {}
    for n in (1, 2):
        pycvnn.set_num_threads(n)
        model = pycvnn.MLP([64, 512, 256, 10], output="softmax", seed=0)
        model.fit(X, y, optimizer="adam", epochs=2, batch_size=64, seed=3, verbose=False)
        want[n] = model._params.copy()
    for start in (1, 2):
        pycvnn.set_num_threads(start)
        model = pycvnn.MLP([64, 512, 256, 10], output="softmax", seed=0)
        stop = threading.Event()

        def toggle(stop=stop):
            k = 0
            while not stop.is_set():
                pycvnn.set_num_threads(1 + k % 2)
                k += 1
                time.sleep(0.0005)

        t = threading.Thread(target=toggle)
        t.start()
        try:
            run_threads(
                1,
                lambda i, model=model: model.fit(
                    X, y, optimizer="adam", epochs=2, batch_size=64, seed=3, verbose=False
                ),
            )
        finally:
            stop.set()
            t.join(60)
        assert not t.is_alive()
        assert np.array_equal(model._params, want[start])
    pycvnn.set_num_threads(2)
    assert pycvnn.get_num_threads() == 2


def test_set_num_threads_during_concurrent_predicts(two_threads):
    model = pycvnn.MLP([784, 256, 128, 10], seed=0)
    x = np.random.default_rng(0).standard_normal((300, 784)).astype(np.float32)
    serial = {}
    for n in (1, 2):
        pycvnn.set_num_threads(n)
        serial[n] = model.predict(x)

    def work(i):
        bad = 0
        for k in range(30):
            if i == 0:
                pycvnn.set_num_threads(1 + k % 2)
            else:
                out = model.predict(x)
                bad += not (np.array_equal(out, serial[1]) or np.array_equal(out, serial[2]))
        return bad

    assert sum(run_threads(4, work)) == 0


# ---- sizes that overflow ---------------------------------------------------------------------


@pytest.mark.parametrize("impl", [_core, reference])
def test_batch_size_past_the_order_is_the_whole_order(impl):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 3))
    y = rng.integers(0, 2, 10)
    net = impl.Network([("dense", 3, 2, "none", 0.0)])
    p, g, e = np.zeros(net.n_params), np.zeros(net.n_params), np.zeros(0)
    losses = net.train_epoch(
        p,
        g,
        e,
        e,
        x,
        y,
        np.arange(10),
        2**63 - 1,
        0.1,
        0,
        impl.LossSpec("cross_entropy"),
        impl.UpdateRule("gd"),
    )
    assert losses.shape == (1,) and np.isfinite(losses[0])


@pytest.mark.parametrize(
    "ops, what",
    [
        ([("dense", 2**31, 2, "none", 0.0)], "2^31"),
        (
            [
                ("dense", 2**31 - 1, 2**31 - 1, "none", 0.0),
                ("dense", 2**31 - 1, 2**31 - 1, "none", 0.0),
                ("dense", 2**31 - 1, 2**31 - 1, "none", 0.0),
            ],
            "fit in memory",
        ),
    ],
)
def test_network_sizes_past_memory_are_refused(ops, what):
    with pytest.raises(ValueError, match="ops"):
        _core.Network(ops)


def test_forward_batch_whose_workspace_overflows_is_refused():
    net = _core.Network([("dense", 1, 2**31 - 1, "none", 0.0)])
    x = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), (2**40, 1), (0, 4))
    with pytest.raises(ValueError, match="x"):
        net.forward(np.zeros(net.n_params, np.float32), x)


# ---- Ctrl-C ---------------------------------------------------------------------------------


@pytest.mark.parametrize("verbose", [False, True])
def test_ctrl_c_stops_a_fit_between_batches_with_the_state_in_step(verbose, capsys):
    """SIGINT mid-epoch: KeyboardInterrupt before the epoch ends, and the weights, Adam's
    moments and its step count are exactly those of opt.t steps over the same order."""
    rng = np.random.default_rng(0)
    n = 300_000
    X = rng.standard_normal((n, 8)).astype(np.float32)
    y = rng.integers(0, 3, n)
    model = pycvnn.MLP([8, 8, 3], output="softmax", seed=0)
    start = model._params.copy()
    opt = pycvnn.optim.Adam(1e-3)

    class InterruptSoon:  # the signal comes once training has begun
        def on_train_begin(self, model):
            self.timer = threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT))
            self.timer.start()

    cb = InterruptSoon()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(
                X, y, optimizer=opt, epochs=3, batch_size=1, seed=5, verbose=verbose, callbacks=[cb]
            )
    finally:
        cb.timer.cancel()
    steps = opt.t
    assert 0 < steps < 3 * n
    # The same steps, by hand, over the fit's order.
    rng = np.random.default_rng(5)
    order = np.concatenate([rng.permutation(n) for _ in range(3)])[:steps]
    net = _core.Network([("dense", 8, 8, "relu", 0.01), ("dense", 8, 3, "none", 0.01)])
    params, grads = start.copy(), np.zeros_like(start)
    m, v = np.zeros_like(start), np.zeros_like(start)
    net.train_epoch(
        params,
        grads,
        m,
        v,
        X,
        y,
        order,
        1,
        1e-3,
        0,
        _core.LossSpec("cross_entropy"),
        _core.UpdateRule("adam"),
    )
    s1, s2 = opt.state(model)
    assert np.array_equal(model._params, params)
    assert np.array_equal(s1, m) and np.array_equal(s2, v)


def test_ctrl_c_with_a_handler_that_returns_lets_the_epoch_finish():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200_000, 8)).astype(np.float32)
    y = rng.integers(0, 3, 200_000)
    model = pycvnn.MLP([8, 8, 3], output="softmax", seed=0)
    seen = []
    previous = signal.signal(signal.SIGINT, lambda *a: seen.append(1))
    timer = threading.Timer(0.1, lambda: os.kill(os.getpid(), signal.SIGINT))
    try:
        timer.start()
        opt = pycvnn.optim.Adam(1e-3)
        model.fit(X, y, optimizer=opt, epochs=5, batch_size=1, seed=5, verbose=False)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert opt.t == 5 * 200_000
    assert seen  # the user's handler ran


def test_ctrl_c_in_a_child_process_exits_with_keyboard_interrupt():
    """The plain script case: no traceback from the core, the interpreter's own exit."""
    code = (
        "import numpy as np, pycvnn\n"
        "X = np.random.default_rng(0).standard_normal((400000, 8)).astype(np.float32)\n"
        "y = np.random.default_rng(1).integers(0, 3, 400000)\n"
        "m = pycvnn.MLP([8, 8, 3], output='softmax', seed=0)\n"
        "print('ready', flush=True)\n"
        "m.fit(X, y, epochs=50, batch_size=1, verbose=False)\n"
        "print('finished', flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert "finished" not in out
    assert "KeyboardInterrupt" in err
