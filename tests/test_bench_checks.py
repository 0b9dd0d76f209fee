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
    time, below the fastest sgemm, below it plus the loss and bias sums (+ Adam's pass), or
    above that floor by how much."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    compare = pytest.importorskip("compare")
    monkeypatch.setattr(compare, "adam_floor", lambda config: 100e-6)
    monkeypatch.setattr(compare, "loss_floor", lambda config: 10e-6)
    flops = 240e9 * 1e-3  # 1 ms of GEMMs at a 240 GFLOP/s peak
    results = {"peak": 240.0, "gemm": {"mnist": (flops, 1.5e-3), "wide": (flops, 1.5e-3)},
               "ceiling": {"mnist": 1.4e-3, "wide": 1.4e-3},
               "steps": {("mnist", "gd"): {"cpp": 2000.0, "torch": 2700.0, "sklearn": 5000.0,
                                           "numpy": 5000.0},
                         ("mnist", "adam"): {"cpp": 2000.0, "torch": 4350.0, "sklearn": 6000.0,
                                             "numpy": 9000.0},
                         ("wide", "gd"): {"cpp": 2000.0, "torch": 2530.0, "sklearn": 4000.0,
                                          "numpy": 2000.0}}}
    rows = {tuple(c.strip() for c in line.split("|")[1:4]): line
            for line in compare.headroom_section(results).splitlines()
            if line.startswith(("| mnist", "| wide"))}
    assert set(rows) == {("mnist", "gd", "torch"), ("mnist", "gd", "sklearn"),
                         ("mnist", "adam", "torch"), ("wide", "gd", "torch"),
                         ("wide", "gd", "numpy")}  # mnist numpy's 2.5x, 4.5x, wide sklearn's 2x met
    assert "> 100% of FMA peak" in rows["mnist", "gd", "torch"]  # needs 900 µs < 1000
    assert "above that floor" in rows["mnist", "gd", "sklearn"]  # 1666.7 > 1410
    assert "1,666.7" in rows["mnist", "gd", "sklearn"]
    assert "256.7 µs" in rows["mnist", "gd", "sklearn"]
    # needs 1450 µs: above the GEMMs' 1400 alone, below them plus the loss's 10 and Adam's 100
    assert "plus the core's loss, bias sums and Adam pass" in rows["mnist", "adam", "torch"]
    assert "| 1,510.0 |" in rows["mnist", "adam", "torch"]  # the floor column
    # needs 1405.6 µs: above the GEMMs' 1400, below them plus the loss and bias sums' 10
    assert "plus the core's loss and bias sums" in rows["wide", "gd", "torch"]
    # needs 1333.3 µs: below the fastest sgemm's 1400 itself
    assert rows["wide", "gd", "numpy"].rstrip(" |").endswith("below the fastest sgemm measured")


def test_time_loss_and_bias_sums_times_and_validates():
    from pycvnn import _core

    t = _core._time_loss_and_bias_sums(32, [32, 10], 50)
    assert 0 < t < 1e-3  # seconds for a 32x10 loss and two bias sums, not a failed loop
    for bad in ((0, [10], 5), (8, [], 5), (8, [10, 0], 5), (8, [10], 0)):
        with pytest.raises(ValueError):
            _core._time_loss_and_bias_sums(*bad)
