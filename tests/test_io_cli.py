"""Model files and the command line:
exact round trips, atomic writes, clear errors for missing/foreign/truncated/newer files;
`pycvnn train` reaching >= 96% held-out accuracy on the digits, --save, --plot without
matplotlib, --batch-size full, `pycvnn walkthrough`, and --help on each subcommand."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from nethelpers import BACKENDS, backend_fixture

import pycvnn
from pycvnn import cli, walkthrough
from pycvnn import io as pio

backend = pytest.fixture(params=BACKENDS)(backend_fixture)


def trained_model(dtype="float32"):
    layers = [
        pycvnn.Dense(4, 6),
        pycvnn.LeakyReLU(0.2),
        pycvnn.Dense(6, 5, "tanh"),
        pycvnn.Dense(5, 4, "leaky_relu", init="xavier"),
        pycvnn.Sigmoid(),
        pycvnn.Dense(4, 3, init="normal"),
        pycvnn.Softmax(),
    ]
    m = pycvnn.Sequential(layers, seed=4, dtype=dtype)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 4)), rng.integers(0, 3, 30)
    m.fit(X, y, epochs=2, batch_size=8, seed=0, verbose=False)  # weights away from their init
    return m, X


# ---- round trip ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_round_trips_exactly(backend, tmp_path, dtype):
    m, X = trained_model(dtype)
    path = tmp_path / "model.npz"
    m.save(path)
    loaded = pycvnn.load(path)
    assert isinstance(loaded, pycvnn.Sequential)
    assert loaded.dtype == m.dtype
    for a, b in zip(loaded.get_weights(), m.get_weights()):
        assert a.dtype == b.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a, b)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in m.layers]
    assert repr(loaded) == repr(m)
    assert loaded.layers[1].alpha == 0.2
    np.testing.assert_array_equal(loaded.predict(X), m.predict(X))
    np.testing.assert_array_equal(loaded.predict_classes(X), m.predict_classes(X))


def test_load_accepts_str_paths_and_any_file_name(tmp_path):
    m, X = trained_model()
    path = str(tmp_path / "weights.pycvnn")  # not .npz: the name is kept as given
    pycvnn.io.save(m, path)
    assert os.listdir(tmp_path) == ["weights.pycvnn"]
    np.testing.assert_array_equal(pycvnn.load(path).predict(X), m.predict(X))


def test_a_loaded_model_trains_on(tmp_path):
    m, X = trained_model("float64")
    m.save(tmp_path / "m.npz")
    loaded = pycvnn.load(tmp_path / "m.npz")
    y = np.zeros(len(X), int)
    before = loaded.evaluate(X, y)["loss"]
    loaded.fit(X, y, epochs=3, verbose=False)
    assert loaded.evaluate(X, y)["loss"] < before


def test_file_holds_a_json_header_and_loads_without_pickle(tmp_path):
    m, _ = trained_model()
    m.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        header = json.loads(str(data["header"]))
        params = data["params"]
    assert header["format"] == "pycvnn-model" and isinstance(header["version"], int)
    assert header["dtype"] == "float32"
    assert len(header["layers"]) == 7
    assert params.size == m.n_params


# ---- atomic writes ------------------------------------------------------------------------------


def test_save_replaces_an_existing_file_and_leaves_no_temporary(tmp_path):
    a, X = trained_model()
    b = pycvnn.MLP([4, 3], output="softmax", seed=9)
    path = tmp_path / "m.npz"
    a.save(path)
    b.save(path)
    assert os.listdir(tmp_path) == ["m.npz"]
    np.testing.assert_array_equal(pycvnn.load(path).predict(X), b.predict(X))


def test_a_failed_save_keeps_the_old_file_and_removes_its_temporary(tmp_path, monkeypatch):
    a, X = trained_model()
    path = tmp_path / "m.npz"
    a.save(path)

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        pycvnn.MLP([4, 3], seed=1).save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["m.npz"]
    np.testing.assert_array_equal(pycvnn.load(path).predict(X), a.predict(X))


# ---- bad files ----------------------------------------------------------------------------------


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.npz"):
        pycvnn.load(tmp_path / "nothere.npz")


def test_foreign_npz_is_a_value_error_saying_so(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, a=np.arange(3), b=np.ones(2))
    with pytest.raises(ValueError, match=r"foreign\.npz.*not a pycvnn model"):
        pycvnn.load(path)


def saved_bytes(tmp_path):
    m, _ = trained_model()
    m.save(tmp_path / "good.npz")
    return (tmp_path / "good.npz").read_bytes()


@pytest.mark.parametrize("keep", [0.9, 0.5, 0.1, 30, 3])
def test_truncated_file_is_a_value_error_saying_so(tmp_path, keep):
    data = saved_bytes(tmp_path)
    n = int(len(data) * keep) if isinstance(keep, float) else keep
    path = tmp_path / "cut.npz"
    path.write_bytes(data[:n])
    with pytest.raises(ValueError, match=r"cut\.npz.*truncated"):
        pycvnn.load(path)


def test_random_bytes_are_a_value_error_saying_so(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=r"noise\.npz.*not .*pycvnn model"):
        pycvnn.load(path)


def test_empty_file_is_a_value_error(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.npz"):
        pycvnn.load(path)


def test_plain_npy_file_is_a_value_error(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.arange(5))
    with pytest.raises(ValueError, match=r"array\.npy.*not"):
        pycvnn.load(path)


ZEROS_15 = np.zeros(15, np.float32)


def write_model_file(path, header, params=ZEROS_15):
    with open(path, "wb") as f:
        np.savez(
            f,
            header=np.array(header if isinstance(header, str) else json.dumps(header)),
            params=params,
        )


GOOD_HEADER = {
    "format": "pycvnn-model",
    "version": 1,
    "dtype": "float32",
    "layers": [{"type": "Dense", "in": 4, "out": 3, "activation": None, "init": "he"}],
}


def test_hand_written_file_with_the_documented_header_loads(tmp_path):
    path = tmp_path / "m.npz"
    params = np.arange(15, dtype=np.float32)
    write_model_file(path, GOOD_HEADER, params)
    m = pycvnn.load(path)
    np.testing.assert_array_equal(m.get_weights()[0], params[:12].reshape(3, 4))
    np.testing.assert_array_equal(m.get_weights()[1], params[12:])


def test_newer_format_version_is_a_value_error_saying_so(tmp_path):
    path = tmp_path / "future.npz"
    write_model_file(path, dict(GOOD_HEADER, version=pio.VERSION + 1))
    with pytest.raises(ValueError, match=rf"future\.npz.*newer.*version {pio.VERSION + 1}"):
        pycvnn.load(path)


@pytest.mark.parametrize(
    "header,pattern",
    [
        ("{not json", r"header"),
        (dict(GOOD_HEADER, format="keras"), r"not a pycvnn model"),
        (["a", "list"], r"not a pycvnn model"),
        (dict(GOOD_HEADER, version="2"), r"version"),
        (dict(GOOD_HEADER, layers=[{"type": "Conv2D"}]), r"layer"),
        (dict(GOOD_HEADER, layers="Dense"), r"layer"),
        (dict(GOOD_HEADER, dtype="int8"), r"dtype|layer"),
        ({k: v for k, v in GOOD_HEADER.items() if k != "layers"}, r"layer"),
    ],
)
def test_bad_headers_are_value_errors_naming_the_file(tmp_path, header, pattern):
    path = tmp_path / "bad.npz"
    write_model_file(path, header)
    with pytest.raises(ValueError, match=r"bad\.npz") as info:
        pycvnn.load(path)
    assert re.search(pattern, str(info.value)), str(info.value)


def test_parameter_count_mismatch_is_a_value_error(tmp_path):
    path = tmp_path / "short.npz"
    write_model_file(path, GOOD_HEADER, np.zeros(14, np.float32))
    with pytest.raises(ValueError, match=r"short\.npz.*14"):
        pycvnn.load(path)


def test_non_numeric_parameters_are_a_value_error(tmp_path):
    path = tmp_path / "strings.npz"
    write_model_file(path, GOOD_HEADER, np.array(["x"] * 15))
    with pytest.raises(ValueError, match=r"strings\.npz.*dtype"):
        pycvnn.load(path)


def test_pickled_content_is_refused_not_run(tmp_path):
    path = tmp_path / "pickled.npz"
    with open(path, "wb") as f:
        np.savez(f, header=np.array([GOOD_HEADER], dtype=object), params=np.zeros(15))
    with pytest.raises(ValueError, match=r"pickled\.npz"):
        pycvnn.load(path)


# ---- CLI: train ---------------------------------------------------------------------------------

ACCURACY_LINE = re.compile(r"test accuracy: (\d\.\d{4})")


def run_cli(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def run_train(capsys, *flags, epochs=2, backend="numpy", quiet=True):
    """run_cli's train with these flags; the backend the CLI sets process-wide is restored."""
    argv = ["train", *(["--quiet"] if quiet else []), "--epochs", str(epochs)]
    with pycvnn.using_backend(pycvnn.get_backend()):
        return run_cli(capsys, *argv, "--backend", backend, *flags)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_train_defaults_reach_96_percent(capsys, backend_name):
    rc, out, err = run_train(capsys, epochs=30, backend=backend_name)
    assert rc == 0
    last = out.strip().splitlines()[-1]
    match = ACCURACY_LINE.fullmatch(last)
    assert match, last
    assert 0.96 <= float(match.group(1)) <= 1.0, last
    assert last.startswith("test accuracy: 0.9") or last == "test accuracy: 1.0000"
    assert "epoch " not in err  # --quiet: no progress bar


