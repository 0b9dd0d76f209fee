"""pycvnn.sklearn against scikit-learn's own MLPs: 5-fold cross_val_score on the bundled digits.

    python bench/sklearn_cv.py [--max-iter 200] [--hidden 100] [--folds 5]

Both libraries get the same parameters (scikit-learn's defaults: one hidden layer of 100 ReLU
units, Adam lr 1e-3, batch min(200, n), alpha 1e-4, up to 200 epochs with scikit-learn's
stopping rule, random_state 0) and the same shuffled folds. The classifiers predict the digit
(score: accuracy); the regressors predict its one-hot code, ten continuous outputs (score: R2
averaged over the outputs). Time: the whole cross_val_score call, one fold after another.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn import neural_network
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, cross_val_score

import pycvnn
import pycvnn.sklearn


def run(estimator, X, y, cv):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(estimator, X, y, cv=cv)
    return scores, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    X, labels = pycvnn.datasets.digits()
    onehot = np.eye(10)[labels]
    cv = KFold(args.folds, shuffle=True, random_state=0)
    params = dict(hidden_layer_sizes=(args.hidden,), max_iter=args.max_iter, random_state=0)
    rows = []
    for kind, y, metric in (("MLPClassifier", labels, "accuracy"), ("MLPRegressor", onehot, "R2")):
        for library, module in (("pycvnn", pycvnn.sklearn), ("scikit-learn", neural_network)):
            scores, seconds = run(getattr(module, kind)(**params), X, y, cv)
            rows.append((kind, library, metric, scores.mean(), scores.std(), seconds))
    print(f"digits, {args.folds}-fold cross_val_score, hidden ({args.hidden},), "
          f"max_iter {args.max_iter}")  # fmt: skip
    print(f"{'estimator':<14}{'library':<14}{'metric':<10}{'mean':>8}{'std':>8}{'seconds':>10}")
    for kind, library, metric, mean, std, seconds in rows:
        print(f"{kind:<14}{library:<14}{metric:<10}{mean:>8.4f}{std:>8.4f}{seconds:>10.2f}")


if __name__ == "__main__":
    main()
