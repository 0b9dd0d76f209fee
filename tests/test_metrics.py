"""pycvnn.metrics.confusion_matrix: scikit-learn's layout (rows true, columns predicted),
int64 counts summing to N, and bad input named before any counting."""

import numpy as np
import pytest

import pycvnn
from pycvnn.metrics import MAX_CLASSES, confusion_matrix


def test_a_small_case_by_hand():
    cm = confusion_matrix([0, 0, 1, 2, 2], [0, 1, 1, 0, 2])
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 1]])


@pytest.mark.filterwarnings("ignore:A single label was found")
@pytest.mark.parametrize("n_classes", [1, 2, 3, 10])
@pytest.mark.parametrize("seed", [0, 1])
def test_equals_scikit_learn(n_classes, seed):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, n_classes, 500)
    y_pred = np.where(rng.random(500) < 0.6, y_true, rng.integers(0, n_classes, 500))
    expected = sklearn_metrics.confusion_matrix(y_true, y_pred, labels=range(n_classes))
    cm = confusion_matrix(y_true, y_pred, n_classes=n_classes)
    np.testing.assert_array_equal(cm, expected)
    assert cm.sum() == 500


def test_n_classes_pads_classes_that_never_occur():
    cm = confusion_matrix([1, 1, 0], [1, 0, 0], n_classes=4)
    assert cm.shape == (4, 4) and cm.sum() == 3
    np.testing.assert_array_equal(cm[:2, :2], [[1, 0], [1, 1]])
    assert not cm[2:].any() and not cm[:, 2:].any()


def test_default_size_covers_labels_seen_only_in_the_predictions():
    assert confusion_matrix([0, 0], [0, 3]).shape == (4, 4)


def test_lists_integral_floats_and_numpy_ints_are_accepted():
    expected = confusion_matrix(np.array([0, 1, 1]), np.array([1, 1, 0]))
    np.testing.assert_array_equal(confusion_matrix([0.0, 1.0, 1.0], [1, 1, 0]), expected)
    np.testing.assert_array_equal(
        confusion_matrix(np.array([0, 1, 1], np.uint8), [1, 1, 0], n_classes=np.int32(2)),
        expected,
    )


def test_it_is_exported():
    assert "metrics" in pycvnn.__all__ and pycvnn.metrics.confusion_matrix is confusion_matrix


@pytest.mark.parametrize(
    "y_true, y_pred, kwargs, error, fragment",
    [
        ([0, 1, 1], [0, 1], {}, ValueError, "y_pred: expected shape (3,)"),
        ([0, -1], [0, 1], {}, ValueError, "y_true: expected class ids >= 0"),
        ([0, 1], [0, 0.5], {}, ValueError, "y_pred: expected integer class ids"),
        ([[0, 1]], [[0, 1]], {}, ValueError, "y_true: expected class ids of shape (N,)"),
        ([], [], {}, ValueError, "y_true: expected a non-empty array"),
        ([0, np.nan], [0, 1], {}, ValueError, "y_true: expected finite values"),
        (["a", "b"], [0, 1], {}, TypeError, "y_true: expected a real numeric array"),
        ([0, MAX_CLASSES], [0, 1], {}, ValueError, "y_true: expected class ids below"),
        ([0, 3], [0, 1], {"n_classes": 3}, ValueError, "n_classes: expected more than the largest"),
        ([0, 1], [0, 1], {"n_classes": 0}, ValueError, "n_classes: expected an int >= 1, got 0"),
        ([0, 1], [0, 1], {"n_classes": 2.0}, TypeError, "n_classes: expected an int"),
        ([0, 1], [0, 1], {"n_classes": True}, TypeError, "n_classes: expected an int"),
        ([0, 1], [0, 1], {"n_classes": 10**6}, ValueError, "n_classes: expected an int <="),
    ],
)
def test_bad_input_names_the_argument(y_true, y_pred, kwargs, error, fragment):
    with pytest.raises(error) as info:
        confusion_matrix(y_true, y_pred, **kwargs)
    assert fragment in str(info.value)
