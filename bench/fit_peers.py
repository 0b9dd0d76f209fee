"""A whole fit, pycvnn against PyTorch, scikit-learn and Keras: the bundled digits, one thread.

    python bench/fit_peers.py [--rounds 5] [--epochs 30]

Every library trains the same MLP (64-64-32-10, ReLU, softmax output, cross-entropy, Adam
lr 1e-3, batch 32, shuffled each epoch) on the same 80% of the digits and is scored on the
other 20%; the time is the whole fit call (PyTorch: a plain loop over shuffled index batches;
Keras 3 runs on its torch backend). Medians of interleaved rounds.
"""

import os
import statistics
import time
import warnings

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 on the torch already installed

import workloads as W  # noqa: E402
from cli_options import parse  # noqa: E402

import pycvnn  # noqa: E402

HIDDEN, LR, BATCH = (64, 32), 1e-3, 32
PEERS = ("pycvnn", "torch", "sklearn", "keras")


def data():
    X, y = pycvnn.datasets.digits()
    cut = int(0.8 * len(X))
    return X[:cut], y[:cut], X[cut:], y[cut:]


def fit_pycvnn(X, y, Xt, yt, epochs, seed):
    model = pycvnn.MLP([X.shape[1], *HIDDEN, 10], activation="relu", output="softmax", seed=seed)
    t0 = time.perf_counter()
    model.fit(
        X,
        y,
        loss="cross_entropy",
        optimizer=pycvnn.optim.Adam(lr=LR),
        epochs=epochs,
        batch_size=BATCH,
        seed=seed,
        verbose=False,
    )
    seconds = time.perf_counter() - t0
    return seconds, float(np.mean(model.predict_classes(Xt) == yt))


def fit_torch(X, y, Xt, yt, epochs, seed):
    import torch

    torch.manual_seed(seed)
    sizes = [X.shape[1], *HIDDEN, 10]
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1])
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xs, ys = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(Xs), generator=g)
        for i in range(0, len(Xs), BATCH):
            idx = order[i : i + BATCH]
            opt.zero_grad()
            loss_fn(net(Xs[idx]), ys[idx]).backward()
            opt.step()
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        pred = net(torch.from_numpy(Xt)).argmax(1).numpy()
    return seconds, float(np.mean(pred == yt))


def fit_sklearn(X, y, Xt, yt, epochs, seed):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=HIDDEN,
        solver="adam",
        learning_rate_init=LR,
        batch_size=BATCH,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        alpha=0.0,
        random_state=seed,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the epoch count here
        clf.fit(X, y)
    seconds = time.perf_counter() - t0
    return seconds, float(np.mean(clf.predict(Xt) == yt))


def fit_keras(X, y, Xt, yt, epochs, seed):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((X.shape[1],))]
        + [keras.layers.Dense(h, activation="relu") for h in HIDDEN]
        + [keras.layers.Dense(10, activation="softmax")]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=LR), loss="sparse_categorical_crossentropy"
    )
    t0 = time.perf_counter()
    model.fit(X, y, epochs=epochs, batch_size=BATCH, shuffle=True, verbose=0)
    seconds = time.perf_counter() - t0
    pred = model.predict(Xt, verbose=0).argmax(1)
    return seconds, float(np.mean(pred == yt))


RUNNERS = {"pycvnn": fit_pycvnn, "torch": fit_torch, "sklearn": fit_sklearn, "keras": fit_keras}


def available():
    """The peers that can run here, and why the others cannot."""
    missing = {peer: W.missing_reason(peer) for peer in PEERS if W.missing_reason(peer)}
    return [peer for peer in PEERS if peer not in missing], missing


def measure(rounds, epochs):
    """{peer: (median seconds, accuracy of the last round)} over interleaved rounds."""
    X, y, Xt, yt = data()
    peers, missing = available()
    times, acc = {p: [] for p in peers}, {}
    for r in range(rounds):
        for peer in peers[r % len(peers) :] + peers[: r % len(peers)]:
            seconds, acc[peer] = RUNNERS[peer](X, y, Xt, yt, epochs, seed=r)
            times[peer].append(seconds)
    return {p: (statistics.median(times[p]), acc[p]) for p in peers}, missing


def main(argv=None):
    args = parse(__doc__, argv, rounds=5, epochs=30)
    W.single_thread()
    results, missing = measure(args.rounds, args.epochs)
    base = results["pycvnn"][0]
    for peer, (seconds, accuracy) in results.items():
        print(f"{peer:8s} {seconds * 1e3:9.1f} ms  {seconds / base:6.1f}x  accuracy {accuracy:.3f}")
    for peer, why in missing.items():
        print(f"{peer:8s} skipped: {why}")


if __name__ == "__main__":
    main()
