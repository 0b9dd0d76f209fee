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
