"""pycvnn.plot's model figures: history, decision_boundary and confusion_matrix. Each figure
is rendered to a PNG, and the data drawn is pulled back out of the artists and compared with
the History, the model's own predictions and metrics.confusion_matrix."""

import io

import numpy as np
import pytest

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import pycvnn  # noqa: E402
from pycvnn import plot  # noqa: E402
from pycvnn.metrics import confusion_matrix  # noqa: E402


@pytest.fixture
def figure():
    """Closes the figures a test made, pass or fail."""
    made = []
    yield made.append
    for fig in made:
        plt.close(fig)


def assert_drawn(fig):
    """The PNG at dpi=100 has a picture in it: many colours, not all white."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    buffer.seek(0)
    pixels = plt.imread(buffer)[..., :3].reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 20
    assert (pixels < 0.9).any(axis=1).mean() > 0.02


@pytest.fixture(scope="module")
def digits():
    """A digits MLP trained 3 epochs, its History (with held-out data) and the test split."""
    X, y = pycvnn.datasets.digits()
    order = np.random.default_rng(0).permutation(len(X))
    train, test = order[360:], order[:360]
    model = pycvnn.MLP([64, 16, 10], output="softmax", seed=0)
    h = model.fit(
        X[train], y[train], epochs=3, seed=0, validation_data=(X[test], y[test]), verbose=False
    )
    return model, h, X[test], y[test]


@pytest.fixture(scope="module")
def blobs():
    """Two Gaussian blobs in 2-D and a small sigmoid MLP trained to tell them apart."""
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(-1.5, 0.6, (80, 2)), rng.normal(1.5, 0.6, (80, 2))])
    y = np.repeat([0, 1], 80)
    model = pycvnn.MLP([2, 8, 1], activation="tanh", output="sigmoid", seed=0)
    model.fit(X, y, loss="binary_cross_entropy", epochs=40, seed=0, verbose=False)
    return model, X.astype(np.float32), y


# ---- history --------------------------------------------------------------------------------


def test_history_draws_train_and_held_out_curves_per_epoch_from_one(digits, figure):
    _, h, _, _ = digits
    fig = plot.history(h)
    figure(fig)
    assert_drawn(fig)
    loss, accuracy = fig.axes
    for ax, name in [(loss, "loss"), (accuracy, "accuracy")]:
        train, held_out = ax.lines
        for line, column in [(train, name), (held_out, f"val_{name}")]:
            np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3])
            np.testing.assert_array_equal(line.get_ydata(), h[column])
        assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == name and ax.get_title()
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [
            f"training {name}",
            f"held-out {name}",
        ]


def test_history_of_a_regression_fit_has_the_loss_panel_only_and_takes_an_ax(figure):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    model = pycvnn.MLP([3, 4, 1], seed=0)
    h = model.fit(X, X.sum(axis=1, keepdims=True), loss="mse", epochs=4, verbose=False)
    fig, ax = plt.subplots()
    figure(fig)
    assert plot.history(h, ax=ax) is fig
    assert fig.axes == [ax] and len(ax.lines) == 1
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), h["loss"])


def test_history_draws_one_chosen_panel_into_an_ax(digits, figure):
    h = digits[1]
    fig, ax = plt.subplots()
    figure(fig)
    assert plot.history(h, ax=ax, columns=("accuracy",)) is fig
    assert fig.axes == [ax] and ax.get_ylabel() == "accuracy"
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), h["val_accuracy"])


def batch_records(losses_per_epoch):
    """A stand-in for fit(log_every="batch")'s table: a History of step/epoch/batch/loss/lr."""
    batches, step = pycvnn.History(), 0
    for epoch, losses in enumerate(losses_per_epoch):
        for batch, loss in enumerate(losses):
            batches.append({"step": step, "epoch": epoch, "batch": batch, "loss": loss, "lr": 0.1})
            step += 1
    return batches


def test_history_draws_batch_losses_under_the_epoch_loss_in_epoch_units(digits, figure):
    h = pycvnn.History()
    for record in digits[1].records:
        h.append(record)
    per_epoch = [[2.0, 1.0, 1.5, 0.5], [0.9, 0.7, 0.8, 0.6], [0.5, 0.4]]  # a short last epoch
    h.batches = batch_records(per_epoch)
    fig = plot.history(h)
    figure(fig)
    assert_drawn(fig)
    ax = fig.axes[0]
    batch_line, epoch_line = ax.lines[:2]  # drawn first, so under the epoch curve
    np.testing.assert_allclose(
        batch_line.get_xdata(), [0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.5, 3]
    )
    np.testing.assert_array_equal(batch_line.get_ydata(), sum(per_epoch, []))
    assert batch_line.get_alpha() < 1 and batch_line.get_linewidth() < epoch_line.get_linewidth()
    np.testing.assert_array_equal(epoch_line.get_ydata(), h["loss"])
    assert len(fig.axes[1].lines) == 2  # accuracy gets no batch line


