import numpy as np
import pytest

from pycvnn import cli, walkthrough


def test_lecture_rows_worked_by_hand():
    rows = walkthrough.linear_regression([1, 2, 3], [2, 4, 6], lr=0.1, iterations=5)
    assert [r.iteration for r in rows] == [0, 1, 2, 3, 4]
    # Iteration 0: y_hat = 0, loss = (4 + 16 + 36) / 3; dw = -2/3 (2 + 8 + 18); db = -2/3 * 12.
    assert rows[0].loss == pytest.approx(56 / 3)
    assert rows[0].w == pytest.approx(0.1 * 56 / 3)
    assert rows[0].b == pytest.approx(0.8)
    # Iteration 1 starts from w = 28/15, b = 0.8: residuals -2/3, -8/15, -2/5.
    r = [-2 / 3, -8 / 15, -2 / 5]
    assert rows[1].loss == pytest.approx(sum(v * v for v in r) / 3)
    assert rows[1].w == pytest.approx(28 / 15 + 0.1 * 2 / 3 * (r[0] + 2 * r[1] + 3 * r[2]))
    assert rows[1].b == pytest.approx(0.8 + 0.1 * 2 / 3 * sum(r))
    assert rows[4].loss < rows[1].loss < rows[0].loss


def test_cli_prints_the_table(capsys):
    assert cli.main(["walkthrough"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-5].split() == ["0", "1.866667", "0.800000", "18.666667"]
    assert out[-4].split() == ["1", "1.671111", "0.693333", "0.296296"]


@pytest.mark.parametrize("X,y", [([], []), ([1, 2], [1]), ([1, float("nan")], [1, 2])])
def test_bad_input(X, y):
    with pytest.raises(ValueError, match="X, y"):
        walkthrough.linear_regression(X, y, lr=0.1)


def test_bad_iterations():
    with pytest.raises(ValueError, match="iterations"):
        walkthrough.linear_regression([1], [2], lr=0.1, iterations=-1)


@pytest.mark.parametrize(
    "kwargs,exc,name",
    [
        ({"lr": float("nan")}, ValueError, "lr"),
        ({"lr": -0.1}, ValueError, "lr"),
        ({"lr": np.inf}, ValueError, "lr"),
        ({"lr": "0.1"}, TypeError, "lr"),
        ({"lr": True}, TypeError, "lr"),
        ({"lr": 0.1, "w0": np.inf}, ValueError, "w0"),
        ({"lr": 0.1, "b0": float("nan")}, ValueError, "b0"),
        ({"lr": 0.1, "b0": None}, TypeError, "b0"),
        ({"lr": 0.1, "iterations": 2.0}, ValueError, "iterations"),
        ({"lr": 0.1, "iterations": True}, ValueError, "iterations"),
        ({"lr": 0.1, "iterations": "3"}, ValueError, "iterations"),
    ],
)
def test_bad_scalars_name_the_argument(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        walkthrough.linear_regression([1, 2], [2, 4], **kwargs)


def test_numpy_scalars_are_accepted():
    rows = walkthrough.linear_regression(
        [1, 2, 3],
        [2, 4, 6],
        lr=np.float32(0.125),
        w0=np.float64(0),
        b0=np.int64(0),
        iterations=np.int64(5),
    )
    assert rows == walkthrough.linear_regression([1, 2, 3], [2, 4, 6], 0.125, 0.0, 0.0, 5)
    assert all(type(v) is float for r in rows for v in r[1:])


def test_lr_0_leaves_w_and_b_where_they_started():
    rows = walkthrough.linear_regression([1, 2, 3], [2, 4, 6], lr=0, w0=0.5, b0=-1, iterations=3)
    assert [(r.w, r.b) for r in rows] == [(0.5, -1.0)] * 3


def test_a_diverging_lr_gives_inf_then_nan_rows_without_warnings(recwarn):
    rows = walkthrough.linear_regression([1, 2, 3], [2, 4, 6], lr=1e300, iterations=4)
    assert np.isfinite(rows[0].w) and rows[1].w == -np.inf and np.isnan(rows[3].loss)
    assert walkthrough.diverged_at(rows) == 1
    assert walkthrough.diverged_at(walkthrough.linear_regression([1], [2], lr=0.1)) is None
    assert len(recwarn) == 0
    cells = walkthrough.format_table(rows).splitlines()[1].split()
    assert cells[1:3] == ["1.86667e+301", "8.00000e+300"]  # too wide for fixed point
