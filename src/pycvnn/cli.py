"""The `pycvnn` command line: `pycvnn train`, `pycvnn walkthrough`, `pycvnn figures`,
`pycvnn export`, `pycvnn sweep`, `pycvnn info`, `pycvnn playground`."""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import TYPE_CHECKING, Callable, Literal, NamedTuple, NoReturn, Optional, Sequence, Union

import numpy as np

from . import __version__, _sweep_cli, losses, schedules, walkthrough
from ._types import FloatArray, IntArray
from .activations import names
from .optim import OPTIMIZERS

if TYPE_CHECKING:
    import socket

# How the argument checks report a problem that needs more than one argument: parser.error.
ErrorReporter = Callable[[str], NoReturn]

SCHEDULES = schedules.REGISTRY.names()
# The losses a multiclass model can train on: on class ids, or on one-hot values.
LOSSES = (*losses.names(("classes", "values")), "mse")
DATASETS = {"digits": (64, 10)}  # input features and classes, to size the model before loading
DATA_SCHEMES = ("idx", "folder")  # --data SCHEME:DIR
MAX_IMAGE_SIDE = 4096

# Bounds that turn a typo (an extra digit or three) into a clear error instead of a
# MemoryError or a run that never ends.
MAX_HIDDEN = 100_000
MAX_PARAMETERS = 100_000_000
MAX_EPOCHS = 100_000
MAX_BATCH = 1_000_000
MAX_ITERATIONS = 10_000


# ---- argument types: each returns the parsed value or raises ArgumentTypeError ------------------


def _int_in(text: str, lo: float, hi: float, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not lo <= value <= hi:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _float(text: str, what: str, minimum: Optional[float] = None) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value + 0.0  # -0.0 -> 0.0


def learning_rate(text: str) -> float:
    return _float(text, "a finite number >= 0", minimum=0)


def finite_float(text: str) -> float:
    return _float(text, "a finite number")


def epochs_arg(text: str) -> int:
    return _int_in(text, 1, MAX_EPOCHS, f"an int from 1 to {MAX_EPOCHS:,}")


def seed_arg(text: str) -> int:
    return _int_in(text, 0, math.inf, "a non-negative int")


def iterations_arg(text: str) -> int:
    return _int_in(text, 0, MAX_ITERATIONS, f"an int from 0 to {MAX_ITERATIONS:,}")


def batch_size_arg(text: str) -> Union[int, Literal["full"]]:
    if text == "full":
        return "full"
    return _int_in(text, 1, MAX_BATCH, f"an int from 1 to {MAX_BATCH:,} or 'full'")


def port_arg(text: str) -> int:
    return _int_in(text, 1, 65535, "a port from 1 to 65535")


def hidden_arg(text: str) -> list[int]:
    """'64,32' -> [64, 32]; '' -> [] (no hidden layer)."""
    if not text.strip():
        return []
    what = f"comma-separated layer sizes, each an int from 1 to {MAX_HIDDEN:,}"
    sizes: list[int] = []
    for item in text.split(","):
        try:
            sizes.append(_int_in(item, 1, MAX_HIDDEN, what))
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"expected {what}, got {text!r} (bad size {item!r})"
            ) from None
    return sizes


class DataSpec(NamedTuple):
    """A parsed --data value: the scheme (digits, idx, folder) and its folder (None for digits)."""

    scheme: str
    folder: Optional[str] = None

    def __str__(self) -> str:
        return self.scheme if self.folder is None else f"{self.scheme}:{self.folder}"


def data_arg(text: str) -> DataSpec:
    """'digits', 'idx:DIR' (MNIST-format files) or 'folder:DIR' (one folder of images per class)."""
    what = "digits, idx:DIR or folder:DIR"
    if text in DATASETS:
        return DataSpec(text)
    scheme, colon, folder = text.partition(":")
    if not colon or scheme not in DATA_SCHEMES:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    if not folder:
        raise argparse.ArgumentTypeError(f"expected {scheme}:DIR with a folder, got {text!r}")
    if not os.path.isdir(folder):
        problem = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise argparse.ArgumentTypeError(f"{text!r}: the folder {folder!r} {problem}")
    return DataSpec(scheme, folder)


