"""optim.minimize (an optimizer on any function) and fit(log_every="batch"): against closed
forms, the lecture's recursions, PyTorch's optimizers, the walkthrough, and bad input."""

import numpy as np
import pytest
from nethelpers import BACKENDS, DTYPES, close

import pycvnn
from pycvnn import optim
from pycvnn.walkthrough import linear_regression

A = np.array([[3.0, 0.5], [0.5, 0.2]])  # an ill-conditioned quadratic 0.5 x'Ax
X0 = np.array([1.0, -2.0])


def quadratic(x):
    return 0.5 * x @ A @ x, A @ x


def rosenbrock(x):
    a, b = x
    value = (1 - a) ** 2 + 100 * (b - a * a) ** 2
    return value, np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])


@pytest.fixture(params=BACKENDS)
def backend(request):
    with pycvnn.using_backend(request.param):
        yield request.param


def test_gd_on_a_quadratic_is_the_closed_form(backend):
    lr, steps = 0.1, 30
    path = optim.minimize(lambda x: A @ x, X0, optim.GD(lr=lr), steps)
    assert path.shape == (steps + 1, 2) and path.dtype == np.float64
    step_matrix = np.eye(2) - lr * A
    want = [np.linalg.matrix_power(step_matrix, k) @ X0 for k in range(steps + 1)]
    np.testing.assert_allclose(path, want, rtol=1e-12, atol=1e-14)


def test_ema_momentum_is_the_lectures_recursion(backend):
    lr, beta, steps = 0.2, 0.8, 25
    path = optim.minimize(lambda x: A @ x, X0, optim.Momentum(lr=lr, beta=beta), steps)
    x, vel, want = X0.copy(), np.zeros(2), [X0.copy()]
    for _ in range(steps):
        vel = beta * vel + (1 - beta) * (A @ x)
        x = x - lr * vel
        want.append(x)
    np.testing.assert_allclose(path, want, rtol=1e-12, atol=1e-14)


def test_values_are_the_function_at_each_iterate(backend):
    path, values = optim.minimize(quadratic, X0, "adam", 40)
    assert values.shape == (41,)
    np.testing.assert_allclose(values, [quadratic(x)[0] for x in path], rtol=1e-13)
    assert values[-1] < values[0]


def test_the_optimizer_starts_afresh_and_keeps_its_state(backend):
    opt = optim.Adam(lr=0.05)
    first = optim.minimize(rosenbrock, X0, opt, 10)[0]
    assert opt.t == 10 and np.any(opt._state[0] != 0)
    again = optim.minimize(rosenbrock, X0, opt, 10)[0]
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("dtype", DTYPES)
def test_backends_agree(dtype):
    runs = {}
    for name in ("numpy", "cpp"):
        with pycvnn.using_backend(name):
            opt = optim.RMSProp(lr=0.01, clip_norm=5.0, weight_decay=0.01)
            runs[name] = optim.minimize(rosenbrock, X0.astype(dtype), opt, 50)[0]
    assert runs["cpp"].dtype == dtype
    close(runs["cpp"], runs["numpy"], dtype)


def test_a_schedule_sets_the_lr_of_each_step(backend):
    schedule = pycvnn.schedules.ExponentialDecay(0.1, gamma=0.9)
    path = optim.minimize(lambda x: A @ x, X0, "gd", 12, schedule=schedule)
    x, want = X0.copy(), [X0.copy()]
    for k in range(12):
        x = x - schedule(k) * (A @ x)
        want.append(x)
    np.testing.assert_allclose(path, want, rtol=1e-12, atol=1e-14)


def test_clipping_bounds_every_step(backend):
    opt = optim.GD(lr=0.01, clip_norm=1.0)
    path = optim.minimize(rosenbrock, np.array([-2.0, 3.0]), opt, 20)[0]
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    assert np.all(steps <= 0.01 * (1 + 1e-12)) and steps[0] == pytest.approx(0.01)


