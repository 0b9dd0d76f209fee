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
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--benchmark-disable",
            "bench",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
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
    results = {
        "peak": 240.0,
        "gemm": {"mnist": (flops, 1.5e-3), "wide": (flops, 1.5e-3)},
        "ceiling": {"mnist": 1.4e-3, "wide": 1.4e-3},
        "steps": {
            ("mnist", "gd"): {"cpp": 2000.0, "torch": 2700.0, "sklearn": 5000.0, "numpy": 5000.0},
            ("mnist", "adam"): {"cpp": 2000.0, "torch": 4350.0, "sklearn": 6000.0, "numpy": 9000.0},
            ("wide", "gd"): {"cpp": 2000.0, "torch": 2530.0, "sklearn": 4000.0, "numpy": 2000.0},
        },
    }
    rows = {
        tuple(c.strip() for c in line.split("|")[1:4]): line
        for line in compare.headroom_section(results).splitlines()
        if line.startswith(("| mnist", "| wide"))
    }
    assert set(rows) == {
        ("mnist", "gd", "torch"),
        ("mnist", "gd", "sklearn"),
        ("mnist", "adam", "torch"),
        ("wide", "gd", "torch"),
        ("wide", "gd", "numpy"),
    }  # mnist numpy's 2.5x, 4.5x, wide sklearn's 2x met
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
    from pycvnn import _bench

    t = _bench.time_loss_and_bias_sums(32, [32, 10], 50)
    assert 0 < t < 1  # seconds for a 32x10 loss and two bias sums, not a failed loop
    for bad, name in (
        ((0, [10], 5), "N"),
        ((8, [], 5), "outs"),
        ((8, [10, 0], 5), "outs"),
        ((8, [10], 0), "reps"),
    ):
        with pytest.raises(ValueError, match=f"^{name}: "):
            _bench.time_loss_and_bias_sums(*bad)


@pytest.mark.parametrize("path", ["auto", "blas", "small", "blocked", "dot"])
def test_time_gemm_times_every_path(path):
    from pycvnn import _bench

    assert 0 < _bench.time_gemm(8, 24, 40, False, True, 3, path) < 1


def test_time_gemm_and_fma_peak_validate():
    from pycvnn import _bench

    for args, name in (
        ((0, 4, 4), "m"),
        ((4, -1, 4), "n"),
        ((4, 4, 0), "k"),
        ((4, 4, 4, False, False, 0), "reps"),
        ((4, 4, 4, False, False, 1, "fast"), "path"),
    ):
        with pytest.raises(ValueError, match=f"^{name}: "):
            _bench.time_gemm(*args)
    for seconds in (0.0, -1.0, float("nan"), float("inf"), 61.0):
        with pytest.raises(ValueError, match="^seconds: "):
            _bench.fma_peak(seconds)
    assert _bench.fma_peak(0.01) > 0


def test_bench_module_matches_its_stub_and_core_keeps_none_of_it():
    """_bench.pyi lists exactly _bench's functions with their arguments and defaults, and
    the timing loops are no longer part of _core."""
    import ast
    import re

    import pycvnn
    from pycvnn import _bench, _core

    tree = ast.parse(pathlib.Path(pycvnn.__file__).with_name("_bench.pyi").read_text())
    stub = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            args = node.args.args
            defaults = [None] * (len(args) - len(node.args.defaults)) + node.args.defaults
            stub[node.name] = [
                (a.arg, None if d is None else ast.literal_eval(d)) for a, d in zip(args, defaults)
            ]
    compiled = {n for n in dir(_bench) if not n.startswith("_") and callable(getattr(_bench, n))}
    assert set(stub) == compiled
    for name, params in stub.items():
        doc = getattr(_bench, name).__doc__.splitlines()[0]  # "name(arg: type = default, ...)"
        inner = doc[doc.index("(") + 1 : doc.rindex(") ->")]
        got = []
        for part in re.split(r",\s*(?![^\[]*\])", inner):  # the commas outside brackets
            pname, _, rest = part.partition(":")
            default = rest.partition(" = ")[2]
            got.append((pname.strip(), ast.literal_eval(default) if default else None))
        assert got == params, name
    assert not {"_fma_peak", "_time_gemm", "_time_loss_and_bias_sums"} & set(dir(_core))
