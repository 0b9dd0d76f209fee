"""The bench suites check every kernel and step against the reference before they time it.
Those checks run here with timing off, so a failing one shows in the tests, not only when
someone benchmarks."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not (ROOT / "bench").is_dir(), reason="no bench/ beside tests/")
def test_bench_suites_pass_their_reference_checks():
    pytest.importorskip("pytest_benchmark")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--benchmark-disable",
         "bench"],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


@pytest.mark.skipif(not (ROOT / "bench").is_dir(), reason="no bench/ beside tests/")
def test_compare_headroom_verdicts(monkeypatch):
    """compare.py's verdict on each unmet target, from made-up timings: below the FMA peak's
    time, below the fastest sgemm (+ Adam's pass), or above that floor by how much."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    compare = pytest.importorskip("compare")
    monkeypatch.setattr(compare, "adam_floor", lambda config: 100e-6)
    flops = 240e9 * 1e-3  # 1 ms of GEMMs at a 240 GFLOP/s peak
    results = {"peak": 240.0, "gemm": {"mnist": (flops, 1.5e-3)}, "ceiling": {"mnist": 1.4e-3},
               "steps": {("mnist", "gd"): {"cpp": 2000.0, "torch": 2700.0, "sklearn": 5000.0,
                                           "numpy": 5000.0},
                         ("mnist", "adam"): {"cpp": 2000.0, "torch": 4350.0, "sklearn": 6000.0,
                                             "numpy": 9000.0}}}
    rows = {tuple(c.strip() for c in line.split("|")[1:4]): line
            for line in compare.headroom_section(results).splitlines()
            if line.startswith("| mnist")}
    assert set(rows) == {("mnist", "gd", "torch"), ("mnist", "gd", "sklearn"),
                         ("mnist", "adam", "torch")}  # numpy's 2.5x and 4.5x are met
    assert "> 100% of FMA peak" in rows["mnist", "gd", "torch"]  # needs 900 µs < 1000
    assert "above that floor" in rows["mnist", "gd", "sklearn"]  # 1666.7 > 1400
    assert "1,666.7" in rows["mnist", "gd", "sklearn"]
    assert "266.7 µs" in rows["mnist", "gd", "sklearn"]
    # needs 1450 µs: above the GEMMs' 1400 alone, below them plus Adam's 100
    assert "plus the core's Adam pass" in rows["mnist", "adam", "torch"]
    assert "| 1,500.0 |" in rows["mnist", "adam", "torch"]  # the floor column