def fraction_arg(text: str) -> float:
    value = _float(text, "a fraction between 0 and 1 (both excluded)")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a fraction between 0 and 1 (both excluded), got {text!r}"
        )
    return value


def image_size_arg(text: str) -> tuple[int, int]:
    """'28' -> (28, 28); '32x24' -> (32, 24) as (width, height)."""
    what = f"N or WIDTHxHEIGHT, each an int from 1 to {MAX_IMAGE_SIDE}"
    parts = text.lower().split("x")
    if len(parts) > 2:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    try:
        sizes = [_int_in(part, 1, MAX_IMAGE_SIDE, what) for part in parts]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    return (sizes[0], sizes[-1])


def _folder_for(text: str, what: str) -> None:
    """The checks a path to be written needs before training: a name, an existing, writable folder."""
    if not text:
        raise argparse.ArgumentTypeError(f"expected a file path for the {what}, got ''")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(
            f"expected a file path for the {what}, got the folder {text!r}"
        )
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(
            f"cannot write {text!r}: the folder {folder!r} does not exist"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(
            f"cannot write {text!r}: the folder {folder!r} is not writable"
        )


def save_path(text: str) -> str:
    _folder_for(text, "model")
    return text


def plot_path(text: str) -> str:
    _folder_for(text, "curves")
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        return text  # cmd_train says how to install matplotlib, before training
    formats = FigureCanvasBase.get_supported_filetypes()
    extension = os.path.splitext(text)[1][1:].lower()
    if extension not in formats:
        names = ", ".join("." + f for f in sorted(formats))
        raise argparse.ArgumentTypeError(
            f"expected a file name ending in one of {names}, got {text!r}"
        )
    return text


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


def _fail(message: str, command: str = "train") -> None:
    print(f"pycvnn {command}: {message}", file=sys.stderr)


def _reason(err: BaseException) -> str:
    # strerror leaves out the file name, which for a save is the temporary file's, not the user's.
    return err.strerror if isinstance(err, OSError) and err.strerror else str(err)


def load_data(
    args: argparse.Namespace,
) -> tuple[FloatArray, IntArray, Optional[tuple[FloatArray, IntArray]], int, Optional[str]]:
    """(X, y, test, classes, note): the rows to split, a test set (X, y) given by the data
    itself or None, the number of classes, and a note on where the test set comes from."""
    from . import datasets
    from .datasets._idx import find_idx_files

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
    from .datasets import split

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

    from . import TrainingDiverged, optim, set_backend
    from .model import MLP

    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            _fail("--plot needs matplotlib: pip install 'pycvnn[plot]'")
            return 2
    set_backend(args.backend)
    try:
        X, y, given_test, classes, note = load_data(args)
    except ImportError as err:  # Pillow, for folder:DIR
        _fail(f"--data {args.data}: {err}")
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
        _fail(f"not enough memory for a model with hidden sizes {args.hidden}")
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
        _fail(
            f"training diverged in epoch {counter.done + 1} of {args.epochs} (the loss became NaN "
            f"or Inf); try a smaller --lr than {args.lr:g}"
        )
        return 1
    except MemoryError:
        _fail(
            f"not enough memory to train with hidden sizes {args.hidden} and batch {args.batch_size}"
        )
        return 1
    seconds = time.perf_counter() - start
    status = 0
    if args.plot:
        import matplotlib.pyplot as plt

        from .plot import history as curves

        figure = curves(history)
        try:
            figure.savefig(args.plot, dpi=120)
            print(f"saved curves to {args.plot}")
        except (
            OSError,
            RuntimeError,
            ValueError,
        ) as err:  # disk full, no permission, no LaTeX for .pgf
            _fail(f"could not write the curves to {args.plot}: {_reason(err)}")
            status = 1
        finally:
            plt.close(figure)
    if args.save:
        try:
            model.save(args.save, optimizer=opt)
            print(f"saved model to {args.save}")
        except OSError as err:
            _fail(f"could not save the model to {args.save}: {_reason(err)}")
            status = 1
    accuracy = float(np.mean(model.predict_classes(X_test) == y_test))
    print(f"trained in {seconds:.2f} s; final training loss {history['loss'][-1]:.4f}")
    print(f"test accuracy: {accuracy:.4f}")
    return status


def cmd_walkthrough(args: argparse.Namespace) -> None:
    rows = walkthrough.linear_regression(
        [1.0, 2.0, 3.0], [2.0, 4.0, 6.0], args.lr, args.w0, args.b0, args.iterations
    )
    print("Batch gradient descent on y_hat = w x + b, MSE loss, X = [1, 2, 3], y = [2, 4, 6]")
    print(f"lr = {args.lr}, w0 = {args.w0}, b0 = {args.b0}; loss is taken before each update")
    print(walkthrough.format_table(rows))
    bad = walkthrough.diverged_at(rows)
    if bad is not None:
        print(
            f"pycvnn walkthrough: the values overflow from iteration {bad} on: lr = {args.lr:g} is too "
            "large and gradient descent diverges",
            file=sys.stderr,
        )


# The figures `pycvnn figures` writes (a list here, so --help and --only need no matplotlib).
FIGURE_NAMES = (
    "losses",
    "activations",
    "gd_variants",
    "optimizers_quadratic",
    "optimizers_rosenbrock",
    "optimizers_saddle",
    "schedules",
    "dice",
    "digits_curves",
    "digits_confusion",
)


def dpi_arg(text: str) -> int:
    return _int_in(text, 20, 600, "a resolution from 20 to 600 dots per inch")


def out_folder(text: str) -> str:
    """A folder to write into: it may not exist yet, but it may not be a file."""
    if not text:
        raise argparse.ArgumentTypeError("expected a folder, got ''")
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"expected a folder, got the file {text!r}")
    return text


