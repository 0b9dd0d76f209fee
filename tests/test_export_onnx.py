"""pycvnn.export.to_onnx and `pycvnn export`: onnxruntime runs the exported graph to what
model.predict returns, for every activation, output kind, batch size and dtype; bad input is
refused before any work and a failed write leaves nothing behind.

`python tests/test_export_onnx.py` prints the largest difference per activation."""

import errno
import importlib
import os
import pathlib
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import pycvnn
from pycvnn import cli, export
from pycvnn.activations import names

ELEMENTWISE = names(per_row=False)  # may sit anywhere in a model
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
# float64 graphs take GELU's Erf in float32 (onnxruntime has no double Erf).
GELU_FLOAT64_TOLERANCE = 1e-6
SCALES = (1.0, 1e3, 1e6)  # input magnitudes, the large ones saturating every activation


def run_onnx(path, X):
    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": X})[0]


def difference(got, want):
    """max |got - want| / max(1, |want|): absolute for outputs up to 1, relative beyond."""
    got, want = got.astype(np.float64), want.astype(np.float64)
    return float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))))


def largest_difference(model, path):
    """The largest difference between onnxruntime and model.predict over batches of 1 and 37
    rows and every input magnitude, checking the output's dtype and shape on the way."""
    worst = 0.0
    for rows in (1, 37):
        for seed, scale in enumerate(SCALES):
            X = np.random.default_rng(seed).normal(0.0, scale, (rows, model.in_features))
            X = X.astype(model.dtype)
            got = run_onnx(path, X)
            assert got.dtype == model.dtype
            assert got.shape == (rows, model.out_features)
            worst = max(worst, difference(got, model.predict(X)))
    return worst


def tolerance(model):
    dtype = np.dtype(model.dtype).name
    uses_gelu = any(op.activation == "gelu" for op in model.ops)
    return GELU_FLOAT64_TOLERANCE if dtype == "float64" and uses_gelu else TOLERANCE[dtype]


def assert_exports_exactly(model, path, opset=17):
    assert export.to_onnx(model, path, opset) == path
    assert largest_difference(model, path) <= tolerance(model)


# ---- onnxruntime gives model.predict's output ---------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ELEMENTWISE)
def test_every_hidden_activation(tmp_path, activation, dtype):
    model = pycvnn.MLP([6, 9, 8, 4], activation=activation, seed=1, dtype=dtype)
    assert_exports_exactly(model, tmp_path / "m.onnx")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("outputs", [1, 4])
@pytest.mark.parametrize("output", [None, *names()])
def test_every_output_kind(tmp_path, output, outputs, dtype):
    model = pycvnn.MLP([6, 9, outputs], activation="tanh", output=output, seed=2, dtype=dtype)
    assert_exports_exactly(model, tmp_path / "m.onnx")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_standalone_activation_layers(tmp_path, dtype):
    layers = [
        pycvnn.Dense(5, 8, activation="relu"),
        pycvnn.Sigmoid(),
        pycvnn.Tanh(),
        pycvnn.LeakyReLU(0.3),
        pycvnn.GELU(),
        pycvnn.Softplus(),
        pycvnn.ReLU(),
        pycvnn.Dense(8, 8),
        pycvnn.LeakyReLU(2.5),  # fused into the Dense before it, with its own slope
        pycvnn.Dense(8, 3, activation="sigmoid"),
        pycvnn.Softmax(),
    ]
    model = pycvnn.Sequential(layers, seed=3, dtype=dtype)
    standalone = [op.activation for op in model.ops if op.kind == "act"]
    assert sorted(standalone) == sorted([*ELEMENTWISE, "softmax"])
    assert_exports_exactly(model, tmp_path / "m.onnx")


@pytest.mark.parametrize("slope", [0.0, 0.2, 3.0])
def test_the_leaky_relu_slope_is_the_models(tmp_path, slope):
    model = pycvnn.Sequential([pycvnn.Dense(4, 6), pycvnn.LeakyReLU(slope)], seed=4)
    assert_exports_exactly(model, tmp_path / "m.onnx")


