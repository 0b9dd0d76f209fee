"""pycvnn.sweep and `pycvnn sweep`: spec checks, trial planning, serial and Dask runs giving the
same scores, the CLI's files, and the estimators under joblib's Dask backend."""

import csv
import json
import math

import joblib
import numpy as np
import pytest
from distributed import Client, LocalCluster
from sklearn.model_selection import GridSearchCV, ParameterGrid, StratifiedKFold, cross_val_score

import pycvnn
from pycvnn import cli, sweep
from pycvnn.cli.args import DataSpec
from pycvnn.sklearn import MLPClassifier

QUIET = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

BASE = """
estimator = "classifier"
data = "digits"
cv = 3
seed = 7
max_rows = 240
[fixed]
max_iter = 8
batch_size = 32
"""
GRID = (
    BASE
    + """
[grid]
hidden_layer_sizes = [[16], [24, 12]]
learning_rate_init = [0.001, 0.01]
"""
)
RANDOM = (
    BASE.replace("cv = 3", 'cv = 3\nsearch = "random"\nn_trials = 6')
    + """
[grid]
hidden_layer_sizes = [[16], [24]]
learning_rate_init = {low = 0.0005, high = 0.05, log = true}
alpha = {low = 0.0, high = 0.01}
n_iter_no_change = {low = 2, high = 5}
"""
)


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def spec_file(tmp_path, text, name="spec.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def without_timing(results):
    return [
        (r.index, r.seed, r.params, r.mean_score, r.std_score, r.scores, r.error) for r in results
    ]


# ---- the spec ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, key, words",
    [
        (GRID + "colour = 1\n", "grid.colour", "not a parameter of MLPClassifier"),
        ("bogus = 1\n" + GRID, "bogus", "unknown key"),
        (GRID.replace('estimator = "classifier"', 'estimator = "forest"'), "estimator", "'forest'"),
        (GRID.replace('data = "digits"', ""), "data", "missing"),
        (GRID.replace('data = "digits"', "data = 3"), "data", "expected a string"),
        (GRID.replace('data = "digits"', 'data = "idx:/no/such/dir"'), "data", "does not exist"),
        (BASE + "[grid]\n", "grid", "empty"),
        (BASE, "grid", "missing"),
        (GRID.replace("cv = 3", "cv = 1"), "cv", "expected an int >= 2"),
        (GRID.replace("cv = 3", 'cv = "3"'), "cv", "expected an int >= 2"),
        (GRID.replace("seed = 7", "seed = -1"), "seed", "expected an int >= 0"),
        (GRID.replace("max_rows = 240", "max_rows = 1.5"), "max_rows", "expected an int"),
        (GRID.replace("cv = 3", 'cv = 3\nsearch = "annealing"'), "search", "'annealing'"),
        (GRID.replace("cv = 3", "cv = 3\nn_trials = 4"), "n_trials", "only for search = 'random'"),
        (GRID.replace("cv = 3", 'cv = 3\nsearch = "random"'), "n_trials", "missing"),
        (GRID.replace("cv = 3", 'cv = 3\nscoring = "accuracyy"'), "scoring", "'accuracyy'"),
        (GRID.replace("max_iter = 8", "max_iter = 0"), "fixed.max_iter", "bad value 0"),
        (GRID.replace("max_iter = 8", "random_state = 1"), "fixed.random_state", "seed"),
        (
            GRID.replace("max_iter = 8", 'solver = "sgd"\nmomentum_form = "ema"'),
            "fixed",
            "nesterovs_momentum: expected False",
        ),
        (
            GRID.replace("max_iter = 8", "learning_rate_init = 0.1"),
            "grid.learning_rate_init",
            "also in [fixed]",
        ),
        (
            GRID.replace("[0.001, 0.01]", '[0.001, "fast"]'),
            "grid.learning_rate_init",
            "bad value 'fast'",
        ),
        (GRID.replace("[0.001, 0.01]", "[]"), "grid.learning_rate_init", "non-empty list"),
        (GRID.replace("[0.001, 0.01]", "0.01"), "grid.learning_rate_init", "non-empty list"),
        (
            GRID.replace("[[16], [24, 12]]", "[[16], [0]]"),
            "grid.hidden_layer_sizes",
            "bad value (0,)",
        ),
        (
            GRID.replace("[0.001, 0.01]", "{low = 0.001, high = 0.1}"),
            "grid.learning_rate_init",
            "search = 'random'",
        ),
        (RANDOM.replace("log = true", "log = 1"), "grid.learning_rate_init.log", "true or false"),
        (RANDOM.replace("low = 0.0005", "low = 0.0"), "grid.learning_rate_init.low", "> 0 for log"),
        (RANDOM.replace("high = 0.01}", "high = 0.0}"), "grid.alpha", "low < high"),
        (
            RANDOM.replace("high = 0.01}", "high = 0.01, step = 2}"),
            "grid.alpha.step",
            "unknown key",
        ),
        (RANDOM.replace("low = 0.0,", 'low = "a",'), "grid.alpha.low", "expected a number"),
        (RANDOM.replace("high = 5", "high = 2"), "grid.n_iter_no_change", "low < high"),
        (
            RANDOM.replace("high = 5", "high = 5.0").replace("low = 2", "low = -1"),
            "grid.n_iter_no_change",
            "bad value -1",
        ),
    ],
)
def test_spec_errors_name_the_file_and_key(tmp_path, text, key, words):
    path = spec_file(tmp_path, text)
    with pytest.raises(sweep.SpecError) as info:
        sweep.load_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert words in message


