"""The activation registry is the one list: every entry has its kernels on both backends, a
layer, a place in the CLI's choices and in model files, and nothing lists an activation the
registry does not have."""

import numpy as np
import pytest

import pycvnn
from pycvnn import _core, activations, cli, layers
from pycvnn import reference as R

NAMES = activations.names()


def test_registry_lists_the_activations():
    assert set(NAMES) >= {"sigmoid", "tanh", "relu", "leaky_relu", "softmax"}
    assert set(activations.names(per_row=True)) == {"softmax"}


@pytest.mark.parametrize("name", NAMES)
def test_each_activation_has_kernels_on_both_backends(name):
    for module in (_core, R):
        assert callable(getattr(module, f"{name}_forward"))
        assert callable(getattr(module, f"{name}_backward"))


@pytest.mark.parametrize("name", NAMES)
def test_each_activation_has_one_layer_class_and_a_model_file_entry(name, tmp_path):
    cls = layers.ACTIVATION_LAYERS[name]
    assert cls.activation == name
    model = pycvnn.Sequential([pycvnn.Dense(3, 4), cls(), pycvnn.Dense(4, 2)], seed=0)
    model.save(tmp_path / "m.npz")
    loaded = pycvnn.load(tmp_path / "m.npz")
    x = np.random.default_rng(0).standard_normal((5, 3))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]


def test_layer_classes_are_exactly_the_registry():
    assert set(layers.ACTIVATION_LAYERS) == set(NAMES)


def test_cli_offers_every_elementwise_activation():
    parser = cli.build_parser()
    train = next(
        a
        for a in parser._subparsers._group_actions[0].choices["train"]._actions
        if "--activation" in a.option_strings
    )
    assert tuple(train.choices) == activations.names(per_row=False)


@pytest.mark.parametrize("name", NAMES)
def test_mlp_takes_each_activation_and_the_registry_init(name):
    model = pycvnn.MLP([4, 8, 2], activation=name, seed=0)
    assert model.layers[0].init == activations.REGISTRY[name].init


@pytest.mark.parametrize("name", activations.names(per_row=False))
def test_fit_through_each_activation_agrees_on_both_backends(name):
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((64, 5)), rng.integers(0, 3, 64)
    weights = {}
    for backend in ("cpp", "numpy"):
        with pycvnn.using_backend(backend):
            model = pycvnn.MLP(
                [5, 8, 3], activation=name, output="softmax", seed=1, dtype="float64"
            )
            model.fit(
                X,
                y,
                optimizer=pycvnn.optim.Adam(lr=0.01),
                epochs=3,
                batch_size=16,
                seed=0,
                verbose=False,
            )
            weights[backend] = model.get_weights()
    for got, want in zip(weights["cpp"], weights["numpy"]):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_cli_trains_with_each_elementwise_activation(capsys):
    for name in activations.names(per_row=False):
        assert cli.main(
            ["train", "--activation", name, "--epochs", "1", "--hidden", "16", "--quiet"]
        ) in (0, None)
        assert "test accuracy" in capsys.readouterr().out


def test_the_twin_has_a_backward_from_output_for_each_activation_not_needing_z():
    from pycvnn.reference import activations as RA

    for name, _, _, needs_input in RA.ACTIVATIONS:
        assert (name in RA.FROM_OUTPUT) != needs_input, name
