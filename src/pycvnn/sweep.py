"""Hyper-parameter sweeps: plan trials from a TOML spec, run them on a Dask client or in this
process, and collect their results.

A spec names an estimator ("classifier" or "regressor", pycvnn.sklearn's MLPs), a data set (the
forms of `pycvnn train --data`), a grid or random search over the estimator's parameters and
the cross-validation. Every trial is seeded from (spec seed, trial index) and every trial sees
the same folds, so a trial's scores do not depend on which worker ran it or when.
"""

from __future__ import annotations

import importlib
import json
import math
import numbers
import os
import sys
import warnings
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    NoReturn,
    Optional,
    Sequence,
    Tuple,
    Union,
    overload,
)

import numpy as np

from ._types import Array, FloatArray, IntArray, PathLike

if TYPE_CHECKING:
    from distributed import Client

    from .cli.args import DataSpec
    from .sklearn import MLPClassifier, MLPRegressor

    Estimator = Union[MLPClassifier, MLPRegressor]

ESTIMATORS = ("classifier", "regressor")
SEARCHES = ("grid", "random")
SPEC_KEYS = (
    "estimator",
    "data",
    "search",
    "n_trials",
    "cv",
    "seed",
    "scoring",
    "max_rows",
    "fixed",
    "grid",
)
DISTRIBUTION_KEYS = ("low", "high", "log")
# The sweep owns the seeds: a trial's random_state is derived from the spec's seed.
RESERVED_PARAMS = ("random_state", "warm_start", "verbose")
MAX_TRIALS = 100_000

# A grid entry: a tuple of values, or for random search a {low, high, log} distribution.
SearchSpace = Union[Tuple[Any, ...], Dict[str, Any]]
# How the spec checks report a problem: the key and the message (it raises SpecError).
Fail = Callable[[str, str], NoReturn]


class SpecError(ValueError):
    """A spec that cannot run; the message names the file and the key."""


@dataclass(frozen=True)
class Spec:
    path: str
    estimator: str
    data: DataSpec
    search: str
    cv: int
    seed: int
    fixed: dict[str, Any]
    grid: dict[str, SearchSpace]
    n_trials: Optional[int] = None
    scoring: Optional[str] = None
    max_rows: Optional[int] = None


@dataclass(frozen=True)
class Trial:
    index: int
    seed: int
    params: dict[str, Any]  # the swept parameters; fixed ones and the seed are added by estimator()


@dataclass
class Result:
    index: int
    seed: int
    params: dict[str, Any]
    mean_score: float
    std_score: float
    scores: list[float]
    fit_seconds: float
    worker: str
    error: Optional[str] = None


@dataclass(frozen=True)
class Dataset:
    """The rows every trial cross-validates on and the folds (index arrays) they all share."""

    X: FloatArray
    y: Array  # class ids for a classifier, one-hot float rows for a regressor
    folds: tuple[tuple[IntArray, IntArray], ...] = field(repr=False)


# ---- the spec ---------------------------------------------------------------------------------


def _toml() -> ModuleType:
    # By name, so that type checking as Python 3.10 does not need tomli installed.
    return importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")


