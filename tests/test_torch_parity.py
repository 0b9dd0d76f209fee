"""PyTorch parity of the optimizers and schedules: from the same initial
weights, on the same batches in the same order, every optimizer's float64 trajectory equals
PyTorch's to round-off, epoch by epoch; and the schedules give torch's lr sequences.

torch is the optional `compare` extra (torch==2.13.0), never a test dependency: without it
this whole module is skipped."""

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch",
    reason="PyTorch is not installed (pip install 'pycvnn[compare]', torch==2.13.0); "
    "the parity tests compare pycvnn's optimizers and schedules against it",
)

from nethelpers import BACKENDS, Recorder, backend_fixture, batches  # noqa: E402

import pycvnn  # noqa: E402
from pycvnn import optim  # noqa: E402
from pycvnn import schedules as S  # noqa: E402

backend = pytest.fixture(params=BACKENDS)(backend_fixture)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny problems: torch's thread pool only adds noise (and time) here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


N, F, H, C = 40, 5, 7, 3
BATCH, EPOCHS = 8, 5  # 25 steps
SEED = 17


def data(loss):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, F))
    if loss == "cross_entropy":
        return X, rng.integers(0, C, N)
    return X, X @ rng.normal(size=(F, C)) + rng.normal(size=(N, C))


def torch_net(weights):
    net = torch.nn.Sequential(
        torch.nn.Linear(F, H), torch.nn.Tanh(), torch.nn.Linear(H, C)
    ).double()
    with torch.no_grad():
        for p, w in zip(net.parameters(), weights):  # torch's order is also W1, b1, W2, b2
            p.copy_(torch.from_numpy(np.array(w, dtype=np.float64)))
    return net


def torch_groups(net, weight_decay=0.0):
    """Weights (with weight_decay) and biases (never decayed) as two param groups."""
    ws = [p for name, p in net.named_parameters() if name.endswith("weight")]
    bs = [p for name, p in net.named_parameters() if name.endswith("bias")]
    return [{"params": ws, "weight_decay": weight_decay}, {"params": bs, "weight_decay": 0.0}]


def exact_clip(params, max_norm):
    """The global-norm clip: g *= max_norm / ||g|| when ||g|| > max_norm."""
    grads = [p.grad for p in params]
    norm = torch.sqrt(sum((g**2).sum() for g in grads))
    if norm > max_norm:
        for g in grads:
            g.mul_(max_norm / norm)
    return float(norm)


def torch_clip(params, max_norm):
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm))


def run_torch(weights, X, y, loss, make_opt, clip=None, clip_fn=exact_clip, update=None):
    """Train the torch twin on the same permutations; per-epoch weights and weighted losses,
    and the gradient norms seen before clipping. `update(params)` replaces opt.step()."""
    net = torch_net(weights)
    opt = make_opt(net) if make_opt else None
    rng = np.random.default_rng(SEED)
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y)
    loss_fn = (
        torch.nn.functional.cross_entropy
        if loss == "cross_entropy"
        else torch.nn.functional.mse_loss
    )
    epoch_weights, epoch_losses, norms = [], [], []
    for _ in range(EPOCHS):
        values, sizes = [], []
        for idx in batches(rng.permutation(N), BATCH):
            idx = torch.from_numpy(idx)
            net.zero_grad()
            value = loss_fn(net(Xt[idx]), yt[idx])
            value.backward()
            if clip is not None:
                norms.append(clip_fn(list(net.parameters()), clip))
            if update is not None:
                update(list(net.parameters()))
            else:
                opt.step()
            values.append(value.item())
            sizes.append(len(idx))
        epoch_losses.append(float(np.dot(values, sizes) / N))
        epoch_weights.append([p.detach().numpy().copy() for p in net.parameters()])
    return epoch_weights, epoch_losses, norms


def run_pycvnn(X, y, loss, opt):
    m = pycvnn.MLP([F, H, C], activation="tanh", seed=3, dtype="float64")
    w0 = m.get_weights()
    rec = Recorder()
    h = m.fit(
        X,
        y,
        loss=loss,
        optimizer=opt,
        epochs=EPOCHS,
        batch_size=BATCH,
        seed=SEED,
        callbacks=[rec],
        verbose=False,
    )
    assert opt.t == EPOCHS * N // BATCH
    return w0, rec.weights, h["loss"]