TORCH_CASES = {
    "sgd": (lambda: optim.GD(lr=1e-3), lambda t, p: t.optim.SGD(p, lr=1e-3)),
    "heavy_ball": (
        lambda: optim.Momentum(lr=1e-3, beta=0.9, form="heavy_ball", weight_decay=0.1),
        lambda t, p: t.optim.SGD(p, lr=1e-3, momentum=0.9, weight_decay=0.1),
    ),
    "nesterov": (
        lambda: optim.Momentum(lr=1e-3, beta=0.9, form="heavy_ball", nesterov=True),
        lambda t, p: t.optim.SGD(p, lr=1e-3, momentum=0.9, nesterov=True),
    ),
    "rmsprop": (
        lambda: optim.RMSProp(lr=1e-2, rho=0.99),
        lambda t, p: t.optim.RMSprop(p, lr=1e-2, alpha=0.99, eps=1e-8),
    ),
    "adam": (lambda: optim.Adam(lr=0.05), lambda t, p: t.optim.Adam(p, lr=0.05)),
    "adamw": (
        lambda: optim.AdamW(lr=0.05, weight_decay=0.1),
        lambda t, p: t.optim.AdamW(p, lr=0.05, weight_decay=0.1),
    ),
}


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_trajectories_equal_pytorchs(backend, case):
    torch = pytest.importorskip("torch")
    ours, theirs = TORCH_CASES[case]
    # 120 steps: later, RMSProp zig-zags across the valley and doubles a one-ulp difference
    # (from the core's fused multiply-adds) every few steps.
    x0, steps = np.array([-1.5, 2.0]), 120
    path = optim.minimize(rosenbrock, x0, ours(), steps)[0]
    p = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt, want = theirs(torch, [p]), [x0]
    for _ in range(steps):
        opt.zero_grad()
        ((1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2).backward()
        opt.step()
        want.append(p.detach().numpy().copy())
    np.testing.assert_allclose(path, want, rtol=1e-10, atol=1e-12)


def test_steps_zero_gives_x0_and_float32_stays_float32():
    path = optim.minimize(lambda x: 2 * x, np.float32(3.0), "gd", 0)
    assert path.shape == (1, 1) and path.dtype == np.float32 and path[0, 0] == 3.0


def test_grad_gets_a_copy_it_may_keep():
    seen = []
    optim.minimize(lambda x: (seen.append(x), 2 * x)[1], [1.0], optim.GD(lr=0.25), 3)
    assert [s[0] for s in seen] == [1.0, 0.5, 0.25, 0.125]


def _nan_after(k):
    calls = []

    def grad(x):
        calls.append(1)
        return x * (np.nan if len(calls) > k else 1.0)

    return grad


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"grad": "f"}, TypeError, "grad: expected a callable"),
        ({"x0": [[1.0, 2.0]]}, ValueError, "x0: expected a scalar or a vector"),
        ({"x0": [1.0, np.nan]}, ValueError, "x0: expected finite"),
        ({"x0": []}, ValueError, "x0: expected a non-empty"),
        ({"x0": ["a"]}, TypeError, "x0: expected a real numeric"),
        ({"optimizer": "lbfgs"}, ValueError, "optimizer"),
        ({"steps": -1}, ValueError, "steps: expected an int >= 0"),
        ({"steps": 2.5}, TypeError, "steps: expected an int"),
        ({"schedule": 0.1}, ValueError, "schedule: expected a callable"),
        ({"grad": lambda x: np.ones(3)}, ValueError, "grad: expected a gradient of shape (2,)"),
        ({"grad": lambda x: (1.0, x, x)}, ValueError, "tuple of 3"),
        ({"grad": lambda x: ("a", x)}, TypeError, "grad: expected a number as the value"),
    ],
)
def test_bad_input_names_the_argument(kwargs, error, words):
    args = {"grad": lambda x: x, "x0": [1.0, 2.0], "optimizer": "gd", "steps": 3, **kwargs}
    with pytest.raises(error, match=None) as info:
        optim.minimize(**args)
    assert words in str(info.value)


