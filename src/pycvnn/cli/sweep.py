"""`pycvnn sweep SPEC.toml`: the arguments, their checks, and the command that runs a sweep on
a Dask cluster (or in this process) and writes what it found."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Iterator, Optional

from ._report import fail, reason
from .args import float_in, folder_for, int_in, save_path

if TYPE_CHECKING:
    from distributed import Client

    from ..sweep import Result
    from . import Parser

RESULT_SUFFIXES = (".csv", ".json")


def workers_arg(text: str) -> int:
    return int_in(text, 0, 1024, "a number of worker processes from 0 (serial) to 1024")


def timeout_arg(text: str) -> float:
    return float_in(text, "a number of seconds > 0", minimum=0, exclusive=True)


def results_path(text: str) -> str:
    folder_for(text, "results")
    if os.path.splitext(text)[1].lower() not in RESULT_SUFFIXES:
        raise argparse.ArgumentTypeError(
            f"expected a file name ending in .csv or .json, got {text!r}"
        )
    return text


def add_parser(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "sweep",
        help="grid or random search over an estimator's parameters, on Dask",
        description="Cross-validate every trial of a hyper-parameter search described by "
        "SPEC.toml (estimator, data, search, n_trials, cv, seed, scoring, max_rows, [fixed], "
        "[grid]) on Dask: a "
        "local cluster of --workers processes, or the cluster at --scheduler. Each trial is "
        "seeded from (seed, trial index), so the results do not depend on the workers. "
        "Needs pycvnn[distributed] unless --serial.",
    )
    p.add_argument("spec", metavar="SPEC.toml", help="the sweep's spec")
    p.add_argument(
        "--scheduler", metavar="ADDRESS", help="a running Dask scheduler (e.g. tcp://host:8786)"
    )
    p.add_argument(
        "--workers",
        metavar="N",
        type=workers_arg,
        help="local worker processes (default: one per CPU); 0 runs in this process",
    )
    p.add_argument("--serial", action="store_true", help="run in this process (--workers 0)")
    p.add_argument(
        "--timeout",
        metavar="S",
        type=timeout_arg,
        default=10.0,
        help="seconds to wait for --scheduler (default 10)",
    )
    p.add_argument(
        "--out", metavar="FILE", type=results_path, help="write the results (.csv or .json)"
    )
    p.add_argument(
        "--best", metavar="MODEL.npz", type=save_path, help="refit the best trial and save it"
    )
    p.add_argument("--quiet", action="store_true", help="no line per finished trial")
    p.set_defaults(func=cmd_sweep, check=lambda args, p=p: check_sweep(p, args), error=p.error)


def check_sweep(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Everything that can be checked before a cluster starts: the flags and the spec."""
    from ..sweep import SpecError, load_spec

    if args.scheduler is not None and (args.serial or args.workers is not None):
        parser.error("argument --scheduler: not allowed with --workers or --serial")
    if args.serial:
        args.workers = 0
    if args.workers is None:
        args.workers = os.cpu_count() or 1
    try:
        args.sweep = load_spec(args.spec)
    except SpecError as err:
        parser.error(str(err))
    except ImportError as err:
        parser.error(f"needs {err.name or 'scikit-learn'}: pip install 'pycvnn[distributed]'")
    if args.workers > 0 or args.scheduler is not None:
        try:
            import distributed  # noqa: F401
        except ImportError:
            parser.error("needs dask.distributed: pip install 'pycvnn[distributed]' (or --serial)")


@contextlib.contextmanager
def dask_client(args: argparse.Namespace) -> Iterator[Optional[Client]]:
    """A Client for the run (None for a serial one); what it started is closed on exit."""
    if args.workers == 0 and args.scheduler is None:
        yield None
        return
    from distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        if args.scheduler is not None:
            try:
                client = Client(args.scheduler, timeout=args.timeout, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as err:
                args.error(
                    f"argument --scheduler: cannot reach {args.scheduler!r} within "
                    f"{args.timeout:g} s ({type(err).__name__}: {err})"
                )
            stack.enter_context(client)
        else:
            cluster = LocalCluster(
                n_workers=args.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            stack.enter_context(cluster)
            client = stack.enter_context(Client(cluster))
        yield client


def _where(args: argparse.Namespace, client: Optional[Client]) -> str:
    if client is None:
        return "in this process"
    if args.scheduler is None:
        return f"on {args.workers} local worker process(es)"
    workers = len(client.scheduler_info().get("workers", {}))
    return f"on {args.scheduler} ({workers} worker(s))"


def cmd_sweep(args: argparse.Namespace) -> int:
    from .. import sweep

    spec = args.sweep
    trials = sweep.plan(spec)
    total = len(trials)

    def report(result: Result) -> None:
        if args.quiet:
            return
        status = f"error: {result.error}" if result.error else f"mean {result.mean_score:.4f}"
        print(f"pycvnn sweep: trial {result.index} ({status})", file=sys.stderr, flush=True)

    try:
        with dask_client(args) as client:
            try:
                data = sweep.load_dataset(spec)
            except (OSError, ValueError, ImportError) as err:
                args.error(f"{spec.path}: data: {err}")
            print(
                f"pycvnn sweep: {total} trial(s) x {spec.cv} folds, {spec.search} search, "
                f"{spec.estimator} on {spec.data} ({len(data.X)} rows), {_where(args, client)}",
                file=sys.stderr,
                flush=True,
            )
            start = time.perf_counter()
            results = sweep.run(spec, trials, data, client, on_result=report)
            seconds = time.perf_counter() - start
    except KeyboardInterrupt:
        fail("interrupted; the cluster it started is shut down", "sweep")
        return 130
    failed = sum(r.error is not None for r in results)
    status = 0
    if args.out:
        try:
            sweep.write_results(spec, results, args.out)
            print(f"wrote {len(results)} trial(s) to {args.out}")
        except OSError as err:
            fail(f"could not write {args.out}: {reason(err)}", "sweep")
            status = 1
    top = sweep.best(results)
    print(f"{total} trial(s) in {seconds:.2f} s, {failed} failed")
    if top is None:
        fail(f"every trial failed; the first error: {results[0].error}", "sweep")
        return 1
    print(sweep.table(results))
    print(f"best: trial {top.index}, mean {top.mean_score:.4f} +/- {top.std_score:.4f}")
    if args.best:
        model = sweep.refit(spec, top, data).model_
        try:
            model.save(args.best)
            print(f"saved the best trial, refit on all {len(data.X)} rows, to {args.best}")
        except OSError as err:
            fail(f"could not save the model to {args.best}: {reason(err)}", "sweep")
            status = 1
    return status
