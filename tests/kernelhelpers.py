"""Shared helpers for the tests that check pycvnn._core's kernels (test_cross_backend,
test_fuzz_core, test_core_kernels). Not collected by pytest (the name does not start with
test_)."""

import numpy as np


def walk_results(got, want, where, values, sequences=(tuple,)):
    """Assert got has want's structure: the same nesting of `sequences` and their lengths, None
    where want has None, a float where want has a float, and an array of want's dtype and shape
    where want has an array; then values(got, want, where) compares each such leaf's values."""
    if isinstance(want, sequences):
        assert isinstance(got, sequences) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            walk_results(g, w, f"{where}[{i}]", values, sequences)
        return
    if want is None:
        assert got is None, where
        return
    if isinstance(want, float):
        assert isinstance(got, float), f"{where}: expected a float, got {type(got).__name__}"
    else:
        assert isinstance(got, np.ndarray), f"{where}: expected an array, got {type(got).__name__}"
        assert got.dtype == want.dtype, f"{where}: dtype {got.dtype} != {want.dtype}"
        assert got.shape == want.shape, f"{where}: shape {got.shape} != {want.shape}"
    values(got, want, where)


def optimizer_cases(heavy_ball_beta):
    """(rule, state buffers, hyperparameters) for gd, momentum in each form, rmsprop, adam and
    adamw; heavy_ball_beta is the beta of the two heavy-ball cases."""
    adam = {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    heavy_ball = {"lr": 0.1, "beta": heavy_ball_beta, "form": "heavy_ball"}
    return [
        ("gd", 0, {"lr": 0.1}),
        ("momentum", 1, {"lr": 0.1, "beta": 0.9, "form": "ema", "nesterov": False}),
        ("momentum", 1, {**heavy_ball, "nesterov": False}),
        ("momentum", 1, {**heavy_ball, "nesterov": True}),
        ("rmsprop", 1, {"lr": 0.01, "rho": 0.9, "eps": 1e-8}),
        ("adam", 2, adam),
        ("adamw", 2, {**adam, "weight_decay": 0.1}),
    ]
