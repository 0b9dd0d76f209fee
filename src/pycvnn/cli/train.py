"""`pycvnn train`: load the data, split it, train an MLP and report its test accuracy."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Callable, Optional, Sequence

import numpy as np

from .. import __version__, losses, schedules
from .._types import FloatArray, IntArray
from ..activations import names
from ..optim import OPTIMIZERS
from ._report import fail, reason
from .args import (
    DATASETS,
    MAX_PARAMETERS,
    DataSpec,
    ErrorReporter,
    batch_size_arg,
    data_arg,
    epochs_arg,
    fraction_arg,
    hidden_arg,
    image_size_arg,
    learning_rate,
    plot_path,
    save_path,
    seed_arg,
)

if TYPE_CHECKING:
    from . import Parser

SCHEDULES = schedules.REGISTRY.names()
# The losses a multiclass model can train on: on class ids, or on one-hot values.
LOSSES = (*losses.names(("classes", "values")), "mse")


def parameter_count(sizes: Sequence[int]) -> int:
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def check_model_size(
    error: ErrorReporter, hidden: Sequence[int], features: int, classes: int, data: DataSpec
) -> None:
    count = parameter_count([features, *hidden, classes])
    if count > MAX_PARAMETERS:
        error(
            f"argument --hidden: {','.join(map(str, hidden))} gives a model with "
            f"{count:,} parameters on {data}; the limit is {MAX_PARAMETERS:,}"
        )


def check_train(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The checks that need more than one argument, before any data is loaded (the sizes of
    data read from a folder are checked once it is loaded)."""
    if args.data.scheme in DATASETS:
        check_model_size(parser.error, args.hidden, *DATASETS[args.data.scheme], args.data)


def make_schedule(name: str, lr: float, epochs: int) -> Optional[Callable[[int], float]]:
    if name == "constant" or lr == 0:  # every schedule of a zero lr is zero throughout
        return None
    schedule: Callable[[int], float] = schedules.REGISTRY.lookup(name).for_run(lr, epochs)
    return schedule


class _EpochCounter:
    """Counts finished epochs, so that a divergence can be reported by its epoch."""

    def __init__(self) -> None:
        self.done = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
        self.done = epoch + 1
        return False


def load_data(
    args: argparse.Namespace,
) -> tuple[FloatArray, IntArray, Optional[tuple[FloatArray, IntArray]], int, Optional[str]]:
    """(X, y, test, classes, note): the rows to split, a test set (X, y) given by the data
    itself or None, the number of classes, and a note on where the test set comes from."""
    from .. import datasets
    from ..datasets._idx import find_idx_files

    spec = args.data
    if spec.scheme == "digits":
        X, y = datasets.digits()
        return X, y, None, int(y.max()) + 1, None
    if spec.scheme == "folder":
        X, y, names = datasets.load_image_folder(spec.folder, args.image_size, not args.rgb)
        return X, y, None, len(names), None
    files = find_idx_files(spec.folder)
    X, y = datasets.load_idx(*files["train"])
    if "t10k" not in files:
        return X, y, None, int(y.max()) + 1, None
    X_test, y_test = datasets.load_idx(*files["t10k"])
    if X_test.shape[1] != X.shape[1]:
        raise ValueError(
            f"{files['t10k'][0]}: expected images of {X.shape[1]} pixels, as in "
            f"{files['train'][0]}, got {X_test.shape[1]}"
        )
    test_files = " and ".join(os.path.basename(f) for f in files["t10k"])
    note = f"the test set is {test_files} (--test-fraction does not apply)"
    return X, y, (X_test, y_test), int(max(y.max(), y_test.max())) + 1, note