def _tuples(value: Any) -> Any:
    """TOML arrays as tuples (hidden_layer_sizes = [64, 32] means (64, 32))."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def estimator_class(kind: str) -> type[MLPClassifier] | type[MLPRegressor]:
    from .sklearn import MLPClassifier, MLPRegressor

    if kind == "classifier":
        return MLPClassifier
    return MLPRegressor


def load_spec(path: PathLike) -> Spec:
    """Read and check the spec at `path`; SpecError naming the file and key on any problem."""
    path = os.fspath(path)
    toml = _toml()
    try:
        with open(path, "rb") as f:
            raw = toml.load(f)
    except OSError as err:
        raise SpecError(f"{path}: cannot read the spec: {err.strerror or err}") from None
    except toml.TOMLDecodeError as err:
        raise SpecError(f"{path}: not valid TOML: {err}") from None
    return check_spec(raw, path)


def check_spec(raw: dict[str, Any], path: str = "<spec>") -> Spec:
    """A Spec from the parsed TOML `raw`, every key and parameter value checked."""

    def fail(key: str, message: str) -> NoReturn:
        raise SpecError(f"{path}: {key}: {message}")

    @overload
    def integer(key: str, low: int, default: int) -> int: ...

    @overload
    def integer(key: str, low: int, default: None = None) -> Optional[int]: ...

    def integer(key: str, low: int, default: Optional[int] = None) -> Optional[int]:
        value: object = raw.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            fail(key, f"expected an int >= {low}, got {value!r}")
        return value

    def choice(key: str, options: Sequence[str], default: Optional[str] = None) -> str:
        value: object = raw.get(key, default)
        if not isinstance(value, str) or value not in options:
            fail(key, f"expected one of {', '.join(map(repr, options))}, got {value!r}")
        return value

    unknown = sorted(set(raw) - set(SPEC_KEYS))
    if unknown:
        fail(unknown[0], f"unknown key (expected some of {', '.join(SPEC_KEYS)})")
    for key in ("estimator", "data", "grid"):
        if key not in raw:
            fail(key, "missing (a required key)")
    kind = choice("estimator", ESTIMATORS)
    search = choice("search", SEARCHES, "grid")
    data = raw["data"]
    if not isinstance(data, str):
        fail("data", f"expected a string (digits, idx:DIR or folder:DIR), got {data!r}")
    data = _data_spec(data, path, fail)
    n_trials = integer("n_trials", 1)
    if search == "random" and n_trials is None:
        fail("n_trials", "missing (random search needs the number of trials)")
    if search == "grid" and n_trials is not None:
        fail("n_trials", "only for search = 'random' (a grid runs every combination)")
    if n_trials is not None and n_trials > MAX_TRIALS:
        fail("n_trials", f"expected at most {MAX_TRIALS:,}, got {n_trials:,}")
    cv = integer("cv", 2, 5)
    seed = integer("seed", 0, 0)
    max_rows = integer("max_rows", 2)
    scoring = raw.get("scoring")
    if scoring is not None:
        from sklearn.metrics import get_scorer_names

        if scoring not in get_scorer_names():
            fail(
                "scoring", f"expected a scikit-learn scorer name (e.g. 'accuracy'), got {scoring!r}"
            )
    for key in ("fixed", "grid"):
        if not isinstance(raw.get(key, {}), dict):
            fail(key, f"expected a table [{key}], got {raw[key]!r}")
    fixed = {k: _tuples(v) for k, v in raw.get("fixed", {}).items()}
    grid = {k: _tuples(v) if isinstance(v, list) else v for k, v in raw["grid"].items()}
    if not grid:
        fail("grid", "empty (expected at least one parameter to search)")
    cls = estimator_class(kind)
    _check_names(cls, fixed, grid, fail)
    for name, value in fixed.items():
        _check_value(cls, {}, name, value, f"fixed.{name}", fail)
    _check_value(cls, fixed, None, None, "fixed", fail)
    for name, values in grid.items():
        key = f"grid.{name}"
        if isinstance(values, dict):
            if search == "grid":
                fail(key, "a distribution needs search = 'random'; a grid takes a list of values")
            values = _check_distribution(values, key, fail)
        elif not isinstance(values, tuple) or not values:
            fail(key, f"expected a non-empty list of values, got {values!r}")
        for value in values:
            _check_value(cls, fixed, name, value, key, fail)
    spec = Spec(path, kind, data, search, cv, seed, fixed, grid, n_trials, scoring, max_rows)
    count = n_trials if n_trials is not None else math.prod(len(v) for v in grid.values())
    if count > MAX_TRIALS:
        fail("grid", f"{count:,} combinations; the limit is {MAX_TRIALS:,}")
    return spec


def _data_spec(text: str, path: str, fail: Fail) -> DataSpec:
    import argparse

    from .cli.args import data_arg

    try:
        return data_arg(text)
    except argparse.ArgumentTypeError as err:
        fail("data", str(err))


def _check_names(
    cls: type[Estimator], fixed: dict[str, Any], grid: dict[str, SearchSpace], fail: Fail
) -> None:
    known = set(cls().get_params())
    for table, params in (("fixed", fixed), ("grid", grid)):
        for name in params:
            if name in RESERVED_PARAMS:
                fail(f"{table}.{name}", "set by the sweep itself (each trial gets its own seed)")
            if name not in known:
                fail(
                    f"{table}.{name}",
                    f"not a parameter of {cls.__name__} (expected one of {', '.join(sorted(known))})",
                )
    both = sorted(set(fixed) & set(grid))
    if both:
        fail(f"grid.{both[0]}", "also in [fixed]; a parameter is either fixed or searched")


def _check_distribution(dist: dict[str, Any], key: str, fail: Fail) -> tuple[Any, Any]:
    """A {low, high, log} table; returns its two ends for the value checks."""
    unknown = sorted(set(dist) - set(DISTRIBUTION_KEYS))
    if unknown:
        fail(f"{key}.{unknown[0]}", "unknown key (a distribution has low, high and log)")
    for end in ("low", "high"):
        value = dist.get(end)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            fail(f"{key}.{end}", f"expected a number, got {value!r}")
        if not math.isfinite(value):
            fail(f"{key}.{end}", f"expected a finite number, got {value!r}")
    if not isinstance(dist.get("log", False), bool):
        fail(f"{key}.log", f"expected true or false, got {dist['log']!r}")
    if not dist["low"] < dist["high"]:
        fail(key, f"expected low < high, got low = {dist['low']!r}, high = {dist['high']!r}")
    if dist.get("log", False) and dist["low"] <= 0:
        fail(f"{key}.low", f"expected a number > 0 for log = true, got {dist['low']!r}")
    return (dist["low"], dist["high"])


def _check_value(
    cls: type[Estimator],
    fixed: dict[str, Any],
    name: Optional[str],
    value: Any,
    key: str,
    fail: Fail,
) -> None:
    """The estimator's own parameter checks, run on `value` (on `fixed` alone for name None)
    before anything starts."""
    params = fixed if name is None else {**fixed, name: value}
    try:
        cls(**params)._checked_params()
    except (TypeError, ValueError) as err:
        fail(key, str(err) if name is None else f"bad value {value!r}: {err}")


# ---- planning ---------------------------------------------------------------------------------


def trial_seed(seed: int, index: int) -> int:
    """The random_state of trial `index`: a function of (spec seed, index) alone."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint32)[0])


