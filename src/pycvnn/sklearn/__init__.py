"""scikit-learn estimators over pycvnn models: MLPClassifier and MLPRegressor.

They take scikit-learn's MLP parameters (and a few of pycvnn's own), train a pycvnn model with
the C++ epoch loop, and pass scikit-learn's estimator checks, so they work in Pipeline,
GridSearchCV, cross_val_score and clone. This module needs scikit-learn (the `sklearn`
extra); `import pycvnn` alone never imports it.
"""

from ._estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
