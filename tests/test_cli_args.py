"""The command line checks every argument before any work: a bad value gets one error line
naming the flag, exit status 2, no traceback, and no data loaded or model
trained. Failures that only training can reveal (divergence, a full disk, no permission) get
one line naming what the user gave, and exit status 1."""

import errno
import os
import subprocess
import sys

import numpy as np
import pytest

import pycvnn
from pycvnn import _atomic as atomic
from pycvnn import cli, walkthrough
from pycvnn.cli import train as train_command
from pycvnn.cli import walkthrough as walkthrough_command
from pycvnn.cli.args import DATASETS, MAX_BATCH, MAX_EPOCHS, MAX_HIDDEN, MAX_ITERATIONS


@pytest.fixture
def no_training(monkeypatch):
    """Any data loading or training fails the test: the checks must stop the command first."""

    def refuse(*args, **kwargs):
        raise AssertionError("the command went on to load data or train")

    monkeypatch.setattr(pycvnn.Sequential, "fit", refuse)
    monkeypatch.setattr(pycvnn.datasets, "digits", refuse)
    monkeypatch.setattr(walkthrough, "linear_regression", refuse)


@pytest.fixture
def keep_backend():
    with pycvnn.using_backend(pycvnn.get_backend()):  # the CLI sets the backend process-wide
        yield