def cmd_figures(args: argparse.Namespace) -> int:
    import time

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        _fail("needs matplotlib: pip install 'pycvnn[plot]'", "figures")
        return 2
    from .plot import gallery

    start = time.perf_counter()
    try:
        paths = gallery.write(args.out, args.only, args.dpi)
    except OSError as err:
        _fail(f"could not write the figures to {args.out}: {_reason(err)}", "figures")
        return 1
    for path in paths:
        print(f"{path}  {os.path.getsize(path) / 1024:.0f} KiB")
    print(f"wrote {len(paths)} figure(s) in {time.perf_counter() - start:.1f} s")
    return 0


def onnx_path(text: str) -> str:
    _folder_for(text, "ONNX model")
    return text


def opset_arg(text: str) -> int:
    return _int_in(text, 1, math.inf, "an ONNX opset number (an int >= 1)")


def check_export(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The opset's range is the installed onnx package's, so it is checked once onnx is known
    to be there (cmd_export says how to install it otherwise)."""
    try:
        from .export import MAX_OPSET, MIN_OPSET
    except ImportError:
        return
    if not MIN_OPSET <= args.opset <= MAX_OPSET:
        parser.error(
            f"argument --opset: expected an int from {MIN_OPSET} to {MAX_OPSET}, got {args.opset}"
        )


def cmd_export(args: argparse.Namespace) -> int:
    try:
        from . import export
    except ImportError as err:
        _fail(str(err), "export")
        return 2
    from .model import load

    try:
        model = load(args.model)
    except (FileNotFoundError, ValueError) as err:  # their messages name the file
        _fail(_reason(err), "export")
        return 1
    except OSError as err:
        _fail(f"could not read {args.model}: {_reason(err)}", "export")
        return 1
    try:
        export.to_onnx(model, args.onnx, args.opset)
    except OSError as err:
        _fail(f"could not write {args.onnx}: {_reason(err)}", "export")
        return 1
    print(f"wrote {args.onnx} (ONNX opset {args.opset}): {model}")
    return 0


def cmd_info(args: argparse.Namespace) -> None:
    from . import _core, get_backend, get_num_threads

    print(f"pycvnn {__version__}")
    print(
        f"backend: {get_backend()}; BLAS: {_core._blas_name()} with {get_num_threads()} thread(s)"
    )


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket listening on host:port. Its proto is IPPROTO_TCP, as getaddrinfo gives it:
    asyncio sets TCP_NODELAY only on such sockets, and without it a small response waits
    40 ms on each keep-alive request (Nagle's algorithm against the client's delayed ACK)."""
    import socket

    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    return sock


def cmd_playground(args: argparse.Namespace) -> int:
    # The web stack is imported here, not at the top, so the other commands start fast.
    try:
        import uvicorn

        from .playground.app import create_app
    except ImportError as err:
        print(
            f"pycvnn playground: needs {err.name or 'the web stack'}, which is not installed: "
            "pip install 'pycvnn[playground]'",
            file=sys.stderr,
        )
        return 2
    import threading
    import time
    import webbrowser

    # Listen before printing the URL: a host that does not resolve or a port in use is a
    # one-line error, not a server that announces itself and dies.
    try:
        listener = listen(args.host, args.port)
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno and err.errno > 0 else err.strerror or err
        print(
            f"pycvnn playground: cannot listen on {args.host}:{args.port}: {reason}",
            file=sys.stderr,
        )
        return 1
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{args.port}/"
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(),
            host=args.host,
            port=args.port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
    )

    def open_when_up() -> None:
        while not (server.started or server.should_exit):
            time.sleep(0.05)
        if server.started:
            webbrowser.open(url)

    print(f"pycvnn playground: {url}", flush=True)
    if args.open:
        threading.Thread(target=open_when_up, daemon=True).start()
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it shut down on
        pass
    return 0 if server.started else 1


