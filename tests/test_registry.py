"""The activation registry is the one list: every entry has its kernels on both backends, a
layer, a place in the CLI's choices and in model files, and nothing lists an activation the
registry does not have."""

import numpy as np
import pytest

import pycvnn
from pycvnn import _core, activations, cli, layers
from pycvnn import reference as R
from pycvnn.cli.train import LOSSES, SCHEDULES

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
    # __all__ is written out for type checkers; every layer class must still be in it and exported.
    classes = {cls.__name__ for cls in layers.ACTIVATION_LAYERS.values()} | {"Dense", "LeakyReLU"}
    assert classes | {"Layer"} == set(layers.__all__)
    assert all(getattr(pycvnn, name) is getattr(layers, name) for name in classes)


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


# ---- losses, optimizers, schedules ---------------------------------------------------------


def test_the_core_and_the_twin_list_the_same_losses_and_rules():
    assert _core.LOSSES == R.LOSSES
    assert _core.RULES == R.RULES


@pytest.mark.parametrize("name,option", _core.LOSSES)
def test_each_core_loss_is_registered_with_its_option(name, option):
    info = pycvnn.losses.REGISTRY[name]
    assert (info.option[0] if info.option else None) == option
    cls = pycvnn.losses.get(name)
    assert cls.name == name and set(cls.options) == ({option} if option else set())
    assert pycvnn.reference.LossSpec(name).name == _core.LossSpec(name).name == name


def test_the_loss_registry_has_nothing_the_core_lacks():
    assert set(pycvnn.losses.REGISTRY) == {name for name, _ in _core.LOSSES}


@pytest.mark.parametrize("name", [n for n, info in pycvnn.losses.REGISTRY.items() if info.option])
def test_loss_functions_take_their_option_by_position_and_by_name(name):
    option = pycvnn.losses.REGISTRY[name].option[0]
    pred, target = {
        "huber": (np.array([0.0, 3.0]), np.zeros(2)),
        "cross_entropy": (np.array([[1.0, 0.0]]), np.array([0])),
        "binary_cross_entropy": (np.array([0.5]), np.array([1.0])),
        "dice": (np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]])),
    }[name]
    fn = getattr(pycvnn.losses, name)
    value = {"huber": 2.0, "cross_entropy": True, "binary_cross_entropy": True, "dice": 0.5}[name]
    assert fn(pred, target, value) == fn(pred, target, **{option: value})
    with pytest.raises(TypeError):
        fn(pred, target, value, "mean", "extra")


def test_cli_losses_are_those_a_multiclass_model_trains_on():
    kinds = {info.targets for info in pycvnn.losses.REGISTRY.values()}
    assert kinds == {"classes", "values", "binary", "masks"}
    assert set(LOSSES) == set(pycvnn.losses.names(("classes", "values"))) | {"mse"}


@pytest.mark.parametrize("name", pycvnn.optim.OPTIMIZERS.names())
def test_each_optimizer_runs_a_core_rule_with_its_state(name):
    cls = pycvnn.optim.OPTIMIZERS[name]
    assert dict(_core.RULES)[cls.rule] == cls.n_state


def test_every_core_rule_has_an_optimizer():
    rules = {cls.rule for cls in pycvnn.optim.OPTIMIZERS.values()}
    assert rules == set(dict(_core.RULES))


@pytest.mark.parametrize("name", pycvnn.schedules.REGISTRY.names())
def test_each_schedule_has_a_run_default_and_the_cli_offers_it(name):
    schedule = pycvnn.schedules.REGISTRY[name].for_run(0.1, 20)
    lrs = [schedule(e) for e in range(20)]
    assert all(0 <= lr <= 0.1 for lr in lrs) and lrs[0] > 0
    assert name in SCHEDULES
    assert type(pycvnn.schedules.get(name, **_schedule_options(name))) is type(schedule)


def _schedule_options(name):
    return {"step": {"step_size": 2}, "exponential": {"gamma": 0.9}, "cosine": {"t_max": 5}}.get(
        name, {"epochs": 3} if name == "warmup" else {}
    ) | {"lr": 0.1}


def test_registries_reject_unknown_names_and_options_by_name():
    with pytest.raises(ValueError, match="^optimizer: expected one of"):
        pycvnn.optim.get("adamm")
    with pytest.raises(ValueError, match="^schedule: expected one of"):
        pycvnn.schedules.get("linear", lr=0.1)
    with pytest.raises(TypeError, match="unknown option"):
        pycvnn.losses.get("huber", delta=1.0, smooth=2.0)
    with pytest.raises(TypeError, match="unknown option"):
        pycvnn.optim.get("gd", beta=0.9)
