"""Allocator calls per training step, counted by bench/malloc_count.c (LD_PRELOAD).

    LD_PRELOAD=/path/libmalloc_count.so python bench/alloc_probe.py tiny,mnist cpp,numpy,torch

After warm-up, counts the allocator calls of training on n1 and on n2 > n1 batches (each one
call of the same kind: a train_epoch, a loop, a partial_fit), so per-call costs (the returned
losses array, argument conversion) cancel: per step = (c2 - c1) / (n2 - n1). Prints JSON.
"""

import ctypes
import json
import sys

import workloads as W

N1, N2 = 10, 110


def counter():
    try:
        return ctypes.c_ulonglong.in_dll(ctypes.CDLL(None), "pycvnn_alloc_count")
    except ValueError:
        sys.exit(
            "alloc_probe: pycvnn_alloc_count not found; run with LD_PRELOAD=libmalloc_count.so"
        )


def calls(count, fn, *args):
    before = count.value
    fn(*args)
    return count.value - before


def per_step(runner, count):
    runner.steps(N2)  # warm-up: workspace, optimizer state, caches at their final size
    c1 = calls(count, runner.steps, N1)
    c2 = calls(count, runner.steps, N2)
    return {"per_step": (c2 - c1) / (N2 - N1), "per_call": c1 - N1 * (c2 - c1) / (N2 - N1)}


def main(configs, peers):
    W.single_thread()
    count = counter()
    rows = []
    for config in configs:
        for optimizer in W.LEARNING_RATES:
            work = W.make_workload(config, optimizer, N2)
            for peer in peers:
                reason = W.missing_reason(peer)
                row = {"config": config, "optimizer": optimizer, "peer": peer}
                row.update(
                    {"skipped": reason} if reason else per_step(W.make_runner(peer, work), count)
                )
                rows.append(row)
    print(json.dumps(rows))


if __name__ == "__main__":
    main(sys.argv[1].split(","), sys.argv[2].split(","))