def assert_usage_error(err, command, flag, fragment):
    """Exactly one line: the error naming the flag and the value, and no traceback."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"pycvnn {command}: error: argument {flag}: "), err
    assert lines[0].endswith(f"(see pycvnn {command} --help)"), err
    assert fragment in lines[0], lines[0]


def run_bad(capsys, argv):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    out, err = capsys.readouterr()
    assert info.value.code == 2
    assert out == ""
    return err


# ---- train: every flag's bad values, stopped before any work ------------------------------------

BAD_TRAIN = [
    (["--hidden", "64,abc"], "--hidden", "bad size 'abc'"),
    (["--hidden", "0"], "--hidden", "bad size '0'"),
    (["--hidden", "64,,32"], "--hidden", "bad size ''"),
    (["--hidden", "64,"], "--hidden", "bad size ''"),
    (["--hidden", "-8"], "--hidden", "bad size '-8'"),
    (["--hidden", "2.5"], "--hidden", "bad size '2.5'"),
    (["--hidden", str(10**9)], "--hidden", f"bad size '{10**9}'"),
    (["--hidden", str(MAX_HIDDEN + 1)], "--hidden", "from 1 to 100,000"),
    (["--hidden", "20000,20000"], "--hidden", "parameters on digits; the limit is 100,000,000"),
    (["--lr", "-0.1"], "--lr", "got '-0.1'"),
    (["--lr=-1e-9"], "--lr", "got '-1e-9'"),
    (["--lr", "nan"], "--lr", "finite"),
    (["--lr", "inf"], "--lr", "finite"),
    (["--lr", "1e400"], "--lr", "got '1e400'"),
    (["--lr", "fast"], "--lr", "got 'fast'"),
    (["--seed", "-1"], "--seed", "non-negative int, got '-1'"),
    (["--seed", "1.5"], "--seed", "got '1.5'"),
    (["--epochs", "0"], "--epochs", "from 1 to 100,000, got '0'"),
    (["--epochs", "-3"], "--epochs", "got '-3'"),
    (["--epochs", str(MAX_EPOCHS + 1)], "--epochs", "from 1 to 100,000"),
    (["--epochs", "1e3"], "--epochs", "got '1e3'"),
    (["--batch-size", "-4"], "--batch-size", "got '-4'"),
    (["--batch-size", str(MAX_BATCH + 1)], "--batch-size", "from 1 to 1,000,000 or 'full'"),
    (["--batch-size", "9" * 30], "--batch-size", "9" * 30),
    (["--batch-size", "\u00b2"], "--batch-size", "got '\u00b2'"),  # '²'.isdigit() is True
    (["--plot", "{tmp}/missing/curves.png"], "--plot", "does not exist"),
    (["--plot", "{tmp}/curves.foo"], "--plot", ".png"),
    (["--plot", "{tmp}/curves"], "--plot", "expected a file name ending in one of"),
    (["--plot", "{tmp}"], "--plot", "got the folder"),
    (["--plot", ""], "--plot", "expected a file path"),
    (["--save", "{tmp}/missing/model.npz"], "--save", "does not exist"),
    (["--save", "{tmp}"], "--save", "got the folder"),
    (["--save", ""], "--save", "expected a file path"),
]


@pytest.mark.parametrize("flags,flag,fragment", BAD_TRAIN, ids=[" ".join(c[0]) for c in BAD_TRAIN])
def test_bad_train_values_exit_2_before_training(
    capsys, tmp_path, no_training, flags, flag, fragment
):
    if flag == "--plot" and "{tmp}/curves" in flags[-1]:
        pytest.importorskip("matplotlib", reason="the extension check needs matplotlib")
    argv = ["train", *(f.replace("{tmp}", str(tmp_path)) for f in flags)]
    err = run_bad(capsys, argv)
    assert_usage_error(err, "train", flag, fragment.replace("{tmp}", str(tmp_path)))
    assert os.listdir(tmp_path) == []


def test_path_errors_name_the_path_as_given(capsys, tmp_path, no_training, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = run_bad(capsys, ["train", "--save", "runs/model.npz"])
    assert "'runs/model.npz'" in err and "does not exist" in err


def test_an_unwritable_folder_is_refused_before_training(
    capsys, tmp_path, no_training, monkeypatch
):
    # Root may write anywhere, so the permission answer is simulated.
    monkeypatch.setattr(os, "access", lambda path, mode: os.fspath(path) != str(tmp_path))
    err = run_bad(capsys, ["train", "--save", str(tmp_path / "m.npz")])
    assert_usage_error(err, "train", "--save", "is not writable")


def test_the_model_size_bound_uses_the_real_data_shapes():
    X, y = pycvnn.datasets.digits()
    assert DATASETS["digits"] == (X.shape[1], int(y.max()) + 1)


# ---- values at the bounds are accepted --------------------------------------------------------


@pytest.fixture
def parsed(monkeypatch):
    """main() with the subcommand replaced by one that records its arguments."""
    seen = []
    monkeypatch.setattr(train_command, "cmd_train", seen.append)
    monkeypatch.setattr(walkthrough_command, "cmd_walkthrough", seen.append)

    def parse(*argv):
        assert cli.main(list(argv)) == 0
        return seen[-1]

    return parse


def test_good_values_at_the_bounds_parse(parsed, tmp_path):
    args = parsed(
        "train",
        "--hidden",
        f" {MAX_HIDDEN} ",
        "--epochs",
        str(MAX_EPOCHS),
        "--batch-size",
        str(MAX_BATCH),
        "--lr",
        "0",
        "--seed",
        str(2**70),
        "--save",
        str(tmp_path / "m.npz"),
    )
    assert args.hidden == [MAX_HIDDEN]
    assert (args.epochs, args.batch_size, args.lr, args.seed) == (
        MAX_EPOCHS,
        MAX_BATCH,
        0.0,
        2**70,
    )
    assert parsed("train", "--hidden", "").hidden == []
    assert parsed("train", "--hidden", "16, 8").hidden == [16, 8]
    assert parsed("train", "--batch-size", "full").batch_size == "full"
    assert parsed("train", "--lr", "-0").lr == 0.0
    args = parsed("train")
    assert (args.hidden, args.batch_size, args.lr, args.epochs, args.seed) == (
        [64, 32],
        32,
        0.001,
        30,
        0,
    )
    args = parsed("walkthrough", "--iterations", str(MAX_ITERATIONS), "--lr", "0", "--w0=-3")
    assert (args.iterations, args.lr, args.w0) == (MAX_ITERATIONS, 0.0, -3.0)


def test_plot_extensions_are_matplotlibs(parsed, tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.backend_bases import FigureCanvasBase

    for extension in FigureCanvasBase.get_supported_filetypes():
        assert parsed("train", "--plot", str(tmp_path / f"c.{extension}")).plot.endswith(extension)
    assert parsed("train", "--plot", str(tmp_path / "C.PNG")).plot.endswith("C.PNG")


# ---- walkthrough ------------------------------------------------------------------------------

BAD_WALKTHROUGH = [
    (["--iterations", "-2"], "--iterations", "got '-2'"),
    (["--iterations", "1e8"], "--iterations", "got '1e8'"),
    (["--iterations", str(10**8)], "--iterations", "from 0 to 10,000"),
    (["--iterations", str(MAX_ITERATIONS + 1)], "--iterations", "from 0 to 10,000"),
    (["--iterations", "2.5"], "--iterations", "got '2.5'"),
    (["--lr", "nan"], "--lr", "finite"),
    (["--lr", "-0.1"], "--lr", ">= 0, got '-0.1'"),
    (["--lr", "inf"], "--lr", "finite"),
    (["--w0", "inf"], "--w0", "finite"),
    (["--b0", "nan"], "--b0", "finite"),
    (["--b0", "one"], "--b0", "got 'one'"),
]


@pytest.mark.parametrize(
    "flags,flag,fragment", BAD_WALKTHROUGH, ids=[" ".join(c[0]) for c in BAD_WALKTHROUGH]
)
def test_bad_walkthrough_values_exit_2_before_running(capsys, no_training, flags, flag, fragment):
    assert_usage_error(run_bad(capsys, ["walkthrough", *flags]), "walkthrough", flag, fragment)


def test_walkthrough_with_a_diverging_lr_says_so_without_warnings(capsys, recwarn):
    assert cli.main(["walkthrough", "--lr", "1e300", "--iterations", "4"]) == 0
    out, err = capsys.readouterr()
    assert [line.split()[1:] for line in out.splitlines()[-3:]] == [
        ["-inf", "-inf", "inf"],
        ["nan", "nan", "inf"],
        ["nan", "nan", "nan"],
    ]
    assert err.strip().splitlines() == [
        "pycvnn walkthrough: the values overflow from iteration 1 on: lr = 1e+300 is too large "
        "and gradient descent diverges"
    ]
    assert len(recwarn) == 0


# ---- a real process -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv,flag",
    [
        (["train", "--hidden", "64,abc"], "--hidden"),
        (["walkthrough", "--lr", "nan"], "--lr"),
    ],
)
def test_a_real_process_prints_usage_and_one_error_line(argv, flag):
    result = subprocess.run(
        [sys.executable, "-m", "pycvnn", *argv], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert sum("error:" in line for line in result.stderr.splitlines()) == 1
    assert_usage_error(result.stderr, argv[0], flag, repr(argv[-1]))


# ---- lr 0 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_lr_0_trains_and_leaves_the_weights_as_initialised(
    capsys, tmp_path, keep_backend, schedule
):
    path = tmp_path / "m.npz"
    rc = cli.main(
        [
            "train",
            "--lr",
            "0",
            "--epochs",
            "1",
            "--quiet",
            "--hidden",
            "8",
            "--backend",
            "numpy",
            "--schedule",
            schedule,
            "--save",
            str(path),
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert out.strip().splitlines()[-1].startswith("test accuracy: ")
    fresh = pycvnn.MLP([64, 8, 10], output="softmax", seed=0)
    for a, b in zip(pycvnn.load(path).get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)


# ---- failures only training can reveal --------------------------------------------------------

QUICK = ["train", "--quiet", "--epochs", "2", "--hidden", "8", "--backend", "numpy"]


def test_divergence_is_one_line_naming_the_epoch_and_lr(capsys, keep_backend, recwarn):
    rc = cli.main(["train", "--quiet", "--optimizer", "sgd", "--lr", "1e6", "--backend", "numpy"])
    out, err = capsys.readouterr()
    assert rc == 1
    assert out == ""
    assert "Traceback" not in err
    header, line = err.strip().splitlines()  # the run's description, then the error
    assert header.startswith("pycvnn ")
    assert line == (
        "pycvnn train: training diverged in epoch 1 of 30 (the loss became NaN or "
        "Inf); try a smaller --lr than 1e+06"
    )
    assert len(recwarn) == 0  # no overflow warnings from the numpy backend


def test_divergence_names_the_epoch_it_happened_in(capsys, keep_backend, monkeypatch):
    def fit_that_diverges_in_the_third_epoch(self, *args, callbacks=(), **kwargs):
        for epoch in range(2):
            for cb in callbacks:
                cb.on_epoch_end(epoch, {"loss": 1.0})
        raise pycvnn.TrainingDiverged("training diverged at epoch 2, batch 5: the loss is nan")

    monkeypatch.setattr(pycvnn.Sequential, "fit", fit_that_diverges_in_the_third_epoch)
    assert cli.main([*QUICK, "--epochs", "9", "--lr", "0.5"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "pycvnn train: training diverged in epoch 3 of 9 (the loss became NaN or Inf); try a "
        "smaller --lr than 0.5"
    )


@pytest.mark.parametrize(
    "failure",
    [
        lambda tmp: OSError(errno.ENOSPC, "No space left on device"),
        lambda tmp: PermissionError(
            errno.EACCES, "Permission denied", str(tmp / ".pycvnn-x1y2.tmp")
        ),
    ],
)
def test_a_failed_save_after_training_names_the_users_path(
    capsys, tmp_path, keep_backend, monkeypatch, failure
):
    def broken_temporary(*args, **kwargs):
        raise failure(tmp_path)

    monkeypatch.setattr(atomic, "_via_unnamed_temporary", broken_temporary)
    monkeypatch.setattr(atomic, "_via_named_temporary", broken_temporary)
    path = tmp_path / "model.npz"
    rc = cli.main([*QUICK, "--save", str(path)])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "Traceback" not in err and ".pycvnn-" not in err
    assert err.strip().splitlines()[-1] == (
        f"pycvnn train: could not save the model to {path}: {failure(tmp_path).strerror}"
    )
    assert (
        out.strip().splitlines()[-1].startswith("test accuracy: ")
    )  # the run's result still shows
    assert os.listdir(tmp_path) == []


def test_a_disk_full_during_the_write_names_the_users_path(
    capsys, tmp_path, keep_backend, monkeypatch
):
    def full_disk(f, **arrays):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    path = tmp_path / "model.npz"
    assert cli.main([*QUICK, "--save", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        f"pycvnn train: could not save the model to {path}: No space left on device"
    )
    assert os.listdir(tmp_path) == []  # the temporary file is gone too


def test_a_failed_plot_after_training_names_the_users_path(
    capsys, tmp_path, keep_backend, monkeypatch
):
    pytest.importorskip("matplotlib")
    import matplotlib.figure

    def denied(self, fname, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(fname))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", denied)
    path = tmp_path / "curves.png"
    model = tmp_path / "m.npz"
    rc = cli.main([*QUICK, "--plot", str(path), "--save", str(model)])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"pycvnn train: could not write the curves to {path}: Permission denied"
    )
    assert f"saved model to {model}" in out  # the model is still saved