def test_history_without_batch_records_or_with_an_empty_table_draws_no_batch_line(digits, figure):
    h = pycvnn.History()
    for record in digits[1].records:
        h.append(record)
    h.batches = pycvnn.History()
    fig = plot.history(h, columns=("loss",))
    figure(fig)
    assert [line.get_label() for line in fig.axes[0].lines] == ["training loss", "held-out loss"]


@pytest.mark.parametrize(
    "h, kwargs, error, fragment",
    [
        ({"loss": [1.0]}, {}, TypeError, "h: expected the History that fit returns, got dict"),
        (pycvnn.History(), {}, ValueError, "h: expected a History of at least one epoch"),
        ("digits", {"columns": "loss"}, ValueError, "columns: expected some of"),
        ("digits", {"columns": ("loss", "lr")}, ValueError, "columns: expected some of"),
        ("digits", {"columns": ()}, ValueError, "columns: expected some of"),
        ("digits", {"ax": "an axes"}, ValueError, "pass columns=('loss',) to draw one"),
        ("digits", {"ax": "an axes", "columns": ("loss",)}, TypeError, "ax: expected a matplotlib"),
        ("digits", {"columns": None}, ValueError, "columns: expected some of"),
    ],
)
def test_history_bad_input_names_the_argument(digits, h, kwargs, error, fragment):
    h = digits[1] if h == "digits" else h
    with pytest.raises(error) as info:
        plot.history(h, **kwargs)
    assert fragment in str(info.value)
    assert not plt.get_fignums()


def test_history_names_the_columns_when_none_asked_for_was_logged():
    h = pycvnn.History()
    h.append({"epoch": 0, "loss": 1.0, "lr": 0.1, "seconds": 0.1})
    with pytest.raises(ValueError, match=r"columns: none of \('accuracy',\) was logged"):
        plot.history(h, columns=("accuracy",))


def test_the_cli_saves_the_history_figure(tmp_path, capsys):
    from pycvnn import cli

    path = tmp_path / "curves.png"
    with pycvnn.using_backend(pycvnn.get_backend()):
        argv = ["train", "--quiet", "--epochs", "2", "--hidden", "8", "--backend", "numpy"]
        assert cli.main([*argv, "--plot", str(path)]) == 0
    assert f"saved curves to {path}" in capsys.readouterr().out
    height, width = plt.imread(path).shape[:2]
    assert (width, height) == (2 * 4.6 * 120, 3.6 * 120)  # two panels at dpi=120
    assert not plt.get_fignums()  # the CLI closed its figure


# ---- decision_boundary ----------------------------------------------------------------------


def pixel_centres(image):
    """The (x, y) point at the centre of each pixel of an origin="lower" image, row-major."""
    left, right, bottom, top = image.get_extent()
    rows, cols = image.get_array().shape
    xs = left + (np.arange(cols) + 0.5) * (right - left) / cols
    ys = bottom + (np.arange(rows) + 0.5) * (top - bottom) / rows
    return np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)


def test_decision_boundary_draws_the_models_decisions_and_confidence(blobs, figure):
    model, X, y = blobs
    fig = plot.decision_boundary(model, X, y, resolution=60)
    figure(fig)
    assert_drawn(fig)
    ax = fig.axes[0]
    (image,) = ax.images
    drawn = np.asarray(image.get_array())
    assert drawn.shape == (60, 60) and image.origin == "lower"
    centres = pixel_centres(image)
    np.testing.assert_array_equal(drawn.ravel(), model.predict_classes(centres))
    assert set(np.unique(drawn)) == {0, 1}
    # the shading: the region's opacity grows with the distance of P(class 1) from 0.5
    p = model.predict(centres)[:, 0]
    np.testing.assert_allclose(image.get_alpha().ravel(), 0.6 * np.abs(2 * p - 1), atol=1e-5)
    assert fig.axes[1].get_ylabel() == "P(class 1)"  # the colour bar
    # the grid covers X with a margin
    left, right, bottom, top = image.get_extent()
    assert left < X[:, 0].min() and right > X[:, 0].max()
    assert bottom < X[:, 1].min() and top > X[:, 1].max()
    # the points on top, by class; the trained model puts nearly all in their own region
    for k, points in enumerate(ax.collections):
        np.testing.assert_allclose(points.get_offsets(), X[y == k])
        assert points.get_label() == f"class {k}"
    cols = ((X[:, 0] - left) / (right - left) * 60).astype(int)
    rows = ((X[:, 1] - bottom) / (top - bottom) * 60).astype(int)
    assert np.mean(drawn[rows, cols] == y) > 0.95
    assert ax.get_title().endswith(f"{np.mean(model.predict_classes(X) == y):.3f}")