class Parser(argparse.ArgumentParser):
    """argparse, but a bad value is one line on stderr (the usage is a --help away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> Parser:
    parser = Parser(prog="pycvnn", description="Feed-forward neural networks.")
    parser.add_argument("--version", action="version", version=f"pycvnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

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

    p = sub.add_parser("walkthrough", help="the lecture's gradient-descent walkthrough")
    p.add_argument("--lr", type=learning_rate, default=0.1, help="learning rate (default 0.1)")
    p.add_argument("--w0", type=finite_float, default=0.0, help="initial w (default 0)")
    p.add_argument("--b0", type=finite_float, default=0.0, help="initial b (default 0)")
    p.add_argument(
        "--iterations",
        type=iterations_arg,
        default=5,
        help=f"iterations, at most {MAX_ITERATIONS:,} (default 5)",
    )
    p.set_defaults(func=cmd_walkthrough)

    p = sub.add_parser(
        "figures",
        help="write the lecture's figures as PNG files",
        description="Draw the lecture's figures with pycvnn's own kernels and write them as "
        "DIR/NAME.png (needs pycvnn[plot]). NAME is one of: " + ", ".join(FIGURE_NAMES) + ".",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        type=out_folder,
        default="figures",
        help="folder to write into, made if missing (default figures)",
    )
    p.add_argument(
        "--only",
        metavar="NAME",
        action="append",
        choices=FIGURE_NAMES,
        help="write only this figure (repeatable)",
    )
    p.add_argument("--dpi", type=dpi_arg, default=100, help="resolution (default 100)")
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser(
        "export",
        help="write a saved model as an ONNX file",
        description="Write a model saved by `pycvnn train --save` or model.save as an ONNX "
        "graph with a dynamic batch dimension (needs pycvnn[onnx]).",
    )
    p.set_defaults(func=cmd_export, check=lambda args, p=p: check_export(p, args))
    p.add_argument("model", metavar="MODEL.npz", help="the saved model")
    p.add_argument(
        "--onnx", metavar="OUT.onnx", type=onnx_path, required=True, help="the file to write"
    )
    p.add_argument(
        "--opset", metavar="N", type=opset_arg, default=17, help="ONNX opset (default 17)"
    )

    _sweep_cli.add_parser(sub)

    p = sub.add_parser(
        "playground",
        help="the playground in the browser: train small networks live",
        description="Serve the playground, a local web page that trains small networks on "
        "2-D data sets live on the C++ core, until Ctrl-C (needs pycvnn[playground]).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=port_arg, default=8000, help="port (default 8000)")
    p.add_argument("--open", action="store_true", help="open the page in the web browser")
    p.set_defaults(func=cmd_playground)

    p = sub.add_parser("info", help="version, backend and BLAS")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(args, "check"):
        args.check(args)
    status: int = args.func(args) or 0
    return status


if __name__ == "__main__":
    sys.exit(main())
