"""Concurrency figures: calls from many threads compared with serial ones, and what other
threads may do meanwhile (change the thread count, rewrite the class ids being trained on).

    python bench/stress_threads.py [--seconds 20] [--threads 8]

Prints, per scenario, how many calls were compared and how many differed; any crash or hang
ends the script (a hang after --seconds * 5 is reported as such).
"""

import faulthandler
import threading
import time

import numpy as np
from cli_options import parse

import pycvnn
from pycvnn import _core


def for_a_while(seconds, n_threads, body):
    """body(i) on n threads until `seconds` pass; returns (calls compared, mismatches). body
    returns whether its call matched, or None for a call that compares nothing."""
    stop = time.perf_counter() + seconds
    counts = [[0, 0] for _ in range(n_threads)]

    def run(i):
        while time.perf_counter() < stop:
            same = body(i)
            if same is not None:
                counts[i][0] += 1
                counts[i][1] += not same

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds * 5)
        if t.is_alive():
            raise SystemExit("hang: a thread did not finish")
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def predicts(seconds, n, backend):
    rng = np.random.default_rng(0)
    with pycvnn.using_backend(backend):
        model = pycvnn.MLP([784, 256, 128, 10], output="softmax", seed=1)
        batches = [rng.standard_normal((k, 784)).astype(np.float32) for k in (1, 7, 64, 300)]
        serial = [model.predict(x) for x in batches]
        return for_a_while(
            seconds, n, lambda i: np.array_equal(model.predict(batches[i % 4]), serial[i % 4])
        )


def against_serial_while_toggling(seconds, n, call):
    """call() on n - 1 threads while one more flips the thread count between 1 and 2; a call
    matches when its result equals call()'s with 1 or with 2 threads."""
    serial = []
    for k in (1, 2):
        pycvnn.set_num_threads(k)
        serial.append(call())

    def body(i):
        if i == 0:
            pycvnn.set_num_threads(1 + int(time.perf_counter() * 1e3) % 2)
            return None
        out = call()
        return any(np.array_equal(out, s) for s in serial)

    return for_a_while(seconds, n, body)


def predicts_while_the_count_changes(seconds, n):
    model = pycvnn.MLP([784, 512, 256, 10], seed=0)
    x = np.random.default_rng(0).standard_normal((2048, 784)).astype(np.float32)
    return against_serial_while_toggling(seconds, n, lambda: model.predict(x))


def fits_while_the_count_changes(seconds):
    X, y = pycvnn.datasets.digits()

    def fit():
        m = pycvnn.MLP([64, 512, 256, 10], output="softmax", seed=0)
        m.fit(X, y, epochs=1, batch_size=64, seed=3, verbose=False)
        return m._params.copy()

    return against_serial_while_toggling(seconds, 2, fit)


def training_while_ids_are_rewritten(seconds):
    rng = np.random.default_rng(0)
    n = 4096
    x = rng.standard_normal((n, 32)).astype(np.float32)
    y0 = rng.integers(0, 10, n)
    net = _core.Network([("dense", 32, 10, "none", 0.0)])
    p0 = (rng.standard_normal(net.n_params) * 0.1).astype(np.float32)
    e = np.zeros(0, np.float32)
    spec, rule = _core.LossSpec("cross_entropy"), _core.UpdateRule("gd")
    p = p0.copy()
    want = net.train_epoch(p, np.zeros_like(p), e, e, x, y0, np.arange(n), 8, 0.01, 0, spec, rule)
    y = y0.copy()

    def body(i):
        if i == 0:  # the vandal
            y[::7] = 10**15
            y[::7] = y0[::7]
            return None
        params = p0.copy()
        try:
            got = net.train_epoch(
                params, np.zeros_like(params), e, e, x, y, np.arange(n), 8, 0.01, 0, spec, rule
            )
        except ValueError:  # the check saw the vandal's ids: refused, never read
            return True
        return np.array_equal(got, want)

    return for_a_while(seconds, 2, body)


def main(argv=None):
    args = parse(__doc__, argv, seconds=20.0, threads=8)
    faulthandler.enable()
    pycvnn.set_num_threads(2)
    s, n = args.seconds, args.threads
    rows = [
        (f"predict, {n} threads, cpp", predicts(s, n, "cpp")),
        (f"predict, {n} threads, numpy", predicts(s, n, "numpy")),
        (
            f"predict, {n - 1} threads, set_num_threads toggled",
            predicts_while_the_count_changes(s, n),
        ),
        ("fit, set_num_threads toggled", fits_while_the_count_changes(s)),
        (
            "train_epoch, class ids rewritten (refused, or equal to serial)",
            training_while_ids_are_rewritten(s),
        ),
    ]
    print("| scenario | calls compared | mismatches |")
    print("| --- | ---: | ---: |")
    for name, (calls, bad) in rows:
        print(f"| {name} | {calls:,} | {bad} |")


if __name__ == "__main__":
    main()
