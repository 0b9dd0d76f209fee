"""Print a Markdown table of cpp vs numpy medians from a pytest-benchmark JSON file.

    python bench/report.py bench/kernels.json
"""

import json
import sys
from collections import defaultdict


def main(path):
    medians = defaultdict(dict)
    for b in json.load(open(path))["benchmarks"]:
        medians[b["group"]][b["params"]["backend"]] = b["stats"]["median"]
    print("| family:kernel | cpp (µs) | numpy (µs) | numpy / cpp |")
    print("| --- | ---: | ---: | ---: |")
    for group, m in medians.items():
        cpp, ref = m.get("cpp"), m.get("numpy")
        ratio = f"{ref / cpp:.1f}×" if cpp and ref else "–"
        fmt = lambda t: f"{t * 1e6:,.1f}" if t else "–"  # noqa: E731
        print(f"| {group} | {fmt(cpp)} | {fmt(ref)} | {ratio} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/kernels.json")