def test_train_shows_a_progress_bar_by_default(capsys):
    rc, out, err = run_train(capsys, quiet=False)
    assert rc == 0
    assert "epoch 1/2" in err and "epoch 2/2" in err
    assert ACCURACY_LINE.fullmatch(out.strip().splitlines()[-1])


def test_train_batch_size_full_and_save(capsys, tmp_path):
    path = tmp_path / "digits.npz"
    rc, out, err = run_train(
        capsys, "--batch-size", "full", "--save", str(path), "--hidden", "16", epochs=3
    )
    assert rc == 0
    assert "batch full" in err
    assert f"saved model to {path}" in out
    accuracy = float(ACCURACY_LINE.fullmatch(out.strip().splitlines()[-1]).group(1))
    model = pycvnn.load(path)
    assert [w.shape for w in model.get_weights()] == [(16, 64), (16,), (10, 16), (10,)]
    X, y = pycvnn.datasets.digits()
    _, test = pycvnn.datasets.split(len(X))
    assert float(np.mean(model.predict_classes(X[test]) == y[test])) == pytest.approx(
        accuracy, abs=1e-4
    )


@pytest.mark.parametrize(
    "flags",
    [
        ["--loss", "l2"],
        ["--loss", "hinge", "--optimizer", "momentum", "--lr", "0.05"],
        ["--schedule", "plateau"],
        ["--schedule", "warmup"],
        ["--schedule", "cosine"],
        ["--schedule", "step"],
        ["--schedule", "exponential"],
        ["--activation", "tanh", "--optimizer", "rmsprop"],
        ["--optimizer", "adamw", "--batch-size", "1"],
        ["--hidden", "", "--optimizer", "sgd", "--lr", "0.5"],
    ],
)
def test_train_flags_run(capsys, flags):
    rc, out, _ = run_train(capsys, *flags)
    assert rc == 0
    assert ACCURACY_LINE.fullmatch(out.strip().splitlines()[-1])