@pytest.mark.parametrize("opset", [export.MIN_OPSET, 17, export.GELU_OPSET, export.MAX_OPSET])
def test_every_supported_opset_gives_the_same_output(tmp_path, opset):
    model = pycvnn.MLP([5, 7, 7, 3], activation="gelu", output="softmax", seed=5)
    assert_exports_exactly(model, tmp_path / "m.onnx", opset)
    ops = {node.op_type for node in onnx.load(tmp_path / "m.onnx").graph.node}
    assert ("Gelu" in ops) == (opset >= export.GELU_OPSET)
    assert ("Erf" in ops) == (opset < export.GELU_OPSET)


def test_a_trained_model_matches_on_real_data(tmp_path):
    X, y = pycvnn.datasets.digits()
    model = pycvnn.MLP([64, 32, 10], activation="gelu", output="softmax", seed=6)
    model.fit(X[:400], y[:400], epochs=3, seed=6, verbose=False)
    path = export.to_onnx(model, tmp_path / "digits.onnx")
    got = run_onnx(path, X)
    assert difference(got, model.predict(X)) <= 1e-5
    assert np.array_equal(got.argmax(axis=1), model.predict_classes(X))


# ---- the graph ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype, element", [("float32", "FLOAT"), ("float64", "DOUBLE")])
def test_the_graph_is_valid_with_a_dynamic_batch(tmp_path, dtype, element):
    model = pycvnn.MLP([6, 5, 3], output="softmax", seed=7, dtype=dtype)
    proto = onnx.load(export.to_onnx(model, str(tmp_path / "m.onnx"), opset=18))
    onnx.checker.check_model(proto, full_check=True)
    assert [i.version for i in proto.opset_import if i.domain in ("", "ai.onnx")] == [18]
    for value, name, features in (
        (proto.graph.input, "input", 6),
        (proto.graph.output, "output", 3),
    ):
        assert [v.name for v in value] == [name]
        tensor = value[0].type.tensor_type
        assert tensor.elem_type == getattr(onnx.TensorProto, element)
        batch, width = tensor.shape.dim
        assert batch.dim_param == "N" and not batch.HasField("dim_value")
        assert width.dim_value == features
    # relu and softmax need no constants: the initializers are the parameters, as the model has them.
    stored = [onnx.numpy_helper.to_array(t) for t in proto.graph.initializer]
    assert sorted((a.shape, a.tobytes()) for a in stored) == sorted(
        (w.shape, w.tobytes()) for w in model.get_weights()
    )


