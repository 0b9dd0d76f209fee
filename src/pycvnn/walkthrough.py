"""The lecture's walkthrough: batch gradient descent on y_hat = w x + b with the MSE loss."""

from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence

import numpy as np

from . import _validate as v
from ._types import ArrayLike


class Row(NamedTuple):
    iteration: int  # numbered from 0, as in the lecture
    w: float  # after this iteration's update
    b: float  # after this iteration's update
    loss: float  # MSE computed before the update


def linear_regression(
    X: ArrayLike,
    y: ArrayLike,
    lr: float,
    w0: float = 0.0,
    b0: float = 0.0,
    iterations: int = 5,
) -> List[Row]:
    """Run `iterations` steps of batch GD; return one Row per step.

    dL/dw = -2/n sum x (y - y_hat),  dL/db = -2/n sum (y - y_hat).
    """
    x = np.asarray(X, dtype=np.float64).ravel()
    t = np.asarray(y, dtype=np.float64).ravel()
    if x.size == 0 or x.shape != t.shape:
        raise ValueError(
            f"X, y: expected two non-empty arrays of one length, got {x.shape} and {t.shape}"
        )
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(t))):
        raise ValueError("X, y: expected finite values, got NaN or Inf")
    iterations = v.integer(iterations, "iterations", minimum=0, exc=ValueError)
    lr = v.number(lr, "lr", minimum=0)
    w, b, n = v.number(w0, "w0"), v.number(b0, "b0"), x.size
    rows: List[Row] = []
    # Too large an lr overflows to inf and then nan: the table shows it, without a warning per step.
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(int(iterations)):
            residual = t - (w * x + b)
            loss = float(np.mean(residual**2))
            dw = -2.0 / n * float(np.sum(x * residual))
            db = -2.0 / n * float(np.sum(residual))
            w, b = w - lr * dw, b - lr * db
            rows.append(Row(i, w, b, loss))
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """The rows as a fixed-width table, values to 6 decimals."""
    lines = [f"{'iteration':>9}  {'w':>12}  {'b':>12}  {'loss':>12}"]
    lines += [f"{r.iteration:>9d}  {_cell(r.w)}  {_cell(r.b)}  {_cell(r.loss)}" for r in rows]
    return "\n".join(lines)


def _cell(value: float) -> str:
    # Fixed point keeps the lecture's look; a diverging run's values too wide for the column
    # switch to exponents.
    fixed = f"{value:>12.6f}"
    return fixed if len(fixed) <= 12 else f"{value:>12.5e}"


def diverged_at(rows: Sequence[Row]) -> Optional[int]:
    """The first iteration whose w, b or loss is not finite, else None."""
    for r in rows:
        if not all(np.isfinite([r.w, r.b, r.loss])):
            return r.iteration
    return None
