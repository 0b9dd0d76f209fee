"""Print a Markdown table of medians per group from a pytest-benchmark JSON file, one column
per backend/peer and each one's time relative to pycvnn cpp.

    python bench/report.py bench/kernels.json   (bench_kernels.py: cpp vs numpy)
    python bench/report.py bench/step.json      (bench_step.py: µs per training step, 4 peers)
    python bench/report.py bench/gemm.json      (bench_gemm.py: cpp vs numpy, and GFLOP/s)

A benchmark whose extra_info has "steps" is reported per step (its median / steps); one with
"flops" also gets GFLOP/s columns.
"""

import json
import sys
from collections import defaultdict

ORDER = ["cpp", "numpy", "torch", "sklearn"]


def load(path):
    """group -> {column: median seconds per unit}, group -> flops or None, columns in order."""
    medians, flops, columns = defaultdict(dict), {}, set()
    for b in json.load(open(path))["benchmarks"]:
        params, extra = b.get("params") or {}, b.get("extra_info") or {}
        column = params.get("peer") or params.get("backend")
        medians[b["group"]][column] = b["stats"]["median"] / extra.get("steps", 1)
        flops[b["group"]] = extra.get("flops")
        columns.add(column)
    ordered = [c for c in ORDER if c in columns] + sorted(columns - set(ORDER))
    return medians, flops, ordered


def fmt_us(t):
    return f"{t * 1e6:,.1f}" if t else "–"


def main(path):
    medians, flops, columns = load(path)
    others = [c for c in columns if c != "cpp"]
    with_flops = any(flops.values())
    head = ["group"] + [f"{c} (µs)" for c in columns] + [f"{c} / cpp" for c in others]
    head += [f"{c} GFLOP/s" for c in columns] if with_flops else []
    print("| " + " | ".join(head) + " |")
    print("| --- |" + " ---: |" * (len(head) - 1))
    for group, m in medians.items():
        cpp = m.get("cpp")
        cells = [fmt_us(m.get(c)) for c in columns]
        cells += [f"{m[c] / cpp:.1f}×" if cpp and m.get(c) else "–" for c in others]
        if with_flops:
            cells += [
                f"{flops[group] / m[c] / 1e9:,.1f}" if flops[group] and m.get(c) else "–"
                for c in columns
            ]
        print(f"| {group} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/kernels.json")