def test_importing_pycvnn_does_not_import_onnx():
    code = (
        "import sys, pycvnn; assert 'onnx' not in sys.modules; "
        "assert pycvnn.export.to_onnx and 'onnx' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- bad input: refused before any work -------------------------------------------------------

BAD_ARGUMENTS = [
    ({"model": None}, TypeError, "model: expected a pycvnn Sequential or MLP, got NoneType"),
    ({"model": pycvnn.Dense(3, 2)}, TypeError, "model: expected a pycvnn Sequential"),
    ({"opset": 12}, ValueError, f"opset: expected an int from 13 to {export.MAX_OPSET}, got 12"),
    ({"opset": export.MAX_OPSET + 1}, ValueError, f"got {export.MAX_OPSET + 1}"),
    ({"opset": 17.0}, TypeError, "opset: expected an int, got 17.0"),
    ({"opset": "17"}, TypeError, "opset: expected an int, got '17'"),
    ({"opset": True}, TypeError, "opset: expected an int, got True"),
    ({"path": None}, TypeError, "path: expected a str or os.PathLike of str, got None"),
    ({"path": 3}, TypeError, "path: expected a str or os.PathLike"),
    ({"path": b"m.onnx"}, TypeError, "path: expected a str or os.PathLike"),
    ({"path": ""}, ValueError, "path: expected a file path, got ''"),
]


@pytest.mark.parametrize("change, error, message", BAD_ARGUMENTS)
def test_bad_arguments_are_refused_before_any_work(tmp_path, monkeypatch, change, error, message):
    monkeypatch.chdir(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("the export went on to write")

    monkeypatch.setattr(export, "write_atomically", refuse)
    arguments = {"model": pycvnn.MLP([3, 2], seed=0), "path": "m.onnx", "opset": 17, **change}
    with pytest.raises(error) as info:
        export.to_onnx(**arguments)
    assert message in str(info.value)
    assert os.listdir(tmp_path) == []


def test_a_model_too_large_for_one_file_is_refused_before_any_work(tmp_path, monkeypatch):
    model = pycvnn.MLP([3, 2], seed=0, dtype="float64")  # 8 parameters, 64 bytes
    monkeypatch.setattr(export, "MAX_BYTES", 63)
    with pytest.raises(
        ValueError, match="model: expected parameters of at most 63 bytes .* got 8 "
    ):
        export.to_onnx(model, tmp_path / "m.onnx")
    assert os.listdir(tmp_path) == []
    monkeypatch.setattr(export, "MAX_BYTES", 64)
    assert_exports_exactly(model, tmp_path / "m.onnx")


@pytest.mark.parametrize(
    "where, error",
    [
        ("missing/m.onnx", FileNotFoundError),
        ("folder", IsADirectoryError),
        ("file/m.onnx", NotADirectoryError),
    ],
)
def test_an_unwritable_path_is_an_oserror_naming_it(tmp_path, where, error):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_bytes(b"not a folder")
    before = sorted(os.listdir(tmp_path))
    path = tmp_path / where
    with pytest.raises(error) as info:
        export.to_onnx(pycvnn.MLP([3, 2], seed=0), path)
    assert info.value.filename == str(path)
    assert sorted(os.listdir(tmp_path)) == before
    assert os.listdir(tmp_path / "folder") == []


def fail_fsync(monkeypatch, code, reason):
    """Every fsync fails, as on a full disk: the data was written but cannot be kept."""

    def fail(fd):
        raise OSError(code, reason)

    monkeypatch.setattr(os, "fsync", fail)


def test_a_failed_write_leaves_the_old_file_and_nothing_else(tmp_path, monkeypatch):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"the old file")
    fail_fsync(monkeypatch, errno.ENOSPC, "No space left on device")
    with pytest.raises(OSError) as info:
        export.to_onnx(pycvnn.MLP([3, 2], seed=0), path)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert os.listdir(tmp_path) == ["m.onnx"]
    assert path.read_bytes() == b"the old file"


@pytest.fixture
def no_onnx(monkeypatch):
    """As if onnx were not installed (pycvnn.export not imported yet)."""
    monkeypatch.delitem(sys.modules, "pycvnn.export")
    monkeypatch.delattr(pycvnn, "export", raising=False)
    monkeypatch.setitem(sys.modules, "onnx", None)


def test_importing_without_onnx_names_the_extra(no_onnx):
    with pytest.raises(ImportError, match=r"pip install 'pycvnn\[onnx\]'"):
        importlib.import_module("pycvnn.export")


# ---- the command line ---------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model.npz"
    pycvnn.MLP([4, 5, 3], output="softmax", seed=8).save(path)
    return path


def test_cli_round_trip(tmp_path, capsys):
    model_path, onnx_path = tmp_path / "model.npz", tmp_path / "model.onnx"
    with pycvnn.using_backend(pycvnn.get_backend()):  # train sets the backend process-wide
        train = ["train", "--quiet", "--epochs", "2", "--hidden", "8", "--backend", "numpy"]
        assert cli.main([*train, "--activation", "softplus", "--save", str(model_path)]) == 0
    capsys.readouterr()
    assert cli.main(["export", str(model_path), "--onnx", str(onnx_path), "--opset", "20"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"wrote {onnx_path} (ONNX opset 20): Sequential(") and err == ""
    model = pycvnn.load(model_path)
    X, _ = pycvnn.datasets.digits()
    got = run_onnx(onnx_path, X)
    assert difference(got, model.predict(X)) <= 1e-5
    assert np.array_equal(got.argmax(axis=1), model.predict_classes(X))


def run_failing(capsys, argv):
    """Exit status and the one error line of a failing `pycvnn export`."""
    try:
        status = cli.main(argv)
    except SystemExit as stop:
        status = stop.code
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return status, lines[0]


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (["--opset", "12"], f"--opset: expected an int from 13 to {export.MAX_OPSET}, got 12"),
        (["--opset", "1e3"], "--opset: expected an ONNX opset number (an int >= 1), got '1e3'"),
        (["--opset", ""], "--opset: expected an ONNX opset number"),
    ],
)
def test_cli_bad_opset_exits_2_before_loading(tmp_path, capsys, monkeypatch, flags, fragment):
    monkeypatch.setattr(pycvnn.model, "load", lambda path: pytest.fail("the model was loaded"))
    out = tmp_path / "m.onnx"
    status, line = run_failing(capsys, ["export", "m.npz", "--onnx", str(out), *flags])
    assert status == 2
    assert line.startswith("pycvnn export: error: argument ") and fragment in line
    assert not out.exists()


