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
