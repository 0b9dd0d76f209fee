"""How long a Ctrl-C takes to stop a fit: SIGINT to a child process mid-epoch, timed until
the child reports its KeyboardInterrupt, for the reference configs, quiet and verbose.

    python bench/interrupt_latency.py [--repeats 3]

The fit stops between batches, so the latency is about one training step plus the signal's
trip; the child also checks that opt.t counts exactly the steps applied.
"""

import statistics
import subprocess
import sys
import time

from cli_options import parse

CHILD = r"""
import sys, time
import numpy as np
import pycvnn
sizes, batch, verbose = {sizes!r}, {batch}, {verbose}
rng = np.random.default_rng(0)
n = batch * 4000
X = rng.standard_normal((n, sizes[0])).astype(np.float32)
y = rng.integers(0, sizes[-1], n)
model = pycvnn.MLP(sizes, output="softmax", seed=0)
opt = pycvnn.optim.Adam(1e-3)
class Ready:
    def on_train_begin(self, model):
        print("ready", flush=True)
try:
    model.fit(X, y, optimizer=opt, epochs=100, batch_size=batch, verbose=verbose,
              callbacks=[Ready()])
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted", opt.t, flush=True)
"""

CONFIGS = {
    "tiny": ([64, 32, 10], 32),
    "mnist": ([784, 256, 128, 10], 128),
    "wide": ([1024, 1024, 1024, 10], 256),
}


def latency(sizes, batch, verbose):
    code = CHILD.format(sizes=sizes, batch=batch, verbose=verbose)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)  # well into the first epoch
    t0 = time.perf_counter()
    proc.send_signal(2)
    line = proc.stdout.readline().split()
    seconds = time.perf_counter() - t0
    proc.wait(30)
    assert line and line[0] == "interrupted", line
    return seconds


def main(argv=None):
    args = parse(__doc__, argv, repeats=3)
    print("| config | verbose | median ms from SIGINT to KeyboardInterrupt | max ms |")
    print("| --- | --- | ---: | ---: |")
    for name, (sizes, batch) in CONFIGS.items():
        for verbose in (False, True):
            ms = [1e3 * latency(sizes, batch, verbose) for _ in range(args.repeats)]
            print(
                f"| {name} | {verbose} | {statistics.median(ms):.1f} | {max(ms):.1f} |", flush=True
            )


if __name__ == "__main__":
    main()
