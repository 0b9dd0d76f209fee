"""The lecture's pictures, computed by pycvnn's own kernels (needs the plot extra:
pip install 'pycvnn[plot]'). Each function returns a matplotlib Figure; those with one panel
also draw into a given `ax=`."""

from .models import confusion_matrix, decision_boundary, history  # noqa: F401  (re-exported)
