"""Paired A/B of the training step between two installs of pycvnn (say main and a branch).

Run: python bench/ab_step.py --other /path/to/venv-base/bin/python [--rounds 5]

Each round times every config x optimizer once in this interpreter and once in the other,
alternating which goes first, so both see the same machine load; the report gives per cell the
median over rounds of (this / other) µs per step. Below 1 means this install is faster.
"""

import json
import pathlib
import statistics
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cli_options import parse  # noqa: E402

# One process times one round of every cell and prints {cell: µs per step}.
CHILD = """
import json, statistics, sys, time
sys.path.insert(0, {here!r})
import workloads as W
W.single_thread()
out = {{}}
for config, steps in {steps!r}.items():
    for optimizer in W.LEARNING_RATES:
        runner = W.make_runner("cpp", W.make_workload(config, optimizer, steps))
        runner.chunk()
        times = []
        for _ in range({repeats}):
            t0 = time.perf_counter()
            runner.chunk()
            times.append((time.perf_counter() - t0) / steps * 1e6)
        out[f"{{config}}/{{optimizer}}"] = statistics.median(times)
print(json.dumps(out))
"""
STEPS = {"tiny": 100, "mnist": 10, "wide": 2}


def one_round(python, repeats):
    code = CHILD.format(here=str(HERE), steps=STEPS, repeats=repeats)
    run = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def main():
    args = parse(__doc__, sys.argv[1:], other="", rounds=5, repeats=5)
    if not args.other:
        sys.exit("ab_step: --other PYTHON is required (the interpreter of the install to compare)")
    ratios = {}
    for r in range(args.rounds):
        pair = [sys.executable, args.other] if r % 2 == 0 else [args.other, sys.executable]
        mine, theirs = (one_round(p, args.repeats) for p in pair)
        if r % 2:
            mine, theirs = theirs, mine
        for cell in mine:
            ratios.setdefault(cell, []).append(mine[cell] / theirs[cell])
    print("| cell | this / other (median) | min | max |")
    print("| --- | ---: | ---: | ---: |")
    for cell, rs in ratios.items():
        print(f"| {cell} | {statistics.median(rs):.3f} | {min(rs):.3f} | {max(rs):.3f} |")


if __name__ == "__main__":
    main()