def _draw(rng: np.random.Generator, values: SearchSpace) -> Any:
    if isinstance(values, dict):
        low, high, log = values["low"], values["high"], values.get("log", False)
        integral = isinstance(low, int) and isinstance(high, int)
        if log:
            value = float(np.exp(rng.uniform(np.log(low), np.log(high))))
            return min(max(round(value), low), high) if integral else value
        return int(rng.integers(low, high + 1)) if integral else float(rng.uniform(low, high))
    return values[int(rng.integers(len(values)))]


def plan(spec: Spec) -> list[Trial]:
    """The trials: every grid combination (scikit-learn's ParameterGrid order), or n_trials
    draws, trial i drawn from its own generator seeded with (spec seed, i). Lists are drawn
    uniformly; a {low, high} of two ints gives ints in [low, high], else floats, log-uniform
    with log = true."""
    if spec.search == "grid":
        from sklearn.model_selection import ParameterGrid

        points = list(ParameterGrid({k: list(v) for k, v in spec.grid.items()}))
    else:
        points = []
        assert spec.n_trials is not None  # check_spec requires it for a random search
        for i in range(spec.n_trials):
            rng = np.random.default_rng([spec.seed, i])
            points.append({name: _draw(rng, spec.grid[name]) for name in sorted(spec.grid)})
    return [Trial(i, trial_seed(spec.seed, i), p) for i, p in enumerate(points)]


