"""A hyper-parameter sweep in this process against one on a local Dask cluster.

    python bench/sweep.py [--workers 2] [--repeats 5] [--max-iter 30]

The sweep: pycvnn.sklearn.MLPClassifier on the bundled digits (1,797 rows), a grid of 8
trials (hidden (32,) or (64, 32), learning_rate_init 1e-3 or 1e-2, alpha 1e-4 or 1e-2), each
3-fold cross-validated, up to --max-iter epochs of Adam. First the Dask run's scores are
checked equal to the serial run's; then each way is timed --repeats times, interleaved, and
the median wall seconds reported: the serial run, the Dask run on a cluster already up
(start-up excluded), and the Dask run with the cluster's start and shutdown (included). The
trials' fit seconds summed over the run show how much each trial slowed down on the workers;
a pure-Python loop timed in one process and in --workers processes at once shows how much
parallel room the machine has at the time (on a shared machine, often less than its cores).
"""

import argparse
import logging
import multiprocessing
import statistics
import time

from distributed import Client, LocalCluster

from pycvnn import sweep

SPEC = {
    "estimator": "classifier",
    "data": "digits",
    "search": "grid",
    "cv": 3,
    "seed": 0,
    "fixed": {"batch_size": 64},
    "grid": {
        "hidden_layer_sizes": [[32], [64, 32]],
        "learning_rate_init": [0.001, 0.01],
        "alpha": [0.0001, 0.01],
    },
}


def cluster(workers):
    return LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )


def timed(run):
    start = time.perf_counter()
    results = run()
    return time.perf_counter() - start, results


def scores(results):
    return [(r.index, r.scores, r.error) for r in results]


def spin(_):
    start = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - start


def headroom(workers):
    """How many times more loops `workers` processes finish than one in the same time."""
    one = spin(0)
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(spin, range(workers))  # warm the processes up
        start = time.perf_counter()
        pool.map(spin, range(workers))
        return workers * one / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-iter", type=int, default=30)
    args = parser.parse_args()
    spec = sweep.check_spec({**SPEC, "fixed": {**SPEC["fixed"], "max_iter": args.max_iter}})
    data = sweep.load_dataset(spec)
    trials = sweep.plan(spec)

    def serial():
        return sweep.run(spec, trials, data)

    def with_startup():
        with cluster(args.workers) as c, Client(c) as client:
            return sweep.run(spec, trials, data, client)

    times = {"serial": [], "dask": [], "dask+startup": []}
    fit_seconds = {"serial": [], "dask": []}
    with cluster(args.workers) as c, Client(c) as client:

        def on_dask():
            return sweep.run(spec, trials, data, client)

        reference = serial()
        if scores(on_dask()) != scores(reference):
            raise SystemExit("the Dask sweep's scores differ from the serial sweep's")
        for _ in range(args.repeats):
            for name, run in (("serial", serial), ("dask", on_dask)):
                seconds, results = timed(run)
                times[name].append(seconds)
                fit_seconds[name].append(sum(r.fit_seconds for r in results))
    for _ in range(args.repeats):
        times["dask+startup"].append(timed(with_startup)[0])
    room = headroom(args.workers)
    best = sweep.best(reference)
    print(
        f"digits ({len(data.X)} rows), {len(trials)} trials x {spec.cv} folds, max_iter "
        f"{args.max_iter}, {args.workers} worker processes; median of {args.repeats} runs"
    )
    print(f"best: trial {best.index}, mean accuracy {best.mean_score:.4f}, {best.params}")
    base = statistics.median(times["serial"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<14}{median:8.2f} s   x{base / median:5.2f}   (runs: "
              f"{', '.join(f'{v:.2f}' for v in values)})")  # fmt: skip
    serial_fit, dask_fit = (statistics.median(fit_seconds[k]) for k in ("serial", "dask"))
    print(f"trials' fit seconds summed: serial {serial_fit:.2f}, dask {dask_fit:.2f}")
    print(f"parallel room now: {args.workers} processes do x{room:.2f} the work of one")


if __name__ == "__main__":
    main()