def split_rows(
    error: ErrorReporter, n: int, test_fraction: float, validation_fraction: float, has_test: bool
) -> tuple[IntArray, IntArray, Optional[IntArray]]:
    """(fit rows, validation rows, test rows or None when the data has its own test set): the
    test rows a fixed split of all n rows, the validation rows a fixed split of the rest."""
    from ..datasets import split

    train, test = (np.arange(n), None) if has_test else split(n, test_fraction)
    if test is not None and not 0 < len(test) < n:
        left = "no test rows" if len(test) == 0 else "no training rows"
        error(f"argument --test-fraction: {test_fraction:g} of {n:,} rows leaves {left}")
    fit, validation = split(len(train), validation_fraction)
    if not 0 < len(validation) < len(train):
        left = "no validation rows" if len(validation) == 0 else "no rows to train on"
        error(
            f"argument --validation-fraction: {validation_fraction:g} of the {len(train):,} "
            f"training rows leaves {left}"
        )
    return train[fit], train[validation], test


def cmd_train(args: argparse.Namespace) -> int:
    import time

    from .. import TrainingDiverged, optim, set_backend
    from ..model import MLP

    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            fail("--plot needs matplotlib: pip install 'pycvnn[plot]'")
            return 2
    set_backend(args.backend)
    try:
        X, y, given_test, classes, note = load_data(args)
    except ImportError as err:  # Pillow, for folder:DIR
        fail(f"--data {args.data}: {err}")
        return 2
    except (OSError, ValueError) as err:
        args.error(f"argument --data: {err}")
    check_model_size(args.error, args.hidden, X.shape[1], classes, args.data)
    fit, validation, test = split_rows(
        args.error, len(X), args.test_fraction, args.validation_fraction, given_test is not None
    )
    X_test, y_test = given_test if given_test is not None else (X[test], y[test])
    classification = losses.get(args.loss).name in losses.names("classes")
    targets = y if classification else np.eye(classes, dtype=np.float32)[y]
    output = "softmax" if args.loss == "cross_entropy" else None
    try:
        model = MLP(
            [X.shape[1], *args.hidden, classes],
            activation=args.activation,
            output=output,
            seed=args.seed,
        )
    except MemoryError:
        fail(f"not enough memory for a model with hidden sizes {args.hidden}")
        return 1
    opt = optim.get(args.optimizer, lr=args.lr)
    batch = None if args.batch_size == "full" else args.batch_size
    if note:
        print(f"pycvnn train: {note}", file=sys.stderr)
    print(
        f"pycvnn {__version__}: {model} on {args.data} ({len(fit)} train / {len(validation)} "
        f"validation / {len(y_test)} test), {args.loss}, {opt}, batch {args.batch_size}, "
        f"{args.epochs} epochs, {args.backend} backend",
        file=sys.stderr,
    )
    counter = _EpochCounter()
    start = time.perf_counter()
    try:
        # The numpy backend's overflow warnings would bury the one line a divergence gets below.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            history = model.fit(
                X[fit],
                targets[fit],
                loss=args.loss,
                optimizer=opt,
                epochs=args.epochs,
                batch_size=batch,
                seed=args.seed,
                validation_data=(X[validation], targets[validation]),
                schedule=make_schedule(args.schedule, args.lr, args.epochs),
                callbacks=[counter],
                verbose=not args.quiet,
            )
    except TrainingDiverged:
        live_bar = not args.quiet and sys.stderr.isatty()
        print(
            "\r\x1b[K" if live_bar else "", end="", file=sys.stderr
        )  # over the bar's unfinished line
        fail(
            f"training diverged in epoch {counter.done + 1} of {args.epochs} (the loss became NaN "
            f"or Inf); try a smaller --lr than {args.lr:g}"
        )
        return 1
    except MemoryError:
        fail(
            f"not enough memory to train with hidden sizes {args.hidden} and batch {args.batch_size}"
        )
        return 1
    seconds = time.perf_counter() - start
    status = 0
    if args.plot:
        import matplotlib.pyplot as plt

        from ..plot import history as curves

        figure = curves(history)
        try:
            figure.savefig(args.plot, dpi=120)
            print(f"saved curves to {args.plot}")
        except (
            OSError,
            RuntimeError,
            ValueError,
        ) as err:  # disk full, no permission, no LaTeX for .pgf
            fail(f"could not write the curves to {args.plot}: {reason(err)}")
            status = 1
        finally:
            plt.close(figure)
    if args.save:
        try:
            model.save(args.save, optimizer=opt)
            print(f"saved model to {args.save}")
        except OSError as err:
            fail(f"could not save the model to {args.save}: {reason(err)}")
            status = 1
    accuracy = float(np.mean(model.predict_classes(X_test) == y_test))
    print(f"trained in {seconds:.2f} s; final training loss {history['loss'][-1]:.4f}")
    print(f"test accuracy: {accuracy:.4f}")
    return status