def estimator(kind: str, fixed: dict[str, Any], trial: Trial) -> Estimator:
    """The unfitted estimator of a trial."""
    return estimator_class(kind)(**fixed, **trial.params, random_state=trial.seed)


# ---- data -------------------------------------------------------------------------------------


def load_dataset(spec: Spec) -> Dataset:
    """The spec's rows (a fixed subset of max_rows of them if set) and the shared folds:
    StratifiedKFold for a classifier, KFold for a regressor, shuffled with the spec's seed.
    A regressor learns the one-hot class targets. Loading is `pycvnn train`'s with its
    defaults (folder:DIR images as 28x28 grayscale); the folds are cut from the training
    rows, so idx t10k files, when present, are not used."""
    from argparse import Namespace

    from sklearn.model_selection import KFold, StratifiedKFold

    from .cli.train import load_data

    args = Namespace(data=spec.data, image_size=(28, 28), rgb=False)
    X, y, _, classes, _ = load_data(args)
    if spec.max_rows is not None and spec.max_rows < len(X):
        rows = np.sort(np.random.default_rng(spec.seed).permutation(len(X))[: spec.max_rows])
        X, y = X[rows], y[rows]
    targets: Array = y
    if spec.estimator == "regressor":
        targets = np.eye(classes, dtype=np.float32)[y]
        splitter = KFold(spec.cv, shuffle=True, random_state=spec.seed)
    else:
        splitter = StratifiedKFold(spec.cv, shuffle=True, random_state=spec.seed)
    folds = tuple(splitter.split(X, targets if spec.estimator == "classifier" else None))
    return Dataset(np.ascontiguousarray(X), targets, folds)


# ---- running ----------------------------------------------------------------------------------


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"local:{os.getpid()}"