def test_spec_file_errors(tmp_path):
    with pytest.raises(sweep.SpecError, match="cannot read the spec: No such file"):
        sweep.load_spec(tmp_path / "missing.toml")
    with pytest.raises(sweep.SpecError, match=r"bad\.toml: not valid TOML"):
        sweep.load_spec(spec_file(tmp_path, "data = [1\n", "bad.toml"))


def test_spec_values(tmp_path):
    spec = sweep.load_spec(spec_file(tmp_path, GRID))
    assert (spec.estimator, spec.search, spec.cv, spec.seed, spec.max_rows) == (
        "classifier",
        "grid",
        3,
        7,
        240,
    )
    assert spec.data == DataSpec("digits")
    assert spec.fixed == {"max_iter": 8, "batch_size": 32}
    assert spec.grid == {
        "hidden_layer_sizes": ((16,), (24, 12)),
        "learning_rate_init": (0.001, 0.01),
    }


# ---- planning ---------------------------------------------------------------------------------


def test_grid_plan(tmp_path):
    spec = sweep.load_spec(spec_file(tmp_path, GRID))
    trials = sweep.plan(spec)
    assert [t.index for t in trials] == [0, 1, 2, 3]
    expected = list(
        ParameterGrid(
            {"hidden_layer_sizes": [(16,), (24, 12)], "learning_rate_init": [0.001, 0.01]}
        )
    )
    assert [t.params for t in trials] == expected
    assert [t.seed for t in trials] == [sweep.trial_seed(7, i) for i in range(4)]
    assert len({t.seed for t in trials}) == 4
    assert sweep.plan(spec) == trials
    other = sweep.load_spec(spec_file(tmp_path, GRID.replace("seed = 7", "seed = 8")))
    assert [t.params for t in sweep.plan(other)] == expected
    assert not {t.seed for t in sweep.plan(other)} & {t.seed for t in trials}


def test_random_plan(tmp_path):
    spec = sweep.load_spec(spec_file(tmp_path, RANDOM))
    trials = sweep.plan(spec)
    assert len(trials) == 6 and sweep.plan(spec) == trials
    for t in trials:
        assert t.params["hidden_layer_sizes"] in ((16,), (24,))
        assert 0.0005 <= t.params["learning_rate_init"] <= 0.05
        assert 0.0 <= t.params["alpha"] <= 0.01 and isinstance(t.params["alpha"], float)
        assert t.params["n_iter_no_change"] in (2, 3, 4, 5)
        assert isinstance(t.params["n_iter_no_change"], int)
    assert len({t.params["learning_rate_init"] for t in trials}) == 6
    # Trial i's draw depends on (seed, i) only: a longer search starts with the same trials.
    longer = sweep.load_spec(spec_file(tmp_path, RANDOM.replace("n_trials = 6", "n_trials = 9")))
    assert sweep.plan(longer)[:6] == trials
    reseeded = sweep.load_spec(spec_file(tmp_path, RANDOM.replace("seed = 7", "seed = 0")))
    assert [t.params for t in sweep.plan(reseeded)] != [t.params for t in trials]


