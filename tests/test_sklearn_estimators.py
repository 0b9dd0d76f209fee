"""pycvnn.sklearn's estimators in scikit-learn's tools, continuing exactly, matching
scikit-learn's updates and accuracy, and refusing bad input by name."""

import pickle
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pandas
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import neural_network
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pycvnn import datasets, schedules
from pycvnn.sklearn import MLPClassifier, MLPRegressor

X_DIGITS, Y_DIGITS = datasets.digits()
X, Y = X_DIGITS[:400].astype(np.float64), Y_DIGITS[:400]
QUIET = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def small(cls, **params):
    defaults = {"hidden_layer_sizes": (16,), "max_iter": 20, "learning_rate_init": 0.01}
    return cls(**{**defaults, "random_state": 0, **params})


def regression_target(y):
    """Two continuous outputs from the digit labels."""
    return np.column_stack([y / 9.0, np.cos(y)])


def test_import_pycvnn_does_not_import_sklearn():
    code = "import sys, pycvnn; assert 'sklearn' not in sys.modules, 'sklearn imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@QUIET
def test_pipeline_gridsearch_cross_val_score_and_clone():
    pipe = make_pipeline(StandardScaler(), small(MLPClassifier))
    assert pipe.fit(X, Y).score(X, Y) > 0.9
    grid = GridSearchCV(
        small(MLPClassifier), {"alpha": [1e-4, 1e-1], "hidden_layer_sizes": [(8,), (16,)]}, cv=3
    )
    grid.fit(X, Y)
    assert grid.best_params_["alpha"] in (1e-4, 1e-1) and len(grid.cv_results_["params"]) == 4
    assert grid.predict(X).shape == (400,)
    scores = cross_val_score(small(MLPRegressor, max_iter=100), X, regression_target(Y), cv=3)
    assert scores.shape == (3,) and scores.min() > 0.5
    fitted = small(MLPClassifier, alpha=0.5).fit(X, Y)
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params() and not hasattr(copy, "model_")


@QUIET
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_pickle_and_joblib_round_trip(cls, tmp_path):
    y = Y if cls is MLPClassifier else regression_target(Y)
    est = small(cls).fit(X, y)
    joblib.dump(est, tmp_path / "est.joblib")
    for copy in (pickle.loads(pickle.dumps(est)), joblib.load(tmp_path / "est.joblib")):
        assert_array_equal(copy.predict(X), est.predict(X))
        # the copy continues as the original does, optimizer state and shuffling included
        copy.partial_fit(X, y)
        est2 = pickle.loads(pickle.dumps(est)).partial_fit(X, y)
        assert_array_equal(copy.coefs_[0], est2.coefs_[0])


@QUIET
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_warm_start_and_partial_fit_continue_exactly(cls, solver):
    y = Y if cls is MLPClassifier else regression_target(Y)
    whole = small(cls, solver=solver, max_iter=6, tol=0.0).fit(X, y)
    warm = small(cls, solver=solver, max_iter=2, tol=0.0).fit(X, y)
    warm.set_params(warm_start=True, max_iter=4).fit(X, y)
    extra = {"classes": np.unique(Y)} if cls is MLPClassifier else {}
    parts = small(cls, solver=solver, tol=0.0).partial_fit(X, y, **extra)
    for _ in range(5):
        parts.partial_fit(X, y)
    for est in (warm, parts):
        for a, b in zip(est.coefs_ + est.intercepts_, whole.coefs_ + whole.intercepts_):
            assert_array_equal(a, b)
        assert_allclose(est.loss_curve_, whole.loss_curve_, rtol=0)
    assert warm.t_ == parts.t_ == 6 * len(X) and warm.n_iter_ == 4 and parts.n_iter_ == 1
    # scikit-learn's restart happens when the solver changed: the first warm step differs
    other = small(cls, solver=solver, max_iter=2, tol=0.0).fit(X, y)
    other.set_params(warm_start=True, max_iter=4, beta_1=0.5, momentum=0.5).fit(X, y)
    assert not np.array_equal(other.coefs_[0], whole.coefs_[0])


