"""The three layers agree on bad input: each bad value fed to the public function, to the
compiled kernel (pycvnn._core) and to its NumPy twin (pycvnn.reference) raises the same
exception type, and each message names the argument. Structure (types, shapes) is checked by
the kernels; values the kernels' math cannot take (alpha < 0, delta <= 0, smooth < 0, an
unknown reduction, non-finite options) are checked there too, and the public layer checks no
differently."""

import numpy as np
import pytest

from pycvnn import _core, activations, losses
from pycvnn import reference as R

Z = np.linspace(-1, 1, 6).reshape(2, 3)
T = np.zeros((2, 3))
NOT_NUMBERS = [object(), "a", None]

# (public function, kernel name, positional arrays, {bad argument: [bad values]})
CASES = []
for name, _, has_alpha, _ in _core.ACTIVATIONS:
    bad = {"alpha": [-0.5, float("nan"), float("inf")]} if has_alpha else {}
    CASES.append((activations.get(name).forward, f"{name}_forward", (Z,), bad))
    CASES.append((activations.get(name).backward, f"{name}_backward", (Z, Z), bad))
REDUCTION = {"reduction": ["avg", "MEAN"]}
IDS = np.array([0, 2])
for name, target in (("l1", T), ("l2", T), ("hinge", IDS), ("squared_hinge", IDS)):
    CASES.append((getattr(losses, name), f"{name}_forward", (Z, target), REDUCTION))
    CASES.append((getattr(losses, f"{name}_grad"), f"{name}_backward", (Z, target), REDUCTION))
for name, option, bad in (
    ("huber", "delta", [0.0, -1.0, float("nan"), float("inf")]),
    ("dice", "smooth", [-1.0, float("nan"), float("inf")]),
):
    CASES.append((getattr(losses, name), f"{name}_forward", (Z, T), {option: bad, **REDUCTION}))
    CASES.append(
        (getattr(losses, f"{name}_grad"), f"{name}_backward", (Z, T), {option: bad, **REDUCTION})
    )

PARAMS = [
    (pub, kern, arrays, arg, value)
    for pub, kern, arrays, bad in CASES
    for arg, values in bad.items()
    for value in values
]


def outcome(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except (TypeError, ValueError) as err:
        return type(err), str(err)
    return None, ""


@pytest.mark.parametrize(
    "public,kernel,arrays,arg,value", PARAMS, ids=[f"{p[1]}-{p[3]}={p[4]!r}" for p in PARAMS]
)
def test_a_bad_value_is_the_same_error_in_every_layer(public, kernel, arrays, arg, value):
    got = {
        "public": outcome(public, *arrays, **{arg: value}),
        "_core": outcome(getattr(_core, kernel), *arrays, **{arg: value}),
        "reference": outcome(getattr(R, kernel), *arrays, **{arg: value}),
    }
    types = {layer: kind for layer, (kind, _) in got.items()}
    assert len(set(types.values())) == 1 and None not in types.values(), types
    for layer, (_, message) in got.items():
        assert message.startswith(f"{arg}:"), (layer, message)


NUMBER_ARGS = [
    (pub, kern, arrays, arg)
    for pub, kern, arrays, bad in CASES
    for arg in bad
    if arg != "reduction"
]


@pytest.mark.parametrize(
    "public,kernel,arrays,arg", NUMBER_ARGS, ids=[f"{p[1]}-{p[3]}" for p in NUMBER_ARGS]
)
def test_a_non_number_is_a_type_error_in_every_layer(public, kernel, arrays, arg):
    for value in NOT_NUMBERS:
        for fn in (public, getattr(_core, kernel), getattr(R, kernel)):
            kind, message = outcome(fn, *arrays, **{arg: value})
            assert kind is TypeError and arg in message, (fn, value, kind, message)