def assert_same_trajectory(ours, theirs, rtol=1e-10):
    """Losses to rtol; weights to rtol with an atol of rtol x 1% of each array's largest entry
    (entries that pass near zero)."""
    (w_ours, loss_ours), (w_torch, loss_torch) = ours, theirs
    np.testing.assert_allclose(loss_ours, loss_torch, rtol=rtol)
    for epoch, (a_list, b_list) in enumerate(zip(w_ours, w_torch)):
        for i, (a, b) in enumerate(zip(a_list, b_list)):
            np.testing.assert_allclose(
                a,
                b,
                rtol=rtol,
                atol=rtol * 1e-2 * np.abs(b).max(),
                err_msg=f"epoch {epoch}, weights[{i}]",
            )
    # the runs went somewhere: the comparison is not of two unmoved models
    assert not np.allclose(w_ours[0][0], w_ours[-1][0], rtol=1e-3)


# (our optimizer, torch optimizer from the net) pairs; biases are never decayed in pycvnn.
CASES = {
    "gd": (lambda: optim.GD(lr=0.1), lambda net: torch.optim.SGD(net.parameters(), lr=0.1)),
    "gd coupled wd": (
        lambda: optim.SGD(lr=0.1, weight_decay=0.05),
        lambda net: torch.optim.SGD(torch_groups(net, 0.05), lr=0.1),
    ),
    "heavy_ball": (
        lambda: optim.Momentum(lr=0.05, beta=0.9, form="heavy_ball"),
        lambda net: torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9),
    ),
    "heavy_ball coupled wd": (
        lambda: optim.Momentum(lr=0.05, beta=0.8, form="heavy_ball", weight_decay=0.02),
        lambda net: torch.optim.SGD(torch_groups(net, 0.02), lr=0.05, momentum=0.8),
    ),
    "nesterov": (
        lambda: optim.Momentum(lr=0.05, beta=0.9, form="heavy_ball", nesterov=True),
        lambda net: torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True),
    ),
    # form "ema" (v := beta v + (1 - beta) g, theta -= lr v) is heavy_ball with lr (1 - beta):
    # by induction v_ema = (1 - beta) v_heavy_ball.
    "ema": (
        lambda: optim.Momentum(lr=0.2, beta=0.9, form="ema"),
        lambda net: torch.optim.SGD(net.parameters(), lr=0.2 * (1 - 0.9), momentum=0.9),
    ),
    "rmsprop": (
        lambda: optim.RMSProp(lr=0.01, rho=0.9, eps=1e-8),
        lambda net: torch.optim.RMSprop(net.parameters(), lr=0.01, alpha=0.9, eps=1e-8),
    ),
    "rmsprop rho eps": (
        lambda: optim.RMSProp(lr=0.005, rho=0.7, eps=1e-3),
        lambda net: torch.optim.RMSprop(net.parameters(), lr=0.005, alpha=0.7, eps=1e-3),
    ),
    "rmsprop coupled wd": (
        lambda: optim.RMSProp(lr=0.01, weight_decay=0.1),
        lambda net: torch.optim.RMSprop(torch_groups(net, 0.1), lr=0.01, alpha=0.9, eps=1e-8),
    ),
    "adam": (
        lambda: optim.Adam(lr=0.01),
        lambda net: torch.optim.Adam(net.parameters(), lr=0.01, betas=(0.9, 0.999), eps=1e-8),
    ),
    "adam betas": (
        lambda: optim.Adam(lr=0.02, beta1=0.8, beta2=0.99, eps=1e-6),
        lambda net: torch.optim.Adam(net.parameters(), lr=0.02, betas=(0.8, 0.99), eps=1e-6),
    ),
    "adam coupled wd": (
        lambda: optim.Adam(lr=0.01, weight_decay=0.1),
        lambda net: torch.optim.Adam(torch_groups(net, 0.1), lr=0.01),
    ),
    "adamw": (
        lambda: optim.AdamW(lr=0.01, weight_decay=0.5),
        lambda net: torch.optim.AdamW(torch_groups(net, 0.5), lr=0.01),
    ),
    "adamw default wd": (
        lambda: optim.AdamW(lr=0.01),
        lambda net: torch.optim.AdamW(torch_groups(net, 0.01), lr=0.01),
    ),
}


