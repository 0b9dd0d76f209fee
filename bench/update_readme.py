"""Copy the tables of bench/RESULTS.md (written by bench/compare.py) into README.md's
"## Performance" section, between the <!-- perf:... --> markers.

    python bench/compare.py --out bench/RESULTS.md && python bench/update_readme.py
"""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def tables(results, title, stop_at=None):
    """The Markdown table rows of one section of RESULTS.md."""
    start = results.index(title)
    end = results.find("\n## ", start + 1)
    body = results[start : end if end > 0 else None]
    if stop_at:
        body = body.split(stop_at)[0]
    return "\n".join(line for line in body.splitlines() if line.startswith("|"))


def main():
    results = (ROOT / "bench" / "RESULTS.md").read_text()
    header = "\n".join(line for line in results.splitlines()[:10]
                       if line.startswith(("- date", "- CPU", "- versions")))
    peak = next(line for line in results.splitlines() if line.startswith("FMA peak"))
    blocks = {
        "header": header,
        "step": tables(results, "## Training step"),
        "gemm": peak + "\n\n" + tables(results, "## GEMM efficiency", stop_at="<details>"),
        "demand": tables(results, "## What the"),
        "threads": tables(results, "## Thread scaling"),
        "memory": tables(results, "## Peak memory"),
        "adam": tables(results, "## Adam update"),
    }
    readme = (ROOT / "README.md").read_text()
    for name, text in blocks.items():
        begin, end = f"<!-- perf:{name} -->", f"<!-- /perf:{name} -->"
        i, j = readme.index(begin) + len(begin), readme.index(end)
        readme = readme[:i] + "\n" + text + "\n" + readme[j:]
    (ROOT / "README.md").write_text(readme)


if __name__ == "__main__":
    main()