@QUIET
@pytest.mark.parametrize(
    "cls, target",
    [
        (MLPClassifier, lambda y: y),
        (MLPClassifier, lambda y: y % 2),
        (MLPRegressor, lambda y: y / 9.0),
        (MLPRegressor, regression_target),
    ],
)
@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adaptive"])
def test_sgd_steps_are_scikit_learns(cls, target, learning_rate):
    """From the same weights, full-batch sgd with alpha and each learning_rate rule (and
    momentum with Nesterov for the constant one) takes scikit-learn's steps (weight decay alpha / n, the l2 gradient's
    scale taken out), and loss_curve_ is scikit-learn's, penalty included."""
    y = target(Y)
    params = dict(
        solver="sgd",
        alpha=0.3,
        batch_size=len(X),
        shuffle=False,
        learning_rate_init=0.05,
        learning_rate=learning_rate,
        power_t=0.25,
    )
    ours = small(cls, **params, max_iter=1, momentum=0.0).fit(X, y)
    theirs = getattr(neural_network, cls.__name__)(
        hidden_layer_sizes=(16,), max_iter=1, random_state=0, **params
    ).fit(X, y)
    # the same start: ours' weights, and t_ = 0 (scikit-learn's warm start restarts its
    # optimizer at learning_rate_init, ours continues invscaling from t_)
    theirs.coefs_, theirs.intercepts_ = ours.coefs_, ours.intercepts_
    ours.t_ = theirs.t_ = 0
    # adaptive: a huge tol makes every epoch count as no improvement, so the lr falls by 5
    # each second epoch; the others run all epochs
    adaptive = learning_rate == "adaptive"
    stop = dict(tol=1e9, n_iter_no_change=1) if adaptive else dict(tol=0.0, n_iter_no_change=99)
    # With momentum, a changing lr scales pycvnn's (PyTorch's) whole velocity but only
    # scikit-learn's newest gradient: only a constant lr can match there.
    momentum = 0.9 if learning_rate == "constant" else 0.0
    for est in (ours, theirs):
        est.set_params(warm_start=True, max_iter=8, momentum=momentum, **stop).fit(X, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-9)
    assert ours.n_iter_ == theirs.n_iter_ == 8


@QUIET
def test_cross_validated_digits_accuracy_is_scikit_learns():
    params = dict(hidden_layer_sizes=(32,), max_iter=40, random_state=0)
    cv = KFold(5, shuffle=True, random_state=0)
    ours = cross_val_score(MLPClassifier(**params), X_DIGITS, Y_DIGITS, cv=cv).mean()
    theirs = cross_val_score(
        neural_network.MLPClassifier(**params), X_DIGITS, Y_DIGITS, cv=cv
    ).mean()
    assert theirs > 0.9 and abs(ours - theirs) < 0.03


@QUIET
def test_attributes_follow_scikit_learn():
    est = small(MLPClassifier).fit(X, Y)
    assert [c.shape for c in est.coefs_] == [(64, 16), (16, 10)]
    assert [b.shape for b in est.intercepts_] == [(16,), (10,)]
    assert (est.n_layers_, est.n_outputs_, est.out_activation_) == (3, 10, "softmax")
    assert est.n_features_in_ == 64 and est.n_iter_ == len(est.loss_curve_) == 20
    hidden = np.maximum(X @ est.coefs_[0] + est.intercepts_[0], 0)
    logits = hidden @ est.coefs_[1] + est.intercepts_[1]
    expected = np.exp(logits - logits.max(1, keepdims=True))
    assert_allclose(est.predict_proba(X), expected / expected.sum(1, keepdims=True), rtol=1e-9)
    assert_allclose(np.exp(est.predict_log_proba(X)), est.predict_proba(X), rtol=1e-9)
    assert est.best_loss_ == min(est.loss_curve_) and est.validation_scores_ is None


@QUIET
def test_binary_string_labels_use_one_sigmoid_output():
    labels = np.where(Y >= 5, "high", "low")
    est = small(MLPClassifier).fit(X, labels)
    assert (est.n_outputs_, est.out_activation_) == (1, "logistic")
    assert est.coefs_[-1].shape == (16, 1) and list(est.classes_) == ["high", "low"]
    proba = est.predict_proba(X)
    assert proba.shape == (400, 2) and set(est.predict(X)) <= {"high", "low"}
    assert_array_equal(est.predict(X), est.classes_[proba.argmax(1)])
    assert est.score(X, labels) > 0.9


@QUIET
def test_class_weight_is_sample_weight():
    weights = {c: float(c + 1) for c in range(10)}
    by_class = small(MLPClassifier, class_weight=weights).fit(X, Y)
    by_sample = small(MLPClassifier).fit(X, Y, sample_weight=Y + 1.0)
    assert_allclose(by_class.coefs_[0], by_sample.coefs_[0], rtol=1e-12)
    counts = np.bincount(Y)
    balanced = small(MLPClassifier, class_weight="balanced").fit(X, Y)
    manual = small(MLPClassifier).fit(X, Y, sample_weight=len(Y) / (10 * counts[Y]))
    assert_allclose(balanced.coefs_[0], manual.coefs_[0], rtol=1e-12)