def test_decision_boundary_of_three_classes_draws_the_regions_without_shading(figure):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 2))
    y = np.arange(30) % 3
    model = pycvnn.MLP([2, 8, 3], seed=4)  # untrained: irregular regions are as good a test
    fig, ax = plt.subplots()
    figure(fig)
    assert plot.decision_boundary(model, X, y, ax=ax, resolution=50) is fig
    assert_drawn(fig)
    (image,) = ax.images
    drawn = np.asarray(image.get_array())
    np.testing.assert_array_equal(drawn.ravel(), model.predict_classes(pixel_centres(image)))
    assert len(np.unique(drawn)) > 1
    assert fig.axes == [ax]  # no colour bar: nothing but the class is shown
    assert len(ax.collections) == 3


@pytest.mark.parametrize(
    "outputs, last, shading",
    [(1, None, "score"), (2, "softmax", "P(class 1)"), (2, "sigmoid", "score"), (2, None, "score")],
)
def test_decision_boundary_shades_the_score_or_probability_of_class_1(
    blobs, outputs, last, shading, figure
):
    _, X, y = blobs
    model = pycvnn.MLP([2, 6, outputs], output=last, seed=2)
    fig = plot.decision_boundary(model, X, y, resolution=40)
    figure(fig)
    image = fig.axes[0].images[0]
    centres = pixel_centres(image)
    np.testing.assert_array_equal(
        np.asarray(image.get_array()).ravel(), model.predict_classes(centres)
    )
    out = model.predict(centres).astype(np.float64)
    if shading == "P(class 1)":
        confidence = np.abs(2 * out[:, 1] - 1)
    else:  # the score of class 1 over class 0, scaled by its largest size on the grid
        score = out[:, 0] if outputs == 1 else out[:, 1] - out[:, 0]
        confidence = np.abs(score) / np.abs(score).max()
    np.testing.assert_allclose(image.get_alpha().ravel(), 0.6 * confidence, atol=1e-5)
    assert fig.axes[1].get_ylabel().startswith(shading)


def test_decision_boundary_of_points_on_a_line_still_has_a_box(figure):
    model = pycvnn.MLP([2, 3, 1], seed=0)
    X = np.array([[1.0, 2.0], [3.0, 2.0]])
    fig = plot.decision_boundary(model, X, [0, 1], resolution=10)
    figure(fig)
    left, right, bottom, top = fig.axes[0].images[0].get_extent()
    assert bottom < 2 < top and left < 1 and right > 3


MODEL2 = pycvnn.MLP([2, 4, 1], seed=0)


@pytest.mark.parametrize(
    "model, X, y, kwargs, error, fragment",
    [
        (
            MODEL2,
            np.zeros((5, 3)),
            [0] * 5,
            {},
            ValueError,
            "X: expected 2-D points of shape (N, 2)",
        ),
        (MODEL2, np.zeros(4), [0] * 4, {}, ValueError, "X: expected 2-D points"),
        (MODEL2, [[0, np.inf]], [0], {}, ValueError, "X: expected finite values"),
        (MODEL2, np.zeros((4, 2)), [0] * 3, {}, ValueError, "y: expected shape (4,)"),
        (MODEL2, np.zeros((4, 2)), [0, 1, 2, 0], {}, ValueError, "y: expected class ids in [0, 2)"),
        (MODEL2, np.zeros((2, 2)), [0, 1], {"resolution": 1}, ValueError, "resolution"),
        (MODEL2, np.zeros((2, 2)), [0, 1], {"resolution": 2.5}, TypeError, "resolution"),
        (MODEL2, np.zeros((2, 2)), [0, 1], {"resolution": 10**5}, ValueError, "resolution"),
        (MODEL2, np.zeros((2, 2)), [0, 1], {"margin": -0.1}, ValueError, "margin"),
        (MODEL2, np.zeros((2, 2)), [0, 1], {"ax": plt}, TypeError, "ax: expected a matplotlib"),
        (
            pycvnn.MLP([3, 2]),
            np.zeros((2, 2)),
            [0, 1],
            {},
            ValueError,
            "model: expected a model of 2",
        ),
        ("a model", np.zeros((2, 2)), [0, 1], {}, TypeError, "model: expected a pycvnn model"),
    ],
)
def test_decision_boundary_bad_input_names_the_argument(model, X, y, kwargs, error, fragment):
    with pytest.raises(error) as info:
        plot.decision_boundary(model, X, y, **kwargs)
    assert fragment in str(info.value)
    assert not plt.get_fignums()  # nothing drawn