@pytest.mark.parametrize("loss", ["l2", "cross_entropy"])
@pytest.mark.parametrize("case", list(CASES))
def test_optimizer_trajectory_equals_pytorch(backend, case, loss):
    ours, theirs = CASES[case]
    X, y = data(loss)
    w0, weights, losses = run_pycvnn(X, y, loss, ours())
    t_weights, t_losses, _ = run_torch(w0, X, y, loss, theirs)
    assert_same_trajectory((weights, losses), (t_weights, t_losses))


def test_ema_momentum_equals_the_lecture_formula_by_hand(backend):
    # v := beta v + (1 - beta) g; theta := theta - lr v, written out over torch's gradients.
    beta, lr = 0.9, 0.2
    X, y = data("l2")
    w0, weights, losses = run_pycvnn(X, y, "l2", optim.Momentum(lr=lr, beta=beta))
    velocity = {}

    def update(params):
        with torch.no_grad():
            for i, p in enumerate(params):
                v = velocity.get(i, torch.zeros_like(p))
                velocity[i] = beta * v + (1 - beta) * p.grad
                p -= lr * velocity[i]

    t_weights, t_losses, _ = run_torch(w0, X, y, "l2", None, update=update)
    assert_same_trajectory((weights, losses), (t_weights, t_losses))


CLIP_CASES = {
    "gd": (
        lambda c: optim.GD(lr=0.1, clip_norm=c),
        lambda net: torch.optim.SGD(net.parameters(), lr=0.1),
    ),
    "heavy_ball": (
        lambda c: optim.Momentum(lr=0.05, form="heavy_ball", clip_norm=c),
        lambda net: torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9),
    ),
    # clip the raw gradients, then add coupled weight decay (torch adds it inside step())
    "gd coupled wd": (
        lambda c: optim.GD(lr=0.1, weight_decay=0.3, clip_norm=c),
        lambda net: torch.optim.SGD(torch_groups(net, 0.3), lr=0.1),
    ),
    "adam coupled wd": (
        lambda c: optim.Adam(lr=0.01, weight_decay=0.3, clip_norm=c),
        lambda net: torch.optim.Adam(torch_groups(net, 0.3), lr=0.01),
    ),
    "adamw": (
        lambda c: optim.AdamW(lr=0.01, weight_decay=0.3, clip_norm=c),
        lambda net: torch.optim.AdamW(torch_groups(net, 0.3), lr=0.01),
    ),
    "rmsprop": (
        lambda c: optim.RMSProp(lr=0.01, clip_norm=c),
        lambda net: torch.optim.RMSprop(net.parameters(), lr=0.01, alpha=0.9),
    ),
}


@pytest.mark.parametrize("loss", ["l2", "cross_entropy"])
@pytest.mark.parametrize("case", list(CLIP_CASES))
def test_clip_norm_equals_clipping_before_the_torch_step(backend, case, loss):
    ours, theirs = CLIP_CASES[case]
    X, y = data(loss)
    clip = 0.3
    w0, weights, losses = run_pycvnn(X, y, loss, ours(clip))
    # Our rule exactly (g *= c / ||g||), applied to torch's raw gradients before step():
    t_weights, t_losses, norms = run_torch(w0, X, y, loss, theirs, clip=clip)
    assert sum(n > clip for n in norms) >= len(norms) // 2  # clipping is really exercised
    assert_same_trajectory((weights, losses), (t_weights, t_losses))
    # torch.nn.utils.clip_grad_norm_ itself scales by c / (||g|| + 1e-6), a relative change
    # of ~1e-6 / ||g|| per step: equal up to that (entries near zero get an atol).
    t_weights, t_losses, _ = run_torch(w0, X, y, loss, theirs, clip=clip, clip_fn=torch_clip)
    np.testing.assert_allclose(losses, t_losses, rtol=1e-5)
    for a_list, b_list in zip(weights, t_weights):
        for a, b in zip(a_list, b_list):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(b).max())


