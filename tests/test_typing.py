"""pycvnn's annotations as a user's type checker sees them: mypy accepts code that uses the
public API as documented, reports the argument in code that misuses it, and infers the
documented return types. One mypy run checks every snippet (a fresh cache in a temporary
folder), so these tests take seconds."""

import importlib.resources
import os
import pathlib
import re
import site
import subprocess
import sys
import textwrap

import pytest

import pycvnn

# name -> code a user might write; each "# E: text" comment is an error mypy must report on
# that line, each "# R: text" a text the revealed type on that line must contain.
SNIPPETS = {
    "good_train": """
        import numpy as np
        import pycvnn
        from pycvnn import optim, schedules

        X, y = pycvnn.datasets.digits()
        model = pycvnn.MLP([64, 32, 10], activation="relu", output="softmax", seed=0)
        history = model.fit(
            X, y, optimizer=optim.Adam(lr=0.01), epochs=2, batch_size=64,
            schedule=schedules.StepDecay(0.01, step_size=1), verbose=False,
        )
        reveal_type(history)  # R: pycvnn.training.History
        reveal_type(history["loss"])  # R: list[Any]
        reveal_type(model.predict(X))  # R: numpy.ndarray
        reveal_type(model.evaluate(X, y))  # R: dict[str, float]
        reveal_type(pycvnn.load)  # R: def (path:
        reveal_type(pycvnn.get_backend())  # R: str
        with pycvnn.using_backend("numpy"):
            model.predict_classes(X[:5])
        seq = pycvnn.Sequential([pycvnn.Dense(64, 10), pycvnn.Softmax()], seed=1)
        seq.set_weights(seq.get_weights())
        """,
    "good_parts": """
        import numpy as np
        import pycvnn
        from pycvnn import datasets, losses, metrics
        from pycvnn.sklearn import MLPClassifier

        X, y = datasets.make_circles(100, seed=0)
        pred, target = np.zeros((4, 3)), np.ones((4, 3))
        reveal_type(losses.mse(pred, target))  # R: "float"
        reveal_type(losses.mse(pred, target, reduction="none"))  # R: numpy.ndarray
        reveal_type(pycvnn.load("m.npz"))  # R: pycvnn.model.Sequential
        reveal_type(pycvnn.load("m.npz", with_optimizer=True))  # R: tuple[pycvnn.model.Sequential
        reveal_type(MLPClassifier().fit(X, y))  # R: pycvnn.sklearn._estimators.MLPClassifier
        reveal_type(metrics.confusion_matrix([0, 1], [1, 1]))  # R: numpy.ndarray
        """,
    "good_plot": """
        import pycvnn.plot

        reveal_type(pycvnn.plot.losses())  # R: matplotlib.figure.Figure
        reveal_type(pycvnn.plot.optimizer_paths("rosenbrock"))  # R: matplotlib.figure.Figure
        """,
    "bad_reduction": """
        import numpy as np
        from pycvnn import losses

        losses.mse(np.zeros(3), np.zeros(3), reduction="average")  # E: No overload variant of "__call__" of "Value" matches
        """,
    "bad_leaky_alpha": """
        import numpy as np
        from pycvnn import activations

        activations.sigmoid(np.zeros(3), alpha=0.1)  # E: Unexpected keyword argument "alpha"
        """,
    "bad_epochs": """
        import pycvnn

        X, y = pycvnn.datasets.digits()
        model = pycvnn.MLP([64, 10])
        model.fit(X, y, epochs="10")  # E: Argument "epochs" has incompatible type "str"; expected "int"
        """,
    "bad_seed": """
        import pycvnn

        pycvnn.MLP([64, 10], seed="0")  # E: Argument "seed" to "MLP" has incompatible type "str"; expected "int | None"
        """,
    "bad_backend": """
        import pycvnn

        pycvnn.set_backend(1)  # E: Argument 1 to "set_backend" has incompatible type "int"; expected "str"
        """,
    "bad_result": """
        import pycvnn

        X, _ = pycvnn.datasets.digits()
        accuracy: str = pycvnn.MLP([64, 10]).predict(X)  # E: Incompatible types in assignment
        """,
    "bad_lr": """
        from pycvnn import optim

        optim.SGD(lr="fast")  # E: Argument "lr" to "GD" has incompatible type "str"; expected "float"
        """,
}

LINE = re.compile(r"^(?:.*[/\\])?(\w+)\.py:(\d+): (error|note): (.*)$")


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory):
    """{(snippet, line): [(kind, message)]} from one mypy run over every snippet."""
    root = tmp_path_factory.mktemp("typing")
    files = []
    for name, code in SNIPPETS.items():
        path = root / f"{name}.py"
        path.write_text(textwrap.dedent(code))
        files.append(str(path))
    config = root / "mypy.ini"
    # pycvnn's own modules are checked by the project's mypy run: here only the snippets count.
    config.write_text(
        "[mypy]\nstrict = True\nhide_error_codes = True\n"
        "[mypy-pycvnn,pycvnn.*]\nfollow_imports = silent\n"
    )
    # An editable install is found through an import hook that mypy does not follow, so its
    # source folder goes on MYPYPATH; an installed one mypy finds itself (and refuses
    # site-packages on MYPYPATH).
    package_parent = pathlib.Path(pycvnn.__file__).resolve().parent.parent
    installed = {pathlib.Path(p).resolve() for p in site.getsitepackages()}
    env = dict(os.environ)
    if package_parent not in installed:
        env["MYPYPATH"] = str(package_parent)
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config)]
        + ["--cache-dir", str(root / "cache"), "--no-color-output", "--no-error-summary", *files],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
    )
    # 1: the misuses were found; 2 would be a crash or a usage error, and anything on stderr
    # (such as a refused MYPYPATH) means the snippets were not checked.
    assert run.returncode == 1 and not run.stderr.strip(), run.stdout + run.stderr
    found = {}
    for line in run.stdout.splitlines():
        m = LINE.match(line)
        assert m, f"unexpected mypy output: {line}"
        found.setdefault((m[1], int(m[2])), []).append((m[3], m[4]))
    return found


def expectations(name):
    """[(line, "E" or "R", text)] from a snippet's comments."""
    lines = textwrap.dedent(SNIPPETS[name]).splitlines()
    out = []
    for number, line in enumerate(lines, start=1):
        m = re.search(r"# ([ER]): (.*)$", line)
        if m:
            out.append((number, m[1], m[2]))
    return out


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_mypy_reports_exactly_the_expected(mypy_output, name):
    expected = expectations(name)
    assert expected, "a snippet without expectations checks nothing"
    got = {line: msgs for (snippet, line), msgs in mypy_output.items() if snippet == name}
    for line, kind, text in expected:
        msgs = got.pop(line, [])
        wanted = "error" if kind == "E" else "note"
        hits = [m for k, m in msgs if k == wanted and text in m]
        assert hits, f"{name}.py:{line}: expected a {wanted} with {text!r}, got {msgs}"
    assert not got, f"{name}.py: unexpected mypy messages {got}"


def test_py_typed_ships_with_the_package():
    marker = importlib.resources.files("pycvnn").joinpath("py.typed")
    assert marker.is_file()
    assert marker.read_text() == ""