def test_log_uniform_draws_cover_the_decades(tmp_path):
    text = (
        RANDOM.replace("n_trials = 6", "n_trials = 400")
        .replace("low = 0.0005", "low = 0.0001")
        .replace("high = 0.05", "high = 1.0")
    )
    draws = np.array(
        [
            t.params["learning_rate_init"]
            for t in sweep.plan(sweep.load_spec(spec_file(tmp_path, text)))
        ]
    )
    per_decade = np.histogram(np.log10(draws), bins=[-4, -3, -2, -1, 0])[0]
    assert per_decade.min() > 60  # about 100 each; a uniform draw would put ~360 in the last


# ---- running ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    path = spec_file(tmp_path_factory.mktemp("grid"), GRID)
    spec = sweep.load_spec(path)
    data = sweep.load_dataset(spec)
    return spec, data, sweep.run(spec, sweep.plan(spec), data)


@QUIET
def test_serial_sweep_equals_cross_val_score(grid_run):
    spec, data, results = grid_run
    assert data.X.shape == (240, 64)
    X, y = pycvnn.datasets.digits()
    rows = np.sort(np.random.default_rng(7).permutation(len(X))[:240])
    np.testing.assert_array_equal(data.X, X[rows])
    folds = StratifiedKFold(3, shuffle=True, random_state=7)
    before = pycvnn.get_num_threads()
    pycvnn.set_num_threads(1)
    try:
        for r in results:
            est = MLPClassifier(max_iter=8, batch_size=32, random_state=r.seed, **r.params)
            expected = cross_val_score(est, X[rows], y[rows], cv=folds)
            assert r.scores == expected.tolist()
            assert r.mean_score == float(np.mean(expected))
            assert r.std_score == float(np.std(expected))
            assert r.error is None and r.fit_seconds > 0
    finally:
        pycvnn.set_num_threads(before)
    assert max(r.mean_score for r in results) > 0.5  # the search found something that learns


@QUIET
def test_dask_sweep_equals_serial(tmp_path, client):
    spec = sweep.load_spec(spec_file(tmp_path, RANDOM))
    data = sweep.load_dataset(spec)
    trials = sweep.plan(spec)
    serial = sweep.run(spec, trials, data)
    seen = []
    on_dask = sweep.run(spec, trials, data, client, on_result=seen.append)
    assert without_timing(on_dask) == without_timing(serial)
    assert sorted(r.index for r in seen) == list(range(6))
    assert {r.worker for r in on_dask} <= set(client.scheduler_info()["workers"])
    assert all(r.error is None and len(r.scores) == 3 for r in on_dask)


@QUIET
def test_failed_trial_is_recorded(grid_run, client):
    spec, data, _ = grid_run
    trials = sweep.plan(spec)[:2]
    broken = sweep.Trial(2, 123, {"hidden_layer_sizes": (16,), "learning_rate_init": -1.0})
    for where in (None, client):
        results = sweep.run(spec, [*trials, broken], data, where)
        assert [r.index for r in results] == [0, 1, 2]
        assert results[0].error is None and results[1].error is None
        assert results[2].error.startswith("ValueError: learning_rate_init")
        assert math.isnan(results[2].mean_score) and results[2].scores == []
    assert sweep.best(results).index in (0, 1)