def add_parser(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "train",
        help="train an MLP on the bundled digits, MNIST-format files or a folder of images",
        description="Train an MLP and report its accuracy on held-out test rows. The data: "
        "the bundled 8x8 handwritten digits; idx:DIR, MNIST-format files in DIR "
        "(train-images-idx3-ubyte and train-labels-idx1-ubyte, optionally .gz; when the "
        "t10k-* files are there too, they are the test set); or folder:DIR, images in one "
        "folder per class (DIR/<class>/<image>.png|.jpg, resized to --image-size; needs "
        "pycvnn[images]). The test rows are a fixed split of the data (--test-fraction); the "
        "validation rows, reported each epoch, a fixed split of the rest "
        "(--validation-fraction). The model's input and output sizes come from the data.",
    )
    p.add_argument(
        "--data",
        type=data_arg,
        default=DataSpec("digits"),
        metavar="DATA",
        help="digits (the default), idx:DIR or folder:DIR",
    )
    p.add_argument(
        "--dataset", dest="data", type=data_arg, metavar="DATA", help="the same as --data"
    )
    p.add_argument(
        "--test-fraction",
        type=fraction_arg,
        default=0.2,
        metavar="F",
        help="share of the rows held out for the test (default 0.2; not used with t10k files)",
    )
    p.add_argument(
        "--validation-fraction",
        type=fraction_arg,
        default=0.1,
        metavar="F",
        help="share of the remaining rows held out for validation (default 0.1)",
    )
    p.add_argument(
        "--image-size",
        type=image_size_arg,
        default=(28, 28),
        metavar="N|WxH",
        help="size folder:DIR images are resized to, in pixels (default 28)",
    )
    p.add_argument(
        "--rgb", action="store_true", help="read folder:DIR images in colour (default grayscale)"
    )
    p.add_argument(
        "--hidden",
        type=hidden_arg,
        default="64,32",
        help="hidden sizes, comma-separated, '' for none (default 64,32)",
    )
    p.add_argument(
        "--activation",
        default="relu",
        choices=names(per_row=False),
        help="hidden activation (default relu)",
    )
    p.add_argument(
        "--loss", default="cross_entropy", choices=LOSSES, help="loss (default cross_entropy)"
    )
    p.add_argument(
        "--optimizer", default="adam", choices=list(OPTIMIZERS), help="optimizer (default adam)"
    )
    p.add_argument("--lr", type=learning_rate, default=0.001, help="learning rate (default 0.001)")
    p.add_argument("--schedule", default="constant", choices=SCHEDULES, help="lr schedule")
    p.add_argument("--epochs", type=epochs_arg, default=30, help="epochs (default 30)")
    p.add_argument(
        "--batch-size",
        type=batch_size_arg,
        default="32",
        help="mini-batch size, 1 for stochastic, 'full' for batch GD (default 32)",
    )
    p.add_argument(
        "--seed", type=seed_arg, default=0, help="seed for init and shuffling (default 0)"
    )
    p.add_argument(
        "--backend", choices=["cpp", "numpy"], default="cpp", help="backend (default cpp)"
    )
    p.add_argument(
        "--plot",
        metavar="PATH",
        type=plot_path,
        help="save loss/accuracy curves (needs matplotlib)",
    )
    p.add_argument("--save", metavar="PATH", type=save_path, help="save the trained model (.npz)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train, check=lambda args, p=p: check_train(p, args), error=p.error)
