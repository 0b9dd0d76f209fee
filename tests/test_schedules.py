import math

import pytest

from pycvnn import schedules as S


def test_constant_step_exponential():
    assert [S.Constant(0.1)(e) for e in range(3)] == [0.1, 0.1, 0.1]
    assert [S.StepDecay(1.0, 2, gamma=0.5)(e) for e in range(5)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert S.ExponentialDecay(2.0, 0.5)(3) == pytest.approx(0.25)


def test_cosine_annealing_ends_and_stays_at_eta_min():
    s = S.CosineAnnealing(1.0, t_max=4, eta_min=0.1)
    assert s(0) == pytest.approx(1.0)
    assert s(2) == pytest.approx(0.55)  # halfway: the mean of lr and eta_min
    assert s(1) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2)
    assert s(4) == pytest.approx(0.1) and s(10) == pytest.approx(0.1)


def test_warmup_then_schedule():
    s = S.Warmup(1.0, epochs=4, then=S.StepDecay(1.0, 1, gamma=0.5))
    assert [s(e) for e in range(6)] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 0.5])
    assert S.Warmup(0.2, 2)(7) == 0.2


def test_reduce_on_plateau_follows_pytorch_rule():
    s = S.ReduceOnPlateau(1.0, factor=0.5, patience=2, threshold=0.1)
    assert s.step(10.0) == 1.0  # best = 10
    assert s.step(9.5) == 1.0  # not < 10 * 0.9: one bad epoch
    assert s.step(9.1) == 1.0  # two bad epochs: still = patience
    assert s.step(9.2) == 0.5  # three > patience: reduce, counter reset
    assert s(5) == 0.5
    assert s.step(8.0) == 0.5  # < 9.0: an improvement
    for _ in range(3):
        lr = s.step(8.0)
    assert lr == 0.25


def test_reduce_on_plateau_respects_min_lr():
    s = S.ReduceOnPlateau(1.0, factor=0.1, patience=0, min_lr=0.05)
    s.step(1.0)
    assert s.step(1.0) == pytest.approx(0.1)
    assert s.step(1.0) == pytest.approx(0.05)
    assert s.step(1.0) == pytest.approx(0.05)


@pytest.mark.parametrize(
    "make,arg",
    [
        (lambda: S.Constant(-0.1), "lr"),
        (lambda: S.Constant(float("nan")), "lr"),
        (lambda: S.StepDecay(0.1, 0), "step_size"),
        (lambda: S.StepDecay(0.1, 1.5), "step_size"),
        (lambda: S.ExponentialDecay(0.1, -1), "gamma"),
        (lambda: S.CosineAnnealing(0.1, 0), "t_max"),
        (lambda: S.CosineAnnealing(0.1, 5, eta_min=1.0), "eta_min"),
        (lambda: S.Warmup(0.1, 0), "epochs"),
        (lambda: S.Warmup(0.1, 2, then=3), "then"),
        (lambda: S.ReduceOnPlateau(0.1, factor=1.5), "factor"),
        (lambda: S.ReduceOnPlateau(0.1, patience=-1), "patience"),
        (lambda: S.Constant(0.1)(-1), "epoch"),
        (lambda: S.ReduceOnPlateau(0.1).step(float("inf")), "metric"),
    ],
)
def test_bad_arguments(make, arg):
    with pytest.raises(ValueError, match=arg):
        make()


def test_warmup_feeds_a_plateau_schedule_after_warm_up_only():
    plateau = S.ReduceOnPlateau(1.0, factor=0.5, patience=0)
    s = S.Warmup(1.0, epochs=2, then=plateau)
    s(0)
    s.step(5.0)
    s(1)
    s.step(5.0)  # warm-up epochs: the metric is not counted
    assert plateau.best == float("inf")
    assert s(2) == 1.0
    s.step(5.0)
    assert s.step(5.0) == 0.5 and s(3) == 0.5
