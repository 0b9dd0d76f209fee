"""1 vs 2 threads over a sweep of MLP widths and batch sizes: the default thread count must
never make training slower than one thread.

    python bench/threads.py [--opt gd|adam] [--widths 32,128,512] [--batches 1,8,32,256]

Each row: a 784-h-10 ReLU MLP trained with pycvnn cpp's Network.train_epoch on random data in
order, best of 5 epochs per thread count (interleaved), µs a step; "<-- slower" marks 2 threads
more than 5% slower than 1.
"""

import argparse
import time

import numpy as np

import pycvnn
from pycvnn import _core
from pycvnn._net import strip_output

ROWS = 8192


def step_times(width, batch, optimizer, x, y, repeats=5):
    model = pycvnn.MLP([784, width, 10], activation="relu", output="softmax", seed=0)
    ops, _ = strip_output(model.ops, "cross_entropy")
    net, rule = _core.Network(ops), _core.UpdateRule(optimizer)
    spec = _core.LossSpec("cross_entropy", from_logits=True)
    params = model._params.copy()
    grads = np.zeros_like(params)
    state = [
        np.zeros_like(params) if optimizer == "adam" else np.zeros(0, params.dtype)
        for _ in range(2)
    ]
    order = np.arange(min(ROWS, batch * max(20, 2000 // batch)))
    best = {1: np.inf, 2: np.inf}
    for _ in range(repeats):
        for threads in best:
            pycvnn.set_num_threads(threads)
            t0 = time.perf_counter()
            net.train_epoch(params, grads, *state, x, y, order, batch, 1e-3, 1, spec, rule)
            best[threads] = min(best[threads], (time.perf_counter() - t0) / (len(order) // batch))
    return best[1] * 1e6, best[2] * 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opt", default="adam", choices=["gd", "adam"])
    parser.add_argument("--widths", default="32,64,128,256,512")
    parser.add_argument("--batches", default="1,8,16,32,64,256")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((ROWS, 784), dtype=np.float32)
    y = rng.integers(0, 10, ROWS)
    print(f"784-h-10 ReLU MLPs, {args.opt}:\n")
    print("| MLP | batch | 1 thread µs/step | 2 threads µs/step | speedup |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for width in map(int, args.widths.split(",")):
        for batch in map(int, args.batches.split(",")):
            one, two = step_times(width, batch, args.opt, x, y)
            flag = " <-- slower" if two > 1.05 * one else ""
            print(
                f"| 784-{width}-10 | {batch} | {one:,.1f} | {two:,.1f} | {one / two:.2f}×{flag} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
