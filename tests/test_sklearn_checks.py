"""scikit-learn's own estimator checks on MLPClassifier and MLPRegressor: every check on the
cpp backend, and the ones that train and compare predictions on the NumPy twin as well."""

import pytest
from sklearn.utils.estimator_checks import estimator_checks_generator, parametrize_with_checks

from pycvnn.sklearn import MLPClassifier, MLPRegressor

# A small network that still learns the checks' toy problems: hidden size, epochs and
# learning rate are parameters, the defaults stay scikit-learn's.
SMALL = dict(hidden_layer_sizes=(16,), max_iter=300, learning_rate_init=0.01, random_state=0)
# No check is expected to fail: scikit-learn's tags for these estimators (dense input, single
# label, the regressor also multi-output) already leave out the checks that do not apply.
EXPECTED_FAILURES = {}
# The checks run on the NumPy twin too: those that train and compare what comes out.
TWIN_CHECKS = ("train", "sample_weight", "pickle", "idempotent", "invariance", "y_2d", "dtypes")


# The checks train small networks for few epochs on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _name(check):
    return getattr(check, "__name__", None) or check.func.__name__


@parametrize_with_checks(
    [MLPClassifier(**SMALL, backend="cpp"), MLPRegressor(**SMALL, backend="cpp")],
    expected_failed_checks=lambda estimator: EXPECTED_FAILURES,
)
def test_sklearn_check(estimator, check, monkeypatch):
    # The array-API check runs (with NumPy arrays) only when scipy's array API is switched on.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)


TWIN = [
    pytest.param(estimator, check, id=f"{type(estimator).__name__}-{_name(check)}")
    for cls in (MLPClassifier, MLPRegressor)
    for estimator, check in estimator_checks_generator(cls(**SMALL, backend="numpy"))
    if any(word in _name(check) for word in TWIN_CHECKS)
]


def test_twin_checks_are_chosen():
    assert len(TWIN) >= 20


@pytest.mark.parametrize("estimator, check", TWIN)
def test_sklearn_check_numpy_backend(estimator, check):
    check(estimator)