# ---- confusion_matrix -----------------------------------------------------------------------


def test_confusion_matrix_shows_the_counts_of_the_models_decisions(digits, figure):
    model, _, X, y = digits
    fig = plot.confusion_matrix(model, X, y)
    figure(fig)
    assert_drawn(fig)
    ax = fig.axes[0]
    expected = confusion_matrix(y, model.predict_classes(X))
    shown = np.asarray(ax.images[0].get_array())
    np.testing.assert_array_equal(shown, expected)
    assert shown.sum() == len(X) == 360
    # one count per cell, row by row, dark cells written in white
    assert [t.get_text() for t in ax.texts] == [str(c) for c in expected.ravel()]
    big, zero = np.argmax(expected), np.argmin(expected)
    assert ax.texts[big].get_color() == "white" and ax.texts[zero].get_color() == "black"
    assert ax.texts[11].get_position() == (1, 1)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(k) for k in range(10)]
    accuracy = np.trace(expected) / 360
    assert 0.5 < accuracy < 1 and f"accuracy {accuracy:.3f}" in ax.get_title()


def test_confusion_matrix_normalized_by_true_class(digits, figure):
    model, _, X, y = digits
    fig, ax = plt.subplots()
    figure(fig)
    assert plot.confusion_matrix(model, X, y, ax=ax, normalize="true") is fig
    counts = confusion_matrix(y, model.predict_classes(X))
    shown = np.asarray(ax.images[0].get_array())
    np.testing.assert_allclose(shown, counts / np.bincount(y)[:, None])
    np.testing.assert_allclose(shown.sum(axis=1), 1)
    assert ax.texts[0].get_text() == f"{shown[0, 0]:.2f}"


def test_confusion_matrix_of_a_binary_model_has_two_classes(blobs, figure):
    model, X, y = blobs
    fig = plot.confusion_matrix(model, X, y)
    figure(fig)
    shown = np.asarray(fig.axes[0].images[0].get_array())
    np.testing.assert_array_equal(shown, confusion_matrix(y, model.predict_classes(X), 2))
    assert shown.shape == (2, 2) and shown.sum() == len(X)


def test_confusion_matrix_of_many_classes_leaves_the_cells_unwritten(figure):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 3)), np.arange(200) % 25
    model = pycvnn.MLP([3, 25], output="softmax", seed=0)
    fig = plot.confusion_matrix(model, X, y)
    figure(fig)
    assert_drawn(fig)
    ax = fig.axes[0]
    np.testing.assert_array_equal(
        ax.images[0].get_array(), confusion_matrix(y, model.predict_classes(X), 25)
    )
    assert not ax.texts and len(ax.get_xticks()) < 25


@pytest.mark.parametrize(
    "X, y, kwargs, error, fragment",
    [
        ("X", "y", {"normalize": "all"}, ValueError, "normalize: expected None or 'true'"),
        ("X", "y", {"ax": 1}, TypeError, "ax: expected a matplotlib Axes, got 1"),
        ("X", [0, 1], {}, ValueError, "y: expected shape (360,)"),
        ("X", "10s", {}, ValueError, "y: expected class ids in [0, 10)"),
        (np.zeros((3, 5)), [0, 1, 2], {}, ValueError, "X: expected shape (N, 64)"),
        (np.zeros(64), [0], {}, ValueError, "X: expected shape (N, 64)"),
    ],
)
def test_confusion_matrix_bad_input_names_the_argument(digits, X, y, kwargs, error, fragment):
    model, _, X_test, y_test = digits
    X = X_test if isinstance(X, str) else X
    y = {"y": y_test, "10s": np.full(360, 10)}.get(y, y) if isinstance(y, str) else y
    with pytest.raises(error) as info:
        plot.confusion_matrix(model, X, y, **kwargs)
    assert fragment in str(info.value)
    assert not plt.get_fignums()