def test_stopping_rules_and_convergence_warning():
    params = dict(hidden_layer_sizes=(16,), tol=1e9, n_iter_no_change=3, max_iter=50)
    ours, theirs = MLPRegressor(**params), neural_network.MLPRegressor(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ours.fit(X, Y / 9.0)
        theirs.fit(X, Y / 9.0)
    # the first epoch improves on an infinite best loss; the count passes 3 on the fifth
    assert ours.n_iter_ == theirs.n_iter_ == 5
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(3\\)"):
        small(MLPRegressor, max_iter=3).fit(X, Y / 9.0)
    early = small(MLPClassifier, early_stopping=True, max_iter=200, tol=1e-2).fit(X, Y)
    assert early.best_loss_ is None and len(early.validation_scores_) == early.n_iter_ < 200
    assert early.best_validation_score_ == max(early.validation_scores_)


@pytest.mark.parametrize(
    "params, exc, words",
    [
        ({"solver": "lbfgs"}, ValueError, "solver.*lbfgs"),
        ({"alpha": -1.0}, ValueError, "alpha"),
        ({"hidden_layer_sizes": (0,)}, ValueError, "hidden_layer_sizes\\[0\\]"),
        ({"hidden_layer_sizes": "64"}, TypeError, "hidden_layer_sizes"),
        ({"activation": "swish"}, ValueError, "activation.*'swish'"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"loss": "hinge"}, ValueError, "loss.*'hinge'"),
        ({"max_iter": 1.5}, TypeError, "max_iter"),
        ({"validation_fraction": 1.0}, ValueError, "validation_fraction"),
        ({"backend": "gpu"}, ValueError, "backend.*'gpu'"),
        ({"dtype": "float16"}, ValueError, "dtype.*'float16'"),
        ({"class_weight": "even"}, ValueError, "class_weight.*'even'"),
        ({"momentum_form": "ema"}, ValueError, "nesterovs_momentum"),
    ],
)
def test_bad_parameters_are_named(params, exc, words):
    with pytest.raises(exc, match=words):
        small(MLPClassifier, solver=params.pop("solver", "sgd"), **params).fit(X, Y)


def test_bad_targets_are_refused():
    with pytest.raises(ValueError, match="multilabel"):
        small(MLPClassifier).fit(X, np.column_stack([Y % 2, Y > 4]).astype(int))
    with pytest.raises(ValueError, match="classes"):
        small(MLPClassifier).partial_fit(X, Y)
    est = small(MLPClassifier).partial_fit(X, Y % 3, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="y: expected labels in \\[0, 1, 2\\], got \\[3"):
        est.partial_fit(X, Y)
    reg = small(MLPRegressor).partial_fit(X, Y / 9.0)
    with pytest.raises(ValueError, match="y: expected 1 output"):
        reg.partial_fit(X, regression_target(Y))


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_partial_fit_refuses_early_stopping_before_any_work(cls):
    # scikit-learn's own MLPs raise a ValueError here too.
    est = small(cls, early_stopping=True)
    extra = {"classes": np.unique(Y)} if cls is MLPClassifier else {}
    with pytest.raises(ValueError, match="early_stopping: partial_fit does not support"):
        est.partial_fit(X, Y, **extra)
    assert not hasattr(est, "model_")
    assert est.set_params(early_stopping=False).partial_fit(X, Y, **extra).n_iter_ == 1


@QUIET
def test_numpy_backend_matches_cpp():
    a = small(MLPClassifier, backend="cpp").fit(X, Y)
    b = small(MLPClassifier, backend="numpy").fit(X, Y)
    assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-6, atol=1e-9)


@QUIET
def test_dtype_follows_x_unless_given_and_feature_names_are_kept():
    as32 = small(MLPRegressor, max_iter=2).fit(X.astype(np.float32), Y / 9.0)
    as64 = small(MLPRegressor, max_iter=2).fit((X * 16).astype(np.int64), Y / 9.0)
    forced = small(MLPRegressor, max_iter=2, dtype="float32").fit(X, Y / 9.0)
    assert as32.predict(X).dtype == np.float32 and as64.predict(X).dtype == np.float64
    assert forced.coefs_[0].dtype == np.float32
    frame = pandas.DataFrame(X, columns=[f"pixel{i}" for i in range(64)])
    named = small(MLPClassifier, max_iter=2).fit(frame, Y)
    assert list(named.feature_names_in_) == list(frame.columns)


@QUIET
def test_verbose_prints_scikit_learns_lines(capsys):
    small(MLPClassifier, max_iter=2, verbose=True).fit(X, Y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == ["Iteration 1", "Iteration 2"]


@QUIET
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_schedule_sets_each_epochs_lr(solver):
    constant = small(MLPClassifier, solver=solver, schedule=schedules.Constant(0.01)).fit(X, Y)
    plain = small(MLPClassifier, solver=solver, learning_rate_init=0.01).fit(X, Y)
    assert_array_equal(constant.coefs_[0], plain.coefs_[0])
    frozen = small(MLPClassifier, solver=solver, max_iter=3).fit(X, Y)
    before = frozen.coefs_
    frozen.set_params(warm_start=True, schedule=lambda epoch: 0.0).fit(X, Y)
    for a, b in zip(frozen.coefs_, before):
        assert_array_equal(a, b)
