"""The first call after a stretch of other Python work: what it costs pycvnn and NumPy alike.

    python bench/coldstart.py [--repeats 15]

compare.py times each peer in chunks between the other peers' chunks, and pycvnn's tiny
chunks (200 steps, under a millisecond) come out slower there than back to back. This shows
where that goes: after a pure-Python loop of the given length, the first call, then the
second, of NumPy summing 16 floats (light vector code), NumPy's 32x64 @ 64x32 matmul
(OpenBLAS's FMA kernels) and one tiny training step (pycvnn cpp, Network.train_epoch on one
batch, FMA kernels too). Medians over the repeats, µs, Python's call overhead included. On
this shared host the FMA-heavy first calls, NumPy's as ours, vary from run to run between
about 10 and 500 µs after 30-100 ms of other work; the second calls do not.
"""

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import workloads as W  # noqa: E402
from cli_options import parse  # noqa: E402
from compare import table  # noqa: E402

GAPS_MS = (0, 3, 15, 30, 100)


def busy_python(ms):
    """A pure-Python loop for about ms milliseconds."""
    end = time.perf_counter() + ms / 1e3
    while time.perf_counter() < end:
        pass


def first_and_second(call, gap_ms, repeats):
    firsts, seconds = [], []
    for _ in range(repeats):
        busy_python(gap_ms)
        times = []
        for _ in range(2):
            t0 = time.perf_counter_ns()
            call()
            times.append((time.perf_counter_ns() - t0) / 1e3)
        firsts.append(times[0])
        seconds.append(times[1])
    return statistics.median(firsts), statistics.median(seconds)


def main(argv=None):
    args = parse(__doc__, argv, repeats=15)
    W.single_thread()
    x = np.ones(16, np.float32)
    step = W.make_runner("cpp", W.make_workload("tiny", "gd", 1))
    a, b = np.ones((32, 64), np.float32), np.ones((64, 32), np.float32)
    calls = {
        "NumPy sum of 16 floats": x.sum,
        "NumPy matmul": lambda: a @ b,
        "pycvnn tiny step": step.chunk,
    }
    for call in calls.values():
        call()
    rows = []
    for gap in GAPS_MS:
        cells = []
        for call in calls.values():
            first, second = first_and_second(call, gap, args.repeats)
            cells += [f"{first:,.1f}", f"{second:,.1f}"]
        rows.append([f"{gap} ms", *cells])
    header = [
        "Python work before",
        *(f"{name}: {which}" for name in calls for which in ("1st call µs", "2nd call µs")),
    ]
    print(table(header, rows))
    print(f"\nMedians of {args.repeats} repeats. A call includes Python's own call overhead.")


if __name__ == "__main__":
    main()