def test_cli_unwritable_output_exits_2(tmp_path, capsys, saved):
    out = tmp_path / "missing" / "m.onnx"
    status, line = run_failing(capsys, ["export", str(saved), "--onnx", str(out)])
    assert status == 2
    assert f"argument --onnx: cannot write {str(out)!r}" in line


def test_cli_failed_write_exits_1_naming_the_file(tmp_path, capsys, monkeypatch, saved):
    fail_fsync(monkeypatch, errno.EIO, "Input/output error")
    out = tmp_path / "m.onnx"
    status, line = run_failing(capsys, ["export", str(saved), "--onnx", str(out)])
    assert (status, line) == (1, f"pycvnn export: could not write {out}: Input/output error")
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (lambda data: data[: len(data) // 2], "is not a readable pycvnn model file"),
        (lambda data: b"PK\x03\x04 a foreign file", "is not a readable pycvnn model file"),
        (lambda data: data[:-30] + bytes(30), "not a readable pycvnn model file"),
        (None, "no model file at"),
    ],
)
def test_cli_damaged_or_missing_model_exits_1(tmp_path, capsys, saved, damage, fragment):
    if damage is None:
        saved.unlink()
    else:
        saved.write_bytes(damage(saved.read_bytes()))
    out = tmp_path / "m.onnx"
    status, line = run_failing(capsys, ["export", str(saved), "--onnx", str(out)])
    assert status == 1
    assert line.startswith("pycvnn export: ") and str(saved) in line and fragment in line
    assert not out.exists()


def test_cli_without_onnx_names_the_extra(tmp_path, capsys, no_onnx, saved):
    out = tmp_path / "m.onnx"
    status, line = run_failing(capsys, ["export", str(saved), "--onnx", str(out)])
    assert status == 2
    assert line.startswith("pycvnn export: pycvnn.export needs onnx") and "pycvnn[onnx]" in line
    assert not out.exists()


if __name__ == "__main__":
    import tempfile

    print("max |onnxruntime - predict| / max(1, |predict|), MLP [6, 9, 8, 4], batches 1 and 37,")
    print(f"inputs N(0, s^2) for s in {SCALES}")
    columns = ("hidden f32", "output f32", "hidden f64", "output f64")
    print(f"{'activation':<12} " + " ".join(f"{c:>11}" for c in columns))
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "m.onnx"
        for name in names():
            row = []
            for dtype, hidden, output in (
                ("float32", name, None),
                ("float32", "relu", name),
                ("float64", name, None),
                ("float64", "relu", name),
            ):
                if hidden == "softmax":
                    row.append("-")
                    continue
                model = pycvnn.MLP([6, 9, 8, 4], hidden, output=output, seed=1, dtype=dtype)
                export.to_onnx(model, path)
                row.append(f"{largest_difference(model, path):.1e}")
            print(f"{name:<12} " + " ".join(f"{cell:>11}" for cell in row))
