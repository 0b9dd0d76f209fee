"""Parameter checks whose errors name the parameter, the expected and the received value."""

from __future__ import annotations

import numbers
from typing import Collection, Optional, cast

import numpy as np


def check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def check_real(
    value: object,
    name: str,
    low: float,
    high: Optional[float] = None,
    low_open: bool = False,
    high_open: bool = True,
) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {value!r}")
    # typeshed's numbers.Real declares no comparison with float; a Real compares as one.
    value = cast(float, value)
    too_low = value <= low if low_open else value < low
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high or not np.isfinite(value):
        span = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'}"
        span += ")" if high is None or high_open else "]"
        raise ValueError(f"{name}: expected a finite number in {span}, got {value!r}")
    return float(value)


def check_flag(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def check_choice(value: object, name: str, choices: Collection[str], hint: str = "") -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: expected one of {sorted(choices)}{hint}, got {value!r}")
    return value