def run_trial(
    trial: Trial,
    data: Dataset,
    kind: str,
    fixed: dict[str, Any],
    scoring: Optional[str] = None,
    threads: int = 1,
) -> Result:
    """Cross-validate one trial on `data`'s folds with the core on `threads` threads (the
    count is part of the arithmetic, so every trial uses the same one). An exception from
    the estimator becomes the result's error rather than ending the sweep."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import cross_validate

    from ._backend import get_num_threads, set_num_threads

    before = get_num_threads()
    set_num_threads(threads)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            out = cross_validate(
                estimator(kind, fixed, trial),
                data.X,
                data.y,
                cv=list(data.folds),
                scoring=scoring,
                error_score="raise",
            )
        scores = [float(s) for s in out["test_score"]]
        seconds, error = float(np.sum(out["fit_time"])), None
    except Exception as err:  # a failed trial is a result, not the end of the sweep
        scores, seconds, error = [], 0.0, f"{type(err).__name__}: {err}"
    finally:
        set_num_threads(before)
    mean = float(np.mean(scores)) if scores else math.nan
    std = float(np.std(scores)) if scores else math.nan
    return Result(
        trial.index, trial.seed, trial.params, mean, std, scores, seconds, _worker_name(), error
    )


def _failed(trial: Trial, error: str) -> Result:
    return Result(trial.index, trial.seed, trial.params, math.nan, math.nan, [], 0.0, "", error)


def run(
    spec: Spec,
    trials: Sequence[Trial],
    data: Dataset,
    client: Optional[Client] = None,
    on_result: Optional[Callable[[Result], object]] = None,
) -> list[Result]:
    """The trials' results in index order: on the Dask `client` (data scattered to every
    worker once), or one after the other in this process when client is None. on_result is
    called with each result as it arrives."""
    if client is None:
        results = []
        for trial in trials:
            results.append(run_trial(trial, data, spec.estimator, spec.fixed, spec.scoring))
            if on_result:
                on_result(results[-1])
        return results
    from distributed import as_completed

    [shared] = client.scatter([data], broadcast=True)
    futures = client.map(
        run_trial,
        trials,
        data=shared,
        kind=spec.estimator,
        fixed=spec.fixed,
        scoring=spec.scoring,
        pure=False,
    )
    by_future = dict(zip(futures, trials))
    results = []
    try:
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception as err:  # the worker died under the trial
                result = _failed(by_future[future], f"{type(err).__name__}: {err}")
            results.append(result)
            if on_result:
                on_result(result)
    finally:
        client.cancel(futures)
    return sorted(results, key=lambda r: r.index)


def best(results: Sequence[Result]) -> Optional[Result]:
    """The finished result with the highest mean score (the lowest index among equals)."""
    done = [r for r in results if r.error is None and math.isfinite(r.mean_score)]
    return max(done, key=lambda r: (r.mean_score, -r.index)) if done else None


def refit(spec: Spec, result: Result, data: Dataset) -> Estimator:
    """The best trial's estimator trained on all the rows."""
    from sklearn.exceptions import ConvergenceWarning

    trial = Trial(result.index, result.seed, result.params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator(spec.estimator, spec.fixed, trial).fit(data.X, data.y)


# ---- results ----------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def rows(results: Sequence[Result]) -> list[dict[str, Any]]:
    """One dict per result, values JSON-ready (tuples as lists)."""
    out = []
    for r in results:
        row = asdict(r)
        row["params"] = {k: _jsonable(v) for k, v in r.params.items()}
        out.append(row)
    return out


def to_csv(results: Sequence[Result]) -> str:
    """CSV text: one line per trial, a param_<name> column per swept parameter (JSON values)."""
    import csv
    import io

    names = sorted({k for r in results for k in r.params})
    header = ["index", "seed", *[f"param_{n}" for n in names], "mean_score", "std_score"]
    header += ["scores", "fit_seconds", "worker", "error"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for r in results:
        params = [json.dumps(_jsonable(r.params[n])) if n in r.params else "" for n in names]
        writer.writerow(
            [r.index, r.seed, *params, repr(r.mean_score), repr(r.std_score)]
            + [json.dumps(r.scores), f"{r.fit_seconds:.6f}", r.worker, r.error or ""]
        )
    return buffer.getvalue()


def to_json(spec: Spec, results: Sequence[Result]) -> str:
    top = best(results)
    document = {
        "spec": spec.path,
        "estimator": spec.estimator,
        "data": str(spec.data),
        "search": spec.search,
        "cv": spec.cv,
        "seed": spec.seed,
        "scoring": spec.scoring,
        "fixed": {k: _jsonable(v) for k, v in spec.fixed.items()},
        "best_index": None if top is None else top.index,
        "trials": rows(results),
    }
    # NaN (a failed trial's score) is not JSON: it is written as null.
    return json.dumps(_nan_to_none(document), indent=2) + "\n"


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


def write_results(spec: Spec, results: Sequence[Result], path: str) -> None:
    """Write the results to `path` atomically, as CSV or JSON by its suffix."""
    from ._atomic import write_atomically

    suffix = os.path.splitext(path)[1].lower()
    text = to_json(spec, results) if suffix == ".json" else to_csv(results)
    write_atomically(path, lambda f: f.write(text.encode("utf-8")))


def table(results: Sequence[Result], top: int = 5) -> str:
    """The `top` best trials, best first, as printable lines."""
    ranked = sorted(
        (r for r in results if r.error is None),
        key=lambda r: (-r.mean_score, r.index),
    )[:top]
    lines = [f"{'trial':>5}  {'mean':>8}  {'std':>7}  {'fit s':>7}  params"]
    for r in ranked:
        params = ", ".join(f"{k}={v!r}" for k, v in sorted(r.params.items()))
        lines.append(
            f"{r.index:>5}  {r.mean_score:8.4f}  {r.std_score:7.4f}  {r.fit_seconds:7.2f}  {params}"
        )
    return "\n".join(lines)
