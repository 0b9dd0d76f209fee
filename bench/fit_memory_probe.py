"""Peak resident memory of one model.fit, in a fresh process; prints JSON.

    python bench/fit_memory_probe.py mnist 8192 [epochs] [optimizer]

Data (float32 generated in place, no float64 temporaries) and the model are created first;
then the peak-RSS mark is reset (/proc/self/clear_refs, "5"), fit runs with verbose=False, and
growth = peak RSS after - RSS before. The peak is VmHWM (/proc/self/status), the high-water
mark of this process's own address space: ru_maxrss would do as well but for one catch, it
also keeps the RSS of the pre-exec image, which for a child spawned by a big parent (vfork)
is the parent's size. Without clear_refs the peak is the larger of both marks (an upper bound). The bound: params x (1 + optimizer state buffers) + grads + one batch's
activations and gradients (the network's workspace for a batch), plus a small constant.
"""

import json
import os
import resource
import sys

import numpy as np
import workloads as W

import pycvnn

F32 = 4
SMALL_CONSTANT = 2 << 20  # 2 MiB: the allocator's and Python's own bookkeeping


def rss_bytes():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_bytes():
    """VmHWM, or ru_maxrss where /proc/self/status has none."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def workspace_bytes(sizes, batch):
    """One batch's activations and gradients as the core holds them: every layer's output,
    two ping-pong gradient buffers and a dz scratch of batch x max width, the gathered batch
    (x rows, targets, int64 ids)."""
    outputs = batch * sum(sizes[1:])
    scratch = 3 * batch * max(sizes)
    gathered = batch * sizes[0] + batch * sizes[-1] + 2 * batch
    return (outputs + scratch + gathered) * F32


def bound_bytes(n_params, optimizer, sizes, batch):
    arena = n_params * F32
    return {
        "params_and_state": arena * (1 + W.N_STATE[optimizer]),
        "grads": arena,
        "workspace": workspace_bytes(sizes, batch),
        "constant": SMALL_CONSTANT,
    }


def main(config, n_samples, epochs=2, optimizer="adam"):
    pycvnn.set_num_threads(1)
    sizes, batch = W.CONFIGS[config]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_samples, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], n_samples, dtype=np.int64)
    model = pycvnn.MLP(list(sizes), output="softmax", seed=0)
    opt = pycvnn.optim.get(optimizer, lr=W.LEARNING_RATES[optimizer])
    before = rss_bytes()
    exact = reset_peak()
    model.fit(
        X, y, loss="cross_entropy", optimizer=opt, epochs=epochs, batch_size=batch, verbose=False
    )
    peak = peak_bytes()
    print(
        json.dumps(
            {
                "config": config,
                "optimizer": optimizer,
                "n_samples": n_samples,
                "epochs": epochs,
                "batch": batch,
                "n_params": model.n_params,
                "rss_before": before,
                "peak": peak,
                "growth": peak - before,
                "peak_reset": exact,
                "bound": bound_bytes(model.n_params, optimizer, sizes, batch),
            }
        )
    )


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], int(args[1]), *([int(args[2])] if len(args) > 2 else []), *args[3:])
