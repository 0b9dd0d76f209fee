"""2 threads against 1 on the reference configs, on an idle machine and beside a busy process.

    python bench/threads_under_load.py [--rounds 7] [--load 1] [--configs tiny,mnist,wide]

A pool that spins for cores it does not have makes a loaded machine's training slower on 2
threads than on 1; the table shows the ratio (2 threads' step time / 1 thread's, median of
interleaved rounds) with no load and with --load busy processes (pure spinning loops) beside it.
"""

import argparse
import multiprocessing as mp
import statistics
import time

import numpy as np

import pycvnn
from pycvnn import _core
from pycvnn._net import strip_output

CONFIGS = {
    "tiny": ((64, 32, 10), 32),
    "mnist": ((784, 256, 128, 10), 128),
    "wide": ((1024, 1024, 1024, 10), 256),
}


def spin(stop):
    while not stop.is_set():
        for _ in range(100000):
            pass


def make_run(sizes, batch, optimizer):
    model = pycvnn.MLP(list(sizes), activation="relu", output="softmax", seed=0)
    ops, _ = strip_output(model.ops, "cross_entropy")
    net, rule = _core.Network(ops), _core.UpdateRule(optimizer)
    spec = _core.LossSpec("cross_entropy", from_logits=True)
    params, grads = model._params.copy(), np.zeros_like(model._params)
    state = [
        np.zeros_like(params) if optimizer == "adam" else np.zeros(0, params.dtype)
        for _ in range(2)
    ]
    # About 20 ms of work a sample on one thread.
    steps = max(4, int(20e-3 / (2 * batch * sum(a * b for a, b in zip(sizes, sizes[1:])) / 50e9)))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps * batch, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], steps * batch)
    order = np.arange(steps * batch)
    lr = 0.01 if optimizer == "gd" else 1e-3

    def run():
        t0 = time.perf_counter()
        net.train_epoch(params, grads, *state, x, y, order, batch, lr, 1, spec, rule)
        return (time.perf_counter() - t0) / steps

    return run


def ratios(configs, rounds):
    out = {}
    for name in configs:
        sizes, batch = CONFIGS[name]
        for opt in ("gd", "adam"):
            run = make_run(sizes, batch, opt)
            times = {1: [], 2: []}
            for _ in range(rounds):
                for n in (1, 2):
                    pycvnn.set_num_threads(n)
                    run()  # warm the pool at this count
                    times[n].append(run())
            one, two = statistics.median(times[1]), statistics.median(times[2])
            out[(name, opt)] = (one * 1e6, two * 1e6)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--load", type=int, default=1, help="busy processes beside the bench")
    parser.add_argument("--configs", default="tiny,mnist,wide")
    args = parser.parse_args(argv)
    configs = args.configs.split(",")
    idle = ratios(configs, args.rounds)
    stop = mp.Event()
    busy = [mp.Process(target=spin, args=(stop,), daemon=True) for _ in range(args.load)]
    for p in busy:
        p.start()
    try:
        time.sleep(0.5)
        loaded = ratios(configs, args.rounds)
    finally:
        stop.set()
        for p in busy:
            p.join()
    print(f"µs a step, median of {args.rounds} interleaved rounds; ratio = 2 threads / 1 thread\n")
    print(f"| config | opt | idle 1T | idle 2T | idle ratio | {args.load} busy: 1T | 2T | ratio |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for key in idle:
        (i1, i2), (l1, l2) = idle[key], loaded[key]
        print(
            f"| {key[0]} | {key[1]} | {i1:,.1f} | {i2:,.1f} | {i2 / i1:.2f} | {l1:,.1f} | "
            f"{l2:,.1f} | {l2 / l1:.2f} |"
        )


if __name__ == "__main__":
    main()
