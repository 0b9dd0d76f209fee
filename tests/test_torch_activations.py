"""Every registered activation against PyTorch's function of the same name (torch.nn.functional
<name>, default arguments), forward and backward, on both backends, float32 and float64, and a
whole MLP's gradients through it. Skipped without torch (the `compare` extra)."""

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (pip install 'pycvnn[compare]', torch==2.13.0)"
)

from nethelpers import ACTIVATION_NAMES, BACKENDS, backend_fixture  # noqa: E402

import pycvnn  # noqa: E402
from pycvnn import activations as A  # noqa: E402

backend = pytest.fixture(params=BACKENDS)(backend_fixture)
F = torch.nn.functional
TORCH = {"leaky_relu": lambda t: F.leaky_relu(t, 0.01), "softmax": lambda t: F.softmax(t, -1)}
# float32 forwards differ from torch's by a few ulps of the result (each side rounds its own
# exp/erfc); float64 to round-off. softplus: torch returns x itself past x > 20 (its threshold),
# which is off by log1p(exp(-x)) < 2e-9 relative there.
RTOL = {np.float32: 4e-6, np.float64: 1e-12}


def torch_fn(name):
    return TORCH.get(name, getattr(F, name))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_matches_torch(backend, name, dtype):
    rng = np.random.default_rng(5)
    z = np.concatenate(
        [
            rng.standard_normal((16, 7)) * 3,
            rng.standard_normal((4, 7)) * 30,
            np.linspace(-8, 8, 7)[None],
        ]
    ).astype(dtype)
    dout = rng.standard_normal(z.shape).astype(dtype)
    t = torch.tensor(z, requires_grad=True)
    out = torch_fn(name)(t)
    out.backward(torch.tensor(dout))
    want, want_grad = out.detach().numpy(), t.grad.numpy()
    rtol = max(RTOL[dtype], 2e-9) if name == "softplus" else RTOL[dtype]
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(A.get(name)(z), want, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(
        A.get(name).backward(z, dout),
        want_grad,
        rtol=rtol,
        atol=rtol * float(np.abs(want_grad).max()),
    )


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_mlp_gradients_through_each_activation_match_torch(backend, name):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((9, 4))
    model = pycvnn.MLP([4, 6, 5, 3], activation=name, seed=2, dtype="float64")
    out = model.forward(X)
    dout = rng.standard_normal(out.shape)
    model.backward(dout)
    weights = [torch.tensor(w, requires_grad=True) for w in model.get_weights()]
    a = torch.tensor(X)
    for i in range(0, len(weights), 2):
        a = a @ weights[i].T + weights[i + 1]
        if i + 2 < len(weights):
            a = torch_fn(name)(a)
    np.testing.assert_allclose(out, a.detach().numpy(), rtol=1e-12, atol=1e-12)
    a.backward(torch.tensor(dout))
    for got, w in zip(model.gradients(), weights):
        np.testing.assert_allclose(got, w.grad.numpy(), rtol=1e-10, atol=1e-12)