@QUIET
def test_joblib_dask_backend_grid_search_equals_default(client):
    X, y = pycvnn.datasets.digits()
    X, y = X[:200], y[:200]
    grid = {"hidden_layer_sizes": [(16,), (24,)], "alpha": [1e-4, 1e-2]}

    def search():
        est = MLPClassifier(max_iter=5, random_state=0, learning_rate_init=0.01)
        return GridSearchCV(est, grid, cv=3, n_jobs=2).fit(X, y).cv_results_

    # The workers run the core on one thread (Dask sets it so), as the default backend does here.
    before = pycvnn.get_num_threads()
    pycvnn.set_num_threads(1)
    try:
        default = search()
    finally:
        pycvnn.set_num_threads(before)
    with joblib.parallel_backend("dask", client=client):
        on_dask = search()
    assert on_dask["params"] == default["params"]
    for key in ("mean_test_score", "std_test_score", *[f"split{i}_test_score" for i in range(3)]):
        np.testing.assert_array_equal(on_dask[key], default[key])
    assert np.all(default["mean_test_score"] > 0.2)


# ---- the command ------------------------------------------------------------------------------


@QUIET
def test_cli_end_to_end(tmp_path, client, grid_run, capsys):
    spec, data, serial = grid_run
    path = spec_file(tmp_path, GRID)
    out_csv, out_json, model = tmp_path / "r.csv", tmp_path / "r.json", tmp_path / "best.npz"
    address = client.scheduler.address
    assert (
        cli.main(
            ["sweep", path, "--scheduler", address, "--out", str(out_csv), "--best", str(model)]
        )
        == 0
    )
    printed = capsys.readouterr()
    top = sweep.best(serial)
    assert f"best: trial {top.index}, mean {top.mean_score:.4f}" in printed.out
    assert "4 trial(s)" in printed.out and "0 failed" in printed.out
    with open(out_csv, newline="") as f:
        lines = list(csv.DictReader(f))
    assert [int(row["index"]) for row in lines] == [0, 1, 2, 3]
    for row, r in zip(lines, serial):
        assert int(row["seed"]) == r.seed
        assert tuple(json.loads(row["param_hidden_layer_sizes"])) == r.params["hidden_layer_sizes"]
        assert json.loads(row["param_learning_rate_init"]) == r.params["learning_rate_init"]
        assert float(row["mean_score"]) == r.mean_score and json.loads(row["scores"]) == r.scores
        assert row["worker"] in client.scheduler_info()["workers"] and row["error"] == ""

    assert cli.main(["sweep", path, "--serial", "--quiet", "--out", str(out_json)]) == 0
    document = json.loads(out_json.read_text())
    assert document["best_index"] == top.index and document["cv"] == 3
    assert [t["scores"] for t in document["trials"]] == [r.scores for r in serial]
    assert document["trials"][1]["params"]["hidden_layer_sizes"] == list(
        serial[1].params["hidden_layer_sizes"]
    )

    loaded = pycvnn.load(model)
    refit = sweep.refit(spec, top, data)
    accuracy = float(np.mean(loaded.predict_classes(data.X) == data.y))
    assert accuracy == refit.score(data.X, data.y)
    assert accuracy >= top.mean_score - 0.05  # trained on all rows, scored on rows it saw


@pytest.mark.parametrize(
    "args, words",
    [
        (["--workers", "-1"], "argument --workers: expected a number of worker processes"),
        (["--out", "r.txt"], "argument --out: expected a file name ending in .csv or .json"),
        (["--best", "/no/such/dir/m.npz"], "argument --best: cannot write"),
        (
            ["--scheduler", "tcp://127.0.0.1:1", "--serial"],
            "not allowed with --workers or --serial",
        ),
        (
            ["--scheduler", "tcp://127.0.0.1:1", "--timeout", "0.5"],
            "cannot reach 'tcp://127.0.0.1:1' within 0.5 s",
        ),
        (["--timeout", "0"], "argument --timeout: expected a number of seconds > 0"),
    ],
)
def test_cli_bad_arguments(tmp_path, capsys, args, words):
    path = spec_file(tmp_path, GRID)
    with pytest.raises(SystemExit) as info:
        cli.main(["sweep", path, *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err


def test_cli_bad_spec_is_one_line(tmp_path, capsys):
    for name, text, words in [
        ("missing.toml", None, "missing.toml: cannot read the spec"),
        ("empty.toml", BASE + "[grid]\n", "empty.toml: grid: empty"),
    ]:
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(SystemExit) as info:
            cli.main(["sweep", str(path), "--serial"])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, err