# ---- schedules ----------------------------------------------------------------------------------


def torch_lrs(make_scheduler, lr, epochs):
    """The lr torch uses in each epoch 0..epochs-1 (scheduler.step() at each epoch's end)."""
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=lr)
    sched = make_scheduler(opt)
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize(
    "ours,theirs,epochs",
    [
        (
            S.StepDecay(0.1, step_size=3, gamma=0.5),
            lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5),
            20,
        ),
        (
            S.StepDecay(0.3, step_size=1),
            lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=1),
            8,
        ),
        (
            S.ExponentialDecay(0.1, gamma=0.9),
            lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9),
            30,
        ),
        (
            S.CosineAnnealing(0.1, t_max=10),
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10),
            11,
        ),
        (
            S.CosineAnnealing(0.5, t_max=17, eta_min=0.01),
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=17, eta_min=0.01),
            18,
        ),
    ],
    ids=["step", "step-default-gamma", "exponential", "cosine", "cosine-eta_min"],
)
def test_schedule_values_equal_torch_schedulers(ours, theirs, epochs):
    want = torch_lrs(theirs, ours.lr, epochs)
    got = [ours(e) for e in range(epochs)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_cosine_annealing_holds_eta_min_after_t_max_where_torch_turns_back():
    # Ours stays at eta_min after t_max (torch's closed form would rise again).
    s = S.CosineAnnealing(0.1, t_max=5, eta_min=0.01)
    assert [s(e) for e in range(5, 12)] == [pytest.approx(0.01)] * 7


METRICS = [
    10.0,
    9.0,
    9.0,
    8.9995,
    9.1,
    9.2,  # plateau: improvement below the relative threshold
    7.0,
    7.0,
    6.99,
    7.5,
    7.5,
    7.5,
    7.5,  # a real improvement, then another plateau
    1.0,
    1.0,
    1.0,
    1.0,
    1.0,
    1.0,
    1.0,
    1.0,
    1.0,
    1.0,
    1.0,  # long plateau down to min_lr
]


@pytest.mark.parametrize(
    "kw",
    [
        dict(factor=0.1, patience=10),
        dict(factor=0.5, patience=2),
        dict(factor=0.5, patience=0, threshold=1e-2),
        dict(factor=0.3, patience=1, min_lr=0.02),
        dict(factor=0.5, patience=1, min_lr=0.0950000001),  # a reduction smaller than torch's eps
    ],
)
def test_reduce_on_plateau_equals_torch(kw):
    lr = 0.1 if kw.get("min_lr", 0) != 0.0950000001 else 0.1000000002
    ours = S.ReduceOnPlateau(lr, **kw)
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=lr)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt,
        mode="min",
        factor=kw["factor"],
        patience=kw["patience"],
        threshold=kw.get("threshold", 1e-4),
        threshold_mode="rel",
        cooldown=0,
        min_lr=kw.get("min_lr", 0.0),
        eps=1e-8,
    )
    got, want = [], []
    for metric in METRICS:
        got.append(ours.step(metric))
        opt.step()
        theirs.step(metric)
        want.append(opt.param_groups[0]["lr"])
        assert ours(0) == got[-1]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    if kw["patience"] < 10:
        assert got[-1] < lr  # the sequence does reduce


def test_reduce_on_plateau_in_fit_equals_torch_on_the_recorded_losses(backend):
    X, y = data("l2")
    m = pycvnn.MLP([F, H, C], activation="tanh", seed=3, dtype="float64")
    sched = S.ReduceOnPlateau(0.2, factor=0.5, patience=0, threshold=0.3)
    h = m.fit(
        X,
        y,
        loss="l2",
        optimizer=optim.GD(lr=1.0),
        epochs=8,
        batch_size=BATCH,
        seed=SEED,
        schedule=sched,
        verbose=False,
    )
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=0.2)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.3)
    want = []
    for value in h["loss"]:
        want.append(opt.param_groups[0]["lr"])
        opt.step()
        theirs.step(value)
    np.testing.assert_allclose(h["lr"], want, rtol=1e-12)
    assert h["lr"][-1] < 0.2
