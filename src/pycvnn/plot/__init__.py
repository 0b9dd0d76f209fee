"""The lecture's pictures, computed by pycvnn's own kernels (needs the plot extra:
pip install 'pycvnn[plot]'). Each function returns a matplotlib Figure; those with one panel
also draw into a given `ax=`."""

from .curves import activations, losses, schedules
from .descent import gd_variants, optimizer_paths
from .masks import dice_masks
from .models import confusion_matrix, decision_boundary, history

__all__ = [
    "losses",
    "activations",
    "gd_variants",
    "optimizer_paths",
    "schedules",
    "history",
    "decision_boundary",
    "confusion_matrix",
    "dice_masks",
]