def test_plot_without_matplotlib_prints_a_clear_message(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    rc, out, err = run_train(capsys, "--plot", str(tmp_path / "curves.png"), epochs=1)
    assert rc != 0
    assert "matplotlib" in err and "pip install" in err
    assert "Traceback" not in err
    assert not (tmp_path / "curves.png").exists()


def test_plot_with_matplotlib_writes_the_png(capsys, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib (the 'plot' extra) is not installed")
    path = tmp_path / "curves.png"
    rc, out, _ = run_train(capsys, "--plot", str(path))
    assert rc == 0 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--batch-size", "0"],
        ["train", "--batch-size", "half"],
        ["train", "--backend", "tpu"],
        ["train", "--loss", "kl"],
        ["train", "--optimizer", "lbfgs"],
        ["train", "--epochs", "many"],
        ["fly"],
        [],
    ],
)
def test_bad_command_lines_exit_with_one_error_line(capsys, argv):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "error:" in err and "--help" in err


# ---- CLI: walkthrough, help, python -m ---------------------------------------------------------


def test_walkthrough_prints_the_lecture_table(capsys):
    rc, out, _ = run_cli(capsys, "walkthrough")
    assert rc == 0
    lines = out.strip().splitlines()
    assert "X = [1, 2, 3], y = [2, 4, 6]" in lines[0]
    assert "lr = 0.1" in lines[1]
    assert lines[2].split() == ["iteration", "w", "b", "loss"]
    rows = walkthrough.linear_regression([1, 2, 3], [2, 4, 6], 0.1)
    assert len(lines) == 3 + len(rows) == 8
    for line, row in zip(lines[3:], rows):
        cells = line.split()
        assert int(cells[0]) == row.iteration
        assert [float(c) for c in cells[1:]] == pytest.approx([row.w, row.b, row.loss], abs=5e-7)
        assert all(re.fullmatch(r"-?\d+\.\d{6}", c) for c in cells[1:])


def test_walkthrough_flags(capsys):
    rc, out, _ = run_cli(
        capsys, "walkthrough", "--lr", "0.05", "--iterations", "3", "--w0", "1", "--b0", "-1"
    )
    assert rc == 0
    lines = out.strip().splitlines()
    rows = walkthrough.linear_regression([1, 2, 3], [2, 4, 6], 0.05, 1.0, -1.0, 3)
    assert len(lines) == 3 + 3
    assert lines[-1].split() == [
        f"{rows[-1].iteration}",
        f"{rows[-1].w:.6f}",
        f"{rows[-1].b:.6f}",
        f"{rows[-1].loss:.6f}",
    ]


@pytest.mark.parametrize(
    "command,flags",
    [
        (
            "train",
            [
                "--dataset",
                "--hidden",
                "--activation",
                "--loss",
                "--optimizer",
                "--lr",
                "--schedule",
                "--epochs",
                "--batch-size",
                "--seed",
                "--backend",
                "--plot",
                "--save",
                "--quiet",
            ],
        ),
        ("walkthrough", ["--lr", "--w0", "--b0", "--iterations"]),
        ("info", []),
    ],
)
def test_help_for_each_subcommand_mentions_its_flags(capsys, command, flags):
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: pycvnn {command}")
    for flag in flags:
        assert flag in out, flag


def test_top_level_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("train", "walkthrough", "info"):
        assert command in out


def test_info(capsys):
    rc, out, _ = run_cli(capsys, "info")
    assert rc == 0
    assert out.startswith(f"pycvnn {pycvnn.__version__}")
    assert "backend:" in out


def test_python_dash_m_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "pycvnn", "walkthrough", "--iterations", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-2].split() == ["0", "1.866667", "0.800000", "18.666667"]
