"""The `pycvnn` command line: `pycvnn train`, `pycvnn walkthrough`, `pycvnn info`."""

import argparse
import sys

from . import __version__, walkthrough


SCHEDULES = ("constant", "step", "exponential", "cosine", "warmup", "plateau")
LOSSES = ("cross_entropy", "hinge", "squared_hinge", "l2", "mse", "l1", "huber")


def make_schedule(name, lr, epochs):
    from . import schedules as S

    if name == "constant":
        return None
    if name == "step":
        return S.StepDecay(lr, step_size=max(1, epochs // 3), gamma=0.1)
    if name == "exponential":
        return S.ExponentialDecay(lr, gamma=0.95)
    if name == "cosine":
        return S.CosineAnnealing(lr, t_max=max(1, epochs))
    if name == "warmup":
        warm = max(1, epochs // 10)
        return S.Warmup(lr, warm, then=S.CosineAnnealing(lr, t_max=max(1, epochs - warm)))
    return S.ReduceOnPlateau(lr, factor=0.5, patience=3)


def split(n, test_fraction=0.2, seed=20240101):
    """The fixed train/test split: the same permutation every run, whatever --seed is."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return order[n_test:], order[:n_test]


def cmd_train(args):
    import time

    import numpy as np

    from . import datasets, optim, set_backend
    from .model import MLP

    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("pycvnn train: --plot needs matplotlib: pip install 'pycvnn[plot]'", file=sys.stderr)
            return 2
    set_backend(args.backend)
    X, y = datasets.digits()
    train, test = split(len(X))
    classes = int(y.max()) + 1
    hidden = [int(h) for h in args.hidden.split(",") if h.strip()] if args.hidden else []
    classification = args.loss in ("cross_entropy", "hinge", "squared_hinge")
    targets = y if classification else np.eye(classes, dtype=np.float32)[y]
    output = "softmax" if args.loss == "cross_entropy" else None
    model = MLP([X.shape[1], *hidden, classes], activation=args.activation, output=output,
                seed=args.seed)
    opt = optim.get(args.optimizer, lr=args.lr)
    batch = None if args.batch_size == "full" else int(args.batch_size)
    print(f"pycvnn {__version__}: {model} on digits ({len(train)} train / {len(test)} test), "
          f"{args.loss}, {opt}, batch {args.batch_size}, {args.epochs} epochs, {args.backend} backend",
          file=sys.stderr)
    start = time.perf_counter()
    history = model.fit(X[train], targets[train], loss=args.loss, optimizer=opt,
                        epochs=args.epochs, batch_size=batch, seed=args.seed,
                        validation_data=(X[test], targets[test]),
                        schedule=make_schedule(args.schedule, args.lr, args.epochs),
                        verbose=not args.quiet)
    seconds = time.perf_counter() - start
    if args.plot:
        from .plot import plot_history

        plot_history(history, args.plot)
        print(f"saved curves to {args.plot}")
    if args.save:
        model.save(args.save)
        print(f"saved model to {args.save}")
    accuracy = float(np.mean(model.predict_classes(X[test]) == y[test]))
    print(f"trained in {seconds:.2f} s; final training loss {history['loss'][-1]:.4f}")
    print(f"test accuracy: {accuracy:.4f}")
    return 0


def batch_size_arg(text):
    if text == "full" or (text.isdigit() and int(text) >= 1):
        return text
    raise argparse.ArgumentTypeError(f"expected a positive int or 'full', got {text!r}")


def cmd_walkthrough(args):
    rows = walkthrough.linear_regression(
        [1.0, 2.0, 3.0], [2.0, 4.0, 6.0], args.lr, args.w0, args.b0, args.iterations
    )
    print("Batch gradient descent on y_hat = w x + b, MSE loss, X = [1, 2, 3], y = [2, 4, 6]")
    print(f"lr = {args.lr}, w0 = {args.w0}, b0 = {args.b0}; loss is taken before each update")
    print(walkthrough.format_table(rows))


def cmd_info(args):
    from . import _core, get_backend, get_num_threads

    print(f"pycvnn {__version__}")
    print(f"backend: {get_backend()}; BLAS: {_core._blas_name()} with {get_num_threads()} thread(s)")


def build_parser():
    parser = argparse.ArgumentParser(prog="pycvnn", description="Feed-forward neural networks.")
    parser.add_argument("--version", action="version", version=f"pycvnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train an MLP on the bundled 8x8 digits",
                       description="Train an MLP on the bundled 8x8 handwritten digits (a fixed "
                       "80/20 split) and report held-out accuracy.")
    p.add_argument("--dataset", choices=["digits"], default="digits", help="data set (digits)")
    p.add_argument("--hidden", default="64,32", help="hidden sizes, comma-separated (default 64,32)")
    p.add_argument("--activation", default="relu",
                   choices=["relu", "leaky_relu", "tanh", "sigmoid"], help="hidden activation")
    p.add_argument("--loss", default="cross_entropy", choices=LOSSES, help="loss (default cross_entropy)")
    p.add_argument("--optimizer", default="adam",
                   choices=["gd", "sgd", "momentum", "rmsprop", "adam", "adamw"], help="optimizer")
    p.add_argument("--lr", type=float, default=0.001, help="learning rate (default 0.001)")
    p.add_argument("--schedule", default="constant", choices=SCHEDULES, help="lr schedule")
    p.add_argument("--epochs", type=int, default=30, help="epochs (default 30)")
    p.add_argument("--batch-size", type=batch_size_arg, default="32",
                   help="mini-batch size, 1 for stochastic, 'full' for batch GD (default 32)")
    p.add_argument("--seed", type=int, default=0, help="seed for init and shuffling (default 0)")
    p.add_argument("--backend", choices=["cpp", "numpy"], default="cpp", help="backend (default cpp)")
    p.add_argument("--plot", metavar="PATH", help="save loss/accuracy curves (needs matplotlib)")
    p.add_argument("--save", metavar="PATH", help="save the trained model (.npz)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("walkthrough", help="the lecture's gradient-descent walkthrough")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    p.add_argument("--w0", type=float, default=0.0, help="initial w (default 0)")
    p.add_argument("--b0", type=float, default=0.0, help="initial b (default 0)")
    p.add_argument("--iterations", type=int, default=5, help="iterations (default 5)")
    p.set_defaults(func=cmd_walkthrough)

    p = sub.add_parser("info", help="version, backend and BLAS")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