def test_a_grad_that_changes_what_it_returns_is_an_error():
    calls = []

    def grad(x):
        calls.append(1)
        return (0.0, x) if len(calls) == 1 else x

    with pytest.raises(ValueError, match="grad: returned a gradient alone at step 1"):
        optim.minimize(grad, [1.0], "gd", 3)


def test_divergence_stops_with_the_step(backend):
    with pytest.raises(pycvnn.TrainingDiverged, match="minimize diverged at step 2"):
        optim.minimize(_nan_after(2), [1.0, 2.0], "gd", 5)


# ---- fit(log_every="batch") ---------------------------------------------------------------

WALK_X, WALK_Y = np.array([[1.0], [2.0], [3.0]]), np.array([[2.0], [4.0], [6.0]])


def _line():
    return pycvnn.Sequential([pycvnn.Dense(1, 1, init="zeros")], dtype="float64")


def _fit_line(lr, **kwargs):
    """GD on the walkthrough's line from w = b = 0, logging every batch."""
    return _line().fit(
        WALK_X,
        WALK_Y,
        loss="l2",
        optimizer=optim.GD(lr=lr),
        verbose=False,
        log_every="batch",
        **kwargs,
    )


def test_batch_gd_logs_the_walkthroughs_losses(backend):
    history = _fit_line(0.1, epochs=5, batch_size=None)
    rows = linear_regression([1, 2, 3], [2, 4, 6], 0.1, iterations=5)
    np.testing.assert_allclose(history.batches["loss"], [r.loss for r in rows], rtol=1e-12)
    assert history.batches["step"] == [1, 2, 3, 4, 5]
    assert history.batches["batch"] == [0] * 5


def test_batch_records_add_up_to_the_epoch_loss(backend):
    X, y = pycvnn.datasets.digits()
    X, y = X[:203], y[:203]
    opt = optim.Momentum(lr=0.05)
    model = pycvnn.MLP([64, 16, 10], seed=0)
    model.fit(X, y, optimizer=opt, epochs=1, verbose=False, seed=1)  # steps continue from 7
    history = model.fit(
        X,
        y,
        optimizer=opt,
        epochs=3,
        batch_size=32,
        verbose=False,
        seed=2,
        log_every="batch",
        schedule=lambda e: 0.05 / (e + 1),
    )
    log = history.batches
    assert len(log) == 3 * 7 and log["step"] == list(range(8, 8 + 21))
    assert log["epoch"] == [e for e in range(3) for _ in range(7)]
    assert log["batch"] == list(range(7)) * 3
    assert log["lr"] == [0.05 / (e + 1) for e in log["epoch"]]
    sizes = np.array([32] * 6 + [203 - 6 * 32])
    for e in range(3):
        losses = np.array(log["loss"][7 * e : 7 * e + 7])
        assert history["loss"][e] == pytest.approx(sizes @ losses / 203, rel=1e-12)


def test_stochastic_descent_logs_each_samples_loss(backend):
    history = _fit_line(0.05, epochs=1, batch_size=1, shuffle=False)
    w = b = 0.0
    for (x,), (t,), logged in zip(WALK_X, WALK_Y, history.batches["loss"]):
        r = w * x + b - t
        assert logged == pytest.approx(r * r, rel=1e-12)
        w, b = w - 0.05 * 2 * r * x, b - 0.05 * 2 * r


def test_log_every_epoch_keeps_no_batch_records_and_bad_values_are_named():
    history = _line().fit(WALK_X, WALK_Y, loss="l2", epochs=2, verbose=False)
    assert len(history.batches) == 0 and history.batches.columns == []
    for bad in ("step", None, 1):
        with pytest.raises(ValueError, match="log_every: expected one of"):
            _line().fit(WALK_X, WALK_Y, loss="l2", epochs=2, verbose=False, log_every=bad)
