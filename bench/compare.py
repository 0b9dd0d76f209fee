"""pycvnn against its peers on this machine: the performance report, printed and written as Markdown.

    python bench/compare.py [--quick] [--out docs/performance.md] [--readme README.md]

--out rewrites the part of the file between its "bench/compare.py:begin/end" markers (the whole
file if it has none); --readme rewrites README's summary table between its "compare:summary"
markers. Sections: a whole fit on the digits against PyTorch, scikit-learn and Keras, the
training-step table (pycvnn cpp, pycvnn numpy, PyTorch CPU, scikit-learn, one
thread each, medians of interleaved rounds, speedups against the targets), the GEMM
efficiency against the core's FMA peak and NumPy, thread scaling, allocations per step, the
peak memory of a fit, and the speed of Adam's update. Peers that are not installed are
skipped with the reason. Every peer is checked against the NumPy reference before it is timed.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fit_peers  # noqa: E402
import gemms as G  # noqa: E402
import workloads as W  # noqa: E402

import pycvnn  # noqa: E402
from pycvnn import _bench, _core, reference  # noqa: E402

# Speedup floors: peer's time per step / pycvnn cpp's.
TARGETS = {
    "tiny": {"torch": 80, "sklearn": 40, "numpy": 8},
    "mnist": {"torch": 3, "sklearn": 3, "numpy": 2},
    "wide": {"torch": 1.8, "sklearn": 1.8, "numpy": 1.5},
}
THREAD_TARGET, GEMM_PEAK_TARGET, ADAM_NS_TARGET = 1.7, 0.60, 5.0
# config -> (K steps per chunk, interleaved rounds), sized for a few minutes in all.
PLAN = {"tiny": (200, 31), "mnist": (20, 21), "wide": (4, 11)}
QUICK_PLAN = {"tiny": (50, 7), "mnist": (5, 5), "wide": (2, 3)}
MIB = 1 << 20


def mark(ok):
    return "✓" if ok else "✗"


def table(header, rows, align=None):
    """A Markdown table; align is a string of 'l'/'r' per column (default: first left)."""
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def interleaved(chunks, rounds, steps, before=None):
    """chunks: name -> callable running `steps` steps. In round r every chunk runs once, the
    order rotated by r; returns name -> [seconds per step, one per round]. before(name), if
    given, runs untimed just before each chunk."""
    names, times = list(chunks), {name: [] for name in chunks}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            if before:
                before(name)
            t0 = time.perf_counter()
            chunks[name]()
            times[name].append((time.perf_counter() - t0) / steps)
    return times


def spread(samples):
    """Interquartile range as a fraction of the median."""
    q1, med, q3 = np.percentile(samples, [25, 50, 75])
    return (q3 - q1) / med


# ---- header ---------------------------------------------------------------------------------


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def cpu_caches():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    caches = [
        line.split(":", 1)
        for line in out.splitlines()
        if line.startswith(("L2 cache:", "L3 cache:"))
    ]
    return ", ".join(f"{k} {v.strip()}" for k, v in caches) or "unknown"


def cpu_flags(wanted=("avx2", "fma", "avx512f")):
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    return ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in wanted)


def cpu_ticks():
    """(steal, busy, total) jiffies of all CPUs from /proc/stat, or None; busy excludes idle,
    iowait and steal."""
    try:
        f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    except OSError:
        return None
    f += [0] * (8 - len(f))
    return f[7], f[0] + f[1] + f[2] + f[5] + f[6], sum(f)


def own_cpu_seconds():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def noise_footer(start, ticks0, own0):
    """Run time, hypervisor steal and the CPU time other processes took during the run."""
    wall, ticks1 = time.perf_counter() - start, cpu_ticks()
    text = f"Run time {wall:,.0f} s"
    if ticks0 and ticks1 and ticks1[2] > ticks0[2]:
        hz = os.sysconf("SC_CLK_TCK")
        steal = (ticks1[0] - ticks0[0]) / (ticks1[2] - ticks0[2])
        others = max(0.0, (ticks1[1] - ticks0[1]) / hz - (own_cpu_seconds() - own0))
        text += (
            f"; CPU steal (hypervisor) {steal:.1%} of all CPU time; other processes on "
            f"this machine used {others:,.1f} CPU-s ({others / wall:.0%} of one CPU)"
        )
    return text + "."


def versions():
    out = {"pycvnn": pycvnn.__version__, "numpy": np.__version__}
    for peer, (module, _) in W.OPTIONAL.items():
        if W.missing_reason(peer) is None:
            out[module] = __import__(module).__version__
    return out


def _package_of(path):
    """The site-packages entry a shared library comes from (numpy.libs, scipy_openblas32...)."""
    parts = Path(path).parts
    return parts[parts.index("site-packages") + 1] if "site-packages" in parts[:-1] else path


def blas_libraries():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    libs = [
        f"{_package_of(i['filepath'])}: {i['internal_api']} {i.get('version')} "
        f"({i.get('architecture', '?')}, {i['num_threads']} thread(s))"
        for i in threadpool_info()
        if i["user_api"] == "blas"
    ]
    return "; ".join(libs)


def source_revision():
    """The repository's commit and whether the C++ core has uncommitted changes."""

    def git(*args):
        return subprocess.run(
            ["git", "-C", str(HERE.parent), *args], capture_output=True, text=True
        ).stdout.strip()

    try:
        sha, dirty = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "src/cpp")
    except OSError:
        return "unknown (no git)"
    return f"{sha or 'unknown'}" + (" + uncommitted changes in src/cpp" if dirty else "")


def header(quick, notes):
    lines = [
        "# pycvnn vs peers (bench/compare.py)",
        "",
        f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- CPU: {cpu_model()} ({cpu_flags()}); {os.cpu_count()} logical CPUs; {cpu_caches()}",
        f"- source: git {source_revision()}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
        f"- pycvnn core BLAS: {_core._blas_name()}; BLAS libraries loaded: {blas_libraries()}",
        f"- mode: {'--quick' if quick else 'full'}; one thread per peer unless stated",
    ]
    lines += [f"- note: {n}" for n in notes]
    return "\n".join(lines)


# ---- 1. training step -----------------------------------------------------------------------


def peer_runners(work, reference_losses):
    """name -> runner for every available peer that matches the reference; name -> reason
    for the others."""
    runners, skipped = {}, {}
    for peer in W.PEERS:
        reason = W.missing_reason(peer)
        if reason:
            skipped[peer] = reason
            continue
        runner = W.make_runner(peer, work)
        try:
            W.verify(runner, peer, reference_losses)
        except AssertionError as err:
            skipped[peer] = "verification failed: " + " ".join(str(err).split())[:300]
            continue
        runners[peer] = runner
    return runners, skipped


def time_step_cell(config, optimizer, steps, rounds):
    """Medians (µs per step) and spreads of each peer on one config x optimizer."""
    work = W.make_workload(config, optimizer, steps)
    want = W.make_runner("numpy", work).losses(W.VERIFY_STEPS)
    runners, skipped = peer_runners(work, want)
    for runner in runners.values():
        runner.chunk()  # warm-up: workspaces, optimizer state, lazy imports
    times = interleaved({p: r.chunk for p, r in runners.items()}, rounds, steps)
    medians = {p: statistics.median(t) * 1e6 for p, t in times.items()}
    return medians, {p: spread(t) for p, t in times.items()}, skipped


def ratio_cell(medians, peer, target):
    if "cpp" not in medians or peer not in medians:
        return "–"
    r = medians[peer] / medians["cpp"]
    return f"{r:,.1f}× {mark(r >= target)} (≥ {target:g}×)"


def cpp_alone(config, optimizer, steps, rounds):
    """Median µs/step of pycvnn cpp's K-step chunks run back to back, no peer in between."""
    runner = W.make_runner("cpp", W.make_workload(config, optimizer, steps))
    runner.chunk()
    return statistics.median(interleaved({"cpp": runner.chunk}, rounds, steps)["cpp"]) * 1e6


def step_section(plan, results):
    """The step table; results["steps"][config, optimizer] gets the medians (µs/step)."""
    rows, skipped_all, met, total = [], {}, 0, 0
    for config, (steps, rounds) in plan.items():
        for optimizer in W.LEARNING_RATES:
            medians, spreads, skipped = time_step_cell(config, optimizer, steps, rounds)
            results.setdefault("steps", {})[config, optimizer] = medians
            skipped_all.update(skipped)
            cells = [f"{medians[p]:,.1f}" if p in medians else "–" for p in W.PEERS]
            ratios = [
                ratio_cell(medians, p, TARGETS[config][p]) for p in ("torch", "sklearn", "numpy")
            ]
            met += sum("✓" in r for r in ratios)
            total += sum(r != "–" for r in ratios)
            worst = max(spreads.values()) if spreads else 0
            rows.append([config, optimizer, *cells, *ratios, f"{worst:.0%}", f"{rounds}×{steps}"])
    header = [
        "config",
        "opt",
        "cpp µs/step",
        "numpy µs/step",
        "torch µs/step",
        "sklearn µs/step",
        "torch / cpp",
        "sklearn / cpp",
        "numpy / cpp",
        "max IQR/median",
        "rounds×K",
    ]
    lines = [
        "## Training step (float32, one thread, forward + cross-entropy + backward + update)",
        "",
        table(header, rows, "ll" + "r" * 9),
        "",
        f"Speedup targets met: {met}/{total}. Medians over interleaved rounds (each round "
        "runs every peer once for K steps, in rotated order); GD lr 0.01, Adam lr 1e-3. "
        "cpp/numpy: Network.train_epoch over the K batches (one fit epoch's call); "
        "torch: zero_grad/forward/CrossEntropyLoss/backward/step on pre-sliced tensors; "
        "sklearn: MLPClassifier.partial_fit over the K batches. Every timed peer's first "
        f"{W.VERIFY_STEPS} losses matched the NumPy reference from the same weights "
        "before timing.",
    ]
    steps, rounds = plan["tiny"]
    alone = {opt: cpp_alone("tiny", opt, steps, rounds) for opt in W.LEARNING_RATES}
    lines += [
        "",
        "pycvnn cpp alone on tiny, the same chunks back to back with no peer in between "
        "(each interleaved round starts on caches the peers have filled): "
        + ", ".join(f"{opt} {us:,.1f} µs/step" for opt, us in alone.items())
        + ".",
    ]
    lines += [f"- skipped {p}: {why}" for p, why in skipped_all.items()]
    return "\n".join(lines)


# ---- 2. GEMM efficiency ---------------------------------------------------------------------


def time_gemms(gemms, repeats):
    """Best seconds per call of each GEMM in the core (_bench.time_gemm: its entry point, and
    OpenBLAS alone), in NumPy (np.matmul, out= given) and, if installed, in PyTorch
    (torch.mm, out= given: MKL), interleaved shape by shape."""
    cpp, blas, npy, mkl = {}, {}, {}, {}
    for g in gemms:
        a, b, c = G.operands(g)
        reps = G.reps_for(g)
        G.time_numpy(g, a, b, c, 1)
        for out, path in ((cpp, "auto"), (blas, "blas")):
            out[g] = min(
                _bench.time_gemm(g.m, g.n, g.k, g.trans_a, g.trans_b, reps, path)
                for _ in range(repeats)
            )
        npy[g] = min(G.time_numpy(g, a, b, c, reps) for _ in range(repeats))
        if W.missing_reason("torch") is None:
            mkl[g] = min(G.time_torch(g, a, b, c, reps) for _ in range(repeats))
    return cpp, blas, npy, mkl


def gemm_section(repeats, results):
    """The GEMM table; results["gemm"][config] gets (FLOPs, cpp seconds) per step and
    results["peak"] the FMA peak (GFLOP/s)."""
    peak_before = _bench.fma_peak(0.3)
    summary, detail = [], []
    timings = {
        config: time_gemms(G.step_gemms(*W.CONFIGS[config]), repeats) for config in W.CONFIGS
    }
    peak = max(peak_before, _bench.fma_peak(0.3))
    results["peak"] = peak
    results["gemm"] = {
        config: (sum(g.flops for g in cpp), sum(cpp.values()))
        for config, (cpp, _, _, _) in timings.items()
    }
    # The fastest of every sgemm measured here, shape by shape: this machine's sgemm ceiling.
    results["ceiling"] = {
        config: sum(min(t[g] for t in times if g in t) for g in times[0])
        for config, times in timings.items()
    }
    for config, (cpp, blas, npy, mkl) in timings.items():
        flops = sum(g.flops for g in cpp)
        c_rate, n_rate = flops / sum(cpp.values()) / 1e9, flops / sum(npy.values()) / 1e9
        summary.append(
            [
                config,
                f"{flops / 1e6:,.1f}",
                f"{sum(cpp.values()) * 1e6:,.1f}",
                f"{c_rate:,.1f}",
                f"{c_rate / peak:.0%} {mark(c_rate >= GEMM_PEAK_TARGET * peak)}",
                f"{n_rate:,.1f}",
                f"{c_rate / n_rate:.2f}× {mark(c_rate >= n_rate)}",
            ]
        )
        for g in cpp:
            detail.append(
                [
                    config,
                    g.label,
                    g.shape,
                    f"{cpp[g] * 1e6:,.2f}",
                    f"{g.flops / cpp[g] / 1e9:,.1f}",
                    f"{blas[g] * 1e6:,.2f}",
                    f"{g.flops / npy[g] / 1e9:,.1f}",
                    f"{g.flops / mkl[g] / 1e9:,.1f}" if g in mkl else "–",
                ]
            )
    return "\n".join(
        [
            "## GEMM efficiency (float32, one thread)",
            "",
            f"FMA peak of one core (register-only loop, best burst, measured before and after): "
            f"{peak_before:,.1f} / {peak:,.1f} GFLOP/s; using {peak:,.1f}.",
            "",
            table(
                [
                    "config",
                    "MFLOP/step",
                    "cpp µs",
                    "cpp GFLOP/s",
                    f"% of peak (≥ {GEMM_PEAK_TARGET:.0%})",
                    "NumPy GFLOP/s",
                    "cpp / NumPy (≥ 1)",
                ],
                summary,
            ),
            "",
            f"Best of {repeats} timings per shape (as the peak is a best burst). cpp: "
            "`_bench.time_gemm` (the core's GEMM entry point, in C++: on one thread its own AVX-512 "
            "kernels: unpacked up to 2^18 multiply-adds or with a side <= 16 (A Bᵀ from 16 rows up), "
            "blocked above, OpenBLAS for Aᵀ B with more than 256 rows, for Aᵀ B up to 2^18 "
            "multiply-adds unless both m and n are <= 16, for A Bᵀ into <= 16 columns from "
            "<= 32 rows with k >= 64 and for A B with one row; A Bᵀ with at most 8 rows, none "
            "here, to dot-product kernels or OpenBLAS); NumPy: `np.matmul(a, b, "
            "out=c)` with transposed views, its per-call dispatch included.",
            "",
            "<details><summary>per shape</summary>",
            "",
            table(
                [
                    "config",
                    "GEMM",
                    "m×n×k",
                    "cpp µs",
                    "cpp GFLOP/s",
                    "OpenBLAS alone µs",
                    "NumPy GFLOP/s",
                    "torch.mm (MKL) GFLOP/s",
                ],
                detail,
                "lllrrrrr",
            ),
            "",
            "</details>",
        ]
    )


# ---- 2b. what the speedup targets demand ----------------------------------------------------


def adam_floor(config, repeats=9):
    """Seconds of the core's Adam update alone on config's arena (best of repeats, the cost
    of a call on one parameter taken off): what an Adam step costs beyond its GEMMs."""
    n = W.make_workload(config, "adam", 1).params.size
    rule = _core.UpdateRule("adam")

    def best(size):
        bufs = [np.full(size, 0.01, np.float32) for _ in range(4)]
        times = []
        for t in range(1, repeats + 1):
            t0 = time.perf_counter()
            rule.step(*bufs, size, 1e-3, t)
            times.append(time.perf_counter() - t0)
        return min(times)

    return max(0.0, best(n) - best(1))


def loss_floor(config, repeats=7):
    """Seconds of the config's step work outside its GEMMs and update, in the core, alone
    (best of repeats): the fused softmax + cross-entropy on (batch, classes) logits and every
    layer's bias sums (_bench.time_loss_and_bias_sums, a C++ loop)."""
    sizes, batch = W.CONFIGS[config]
    reps = max(10, 200_000 // (batch * sum(sizes[1:])))
    return min(_bench.time_loss_and_bias_sums(batch, list(sizes[1:]), reps) for _ in range(repeats))


def headroom_section(results):
    """For each unmet speedup target: the cpp step time it needs, against the time the
    step's GEMMs alone take at the FMA peak and on this machine's fastest sgemm (the best of
    every library measured, shape by shape), plus the core's loss and bias sums, plus Adam's
    update pass on Adam's configs."""
    peak, rows = results["peak"], []
    adam, extra = {}, {}
    for (config, optimizer), medians in results["steps"].items():
        flops, gemm_s = results["gemm"][config]
        ceiling = results["ceiling"][config]
        for peer, target in TARGETS[config].items():
            if "cpp" not in medians or peer not in medians:
                continue
            if medians[peer] / medians["cpp"] >= target:
                continue
            needed = medians[peer] / target  # µs per step
            rate = flops / (needed * 1e-6) / 1e9  # GFLOP/s the GEMMs need if all else were free
            if optimizer == "adam" and config not in adam:
                adam[config] = adam_floor(config) * 1e6
            if config not in extra:
                extra[config] = loss_floor(config) * 1e6
            floor = ceiling * 1e6 + extra[config] + (adam[config] if optimizer == "adam" else 0.0)
            if rate > peak:
                verdict = "out of reach: GEMMs alone would need > 100% of FMA peak"
            elif needed < ceiling * 1e6:
                verdict = "out of reach here: below the fastest sgemm measured"
            elif needed < floor:
                verdict = "out of reach here: below the fastest sgemm measured plus the core's " + (
                    "loss, bias sums and Adam pass" if optimizer == "adam" else "loss and bias sums"
                )
            else:
                verdict = f"{needed - floor:,.1f} µs/step above that floor"
            rows.append(
                [
                    config,
                    optimizer,
                    peer,
                    f"≥ {target:g}×",
                    f"{medians['cpp']:,.1f}",
                    f"{needed:,.1f}",
                    f"{flops / peak / 1e3:,.1f}",
                    f"{gemm_s * 1e6:,.1f}",
                    f"{ceiling * 1e6:,.1f}",
                    f"{extra[config]:,.2f}",
                    f"{adam[config]:,.1f}" if optimizer == "adam" else "–",
                    f"{floor:,.1f}",
                    f"{rate / peak:.0%}",
                    verdict,
                ]
            )
    if not rows:
        return "## What the speedup targets demand\n\nEvery speedup target is met."
    return "\n".join(
        [
            "## What the unmet speedup targets demand",
            "",
            table(
                [
                    "config",
                    "opt",
                    "peer",
                    "target",
                    "cpp µs/step now",
                    "cpp µs/step needed",
                    "its GEMMs at FMA peak µs",
                    "its GEMMs, core sgemm µs",
                    "its GEMMs, fastest sgemm here µs",
                    "loss + bias sums alone µs",
                    "Adam's pass alone µs",
                    "floor µs",
                    "GEMM share of peak needed if all else were free",
                    "verdict",
                ],
                rows,
                "lllrrrrrrrrrrl",
            ),
            "",
            "needed = peer's median µs/step / target, from the step table above; the GEMM columns "
            f"come from the GEMM table (FMA peak {peak:,.1f} GFLOP/s; best of its timings). "
            "'fastest sgemm here' takes, shape by shape, the fastest of the core, OpenBLAS alone, "
            "NumPy and torch.mm (MKL). floor = that, plus the core's fused softmax + "
            "cross-entropy and every layer's bias sums timed alone on the config's shapes (best of "
            "7, in C++), plus on Adam's configs the core's Adam update timed alone on the "
            "config's parameters (best of 9). The activations (in the GEMMs' epilogues), the "
            "batch's loads and the step's calls are left out, so it is a lower bound for this "
            "core: a target needing less than it cannot be met on this machine with any sgemm "
            "measured here and the core's loss, bias-sum and Adam kernels; one needing less than "
            "'at FMA peak' by any implementation of the same arithmetic.",
        ]
    )


# ---- 3. thread scaling ----------------------------------------------------------------------


def thread_section(plan, rounds):
    """1 vs 2 threads on each config (plan: config -> K steps per chunk); the target is wide's."""
    rows = []
    for config, steps in plan.items():
        for optimizer in W.LEARNING_RATES:
            runner = W.make_runner("cpp", W.make_workload(config, optimizer, steps))
            runner.chunk()
            threads = {"1": 1, "2": 2}
            times = interleaved(
                {n: runner.chunk for n in threads},
                rounds,
                steps,
                before=lambda n, threads=threads: pycvnn.set_num_threads(threads[n]),
            )
            one, two = (statistics.median(times[n]) * 1e6 for n in threads)
            verdict = mark(one / two >= THREAD_TARGET) if config == "wide" else ""
            rows.append(
                [
                    config,
                    optimizer,
                    f"{one:,.1f}",
                    f"{two:,.1f}",
                    f"{one / two:.2f}× {verdict}".strip(),
                ]
            )
    pycvnn.set_num_threads(1)
    return "\n".join(
        [
            "## Thread scaling (pycvnn cpp)",
            "",
            table(
                [
                    "config",
                    "opt",
                    "1 thread µs/step",
                    "2 threads µs/step",
                    f"speedup (wide: ≥ {THREAD_TARGET}×)",
                ],
                rows,
                "llrrr",
            ),
            "",
            f"`pycvnn.set_num_threads(1)` vs `(2)`, interleaved, {rounds} rounds × K steps "
            f"({', '.join(f'{c} {k}' for c, k in plan.items())}), medians; {os.cpu_count()} logical "
            "CPUs on a shared host. A GEMM is split over the threads only with a batch of 32 or "
            "more, and tiny's run on the small kernels, which take one thread.",
        ]
    )


# ---- 4. allocations per step ----------------------------------------------------------------


def rss_bytes():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def heap_growth(config, optimizer, calls, steps_per_call):
    """(Python-heap delta by tracemalloc, RSS delta) over calls x steps_per_call cpp steps,
    after as many for warm-up; two separate runs, so tracemalloc's own tables stay out of the RSS."""
    runner = W.make_runner("cpp", W.make_workload(config, optimizer, steps_per_call))

    def train():
        for _ in range(calls):
            runner.chunk()

    train()  # warm-up: workspace, optimizer state, the allocator's free lists
    rss0 = rss_bytes()
    train()
    rss = rss_bytes() - rss0
    tracemalloc.start()
    heap0 = tracemalloc.get_traced_memory()[0]
    train()
    heap = tracemalloc.get_traced_memory()[0] - heap0
    tracemalloc.stop()
    return heap, rss


def build_malloc_counter(directory):
    lib = Path(directory) / "libmalloc_count.so"
    cmd = [
        os.environ.get("CC", "cc"),
        "-O2",
        "-shared",
        "-fPIC",
        "-o",
        str(lib),
        str(HERE / "malloc_count.c"),
    ]
    try:
        subprocess.run(cmd, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as err:
        return None, f"could not build the malloc counter ({' '.join(cmd)}): {err}"
    return lib, None


def malloc_counts(configs):
    """Rows from alloc_probe.py under the LD_PRELOAD counter, or (None, reason)."""
    with tempfile.TemporaryDirectory() as tmp:
        lib, reason = build_malloc_counter(tmp)
        if lib is None:
            return None, reason
        env = dict(os.environ, LD_PRELOAD=str(lib))
        proc = subprocess.run(
            [sys.executable, str(HERE / "alloc_probe.py"), ",".join(configs), ",".join(W.PEERS)],
            env=env,
            capture_output=True,
            text=True,
        )
    if proc.returncode != 0:
        return None, f"alloc_probe.py failed: {proc.stderr.strip()[-300:]}"
    return json.loads(proc.stdout), None


def alloc_section():
    heap_rows = []
    for config, calls, per_call in (("tiny", 100, 100), ("mnist", 10, 30)):
        for optimizer in W.LEARNING_RATES:
            heap, rss = heap_growth(config, optimizer, calls, per_call)
            steps = calls * per_call
            heap_rows.append(
                [
                    config,
                    optimizer,
                    f"{steps:,}",
                    f"{heap:+,} B",
                    f"{heap / steps:+.3f} B",
                    f"{rss:+,} B",
                ]
            )
    lines = [
        "## Allocation per step (steady state)",
        "",
        table(
            ["config", "opt", "cpp steps", "Python heap Δ (tracemalloc)", "per step", "RSS Δ"],
            heap_rows,
            "llrrrr",
        ),
        "",
        "`train_epoch` calls of 100 (tiny) / 30 (mnist) steps, after as many for warm-up; "
        "RSS (/proc/self/statm) and tracemalloc in separate runs.",
    ]
    rows, reason = malloc_counts(["tiny", "mnist"])
    if rows is None:
        return "\n".join(lines + ["", f"Allocator call counts: not measured: {reason}"])
    counts = {}
    for r in rows:
        counts.setdefault((r["config"], r["optimizer"]), {})[r["peer"]] = (
            "skipped" if "skipped" in r else f"{r['per_step']:,.1f}"
        )
    count_rows = [[c, o, *[cells.get(p, "–") for p in W.PEERS]] for (c, o), cells in counts.items()]
    cpp_calls = {round(r["per_call"]) for r in rows if r["peer"] == "cpp" and "per_call" in r}
    lines += [
        "",
        table(
            ["config", "opt", *[f"{p} allocs/step" for p in W.PEERS]],
            count_rows,
            "ll" + "r" * len(W.PEERS),
        ),
        "",
        "C allocator calls (malloc/calloc/realloc/memalign family; C++ `new` included) "
        "counted by bench/malloc_count.c under LD_PRELOAD: (calls for 110 steps − calls "
        "for 10 steps) / 100, after warm-up, so per-call costs cancel. pycvnn cpp's "
        f"per-call constant (argument conversion, the returned losses array): "
        f"{sorted(cpp_calls)} calls per train_epoch, whatever its number of steps.",
    ]
    return "\n".join(lines)


# ---- 5. peak memory of a fit ----------------------------------------------------------------


def fit_memory(config, n_samples, epochs=2):
    proc = subprocess.run(
        [
            sys.executable,
            str(HERE / "fit_memory_probe.py"),
            config,
            str(n_samples),
            str(epochs),
            "adam",
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"fit_memory_probe.py failed: {proc.stderr.strip()[-300:]}")
    return json.loads(proc.stdout)


def memory_section(sample_sizes):
    rows, slopes, exact = [], [], True
    for config, sizes in sample_sizes.items():
        runs = [fit_memory(config, n) for n in sizes]
        for run in runs:
            bound = sum(run["bound"].values())
            parts = " + ".join(f"{v / MIB:.1f}" for v in run["bound"].values())
            rows.append(
                [
                    config,
                    "adam",
                    f"{run['n_samples']:,}",
                    f"{run['n_params']:,}",
                    f"{run['growth'] / MIB:,.1f}",
                    f"{bound / MIB:,.1f} ({parts})",
                    f"{run['growth'] / bound:.1f}× {mark(run['growth'] <= bound)}",
                ]
            )
            exact = exact and run["peak_reset"]
        if len(runs) > 1:
            a, b = runs[0], runs[-1]
            slope = (b["growth"] - a["growth"]) / (b["n_samples"] - a["n_samples"])
            intercept = a["growth"] - slope * a["n_samples"]
            slopes.append(
                f"{config}: {slope:,.0f} B per training sample (≈ {slope / 4:,.0f} "
                f"float32), {intercept / MIB:,.1f} MiB at 0 samples (bound "
                f"{sum(a['bound'].values()) / MIB:,.1f} MiB)"
            )
    lines = [
        "## Peak memory of a fit (Adam, 2 epochs, fresh process)",
        "",
        table(
            [
                "config",
                "opt",
                "samples",
                "params",
                "measured peak growth MiB",
                "bound MiB (params×3 + grads + batch workspace + const)",
                "measured / bound",
            ],
            rows,
            "llrrrrr",
        ),
        "",
        "Measured: peak RSS during `model.fit` (VmHWM, its mark reset through "
        "/proc/self/clear_refs just before) − RSS before it, data and model created first"
        + ("" if exact else " (clear_refs NOT available here: the peak may predate the fit)")
        + ". Bound: params × (1 + 2 Adam buffers) + grads + one batch's workspace "
        "(every layer's output, 2 ping-pong gradient buffers and a dz scratch of batch × "
        "max width, the gathered batch) + 2 MiB.",
    ]
    if slopes:
        lines += [
            "",
            "Growth per extra training sample, from the two runs of each config (0 if "
            "a fit's memory does not depend on the data size), and the growth extrapolated "
            "to 0 samples: " + "; ".join(slopes) + ".",
        ]
    return "\n".join(lines)


# ---- 6. Adam's update -----------------------------------------------------------------------


def adam_section(rounds):
    work = W.make_workload("wide", "adam", 1)
    n, rng = work.params.size, np.random.default_rng(0)
    bufs = {name: rng.standard_normal(n, dtype=np.float32) * 0.01 for name in ("p", "g", "m")}
    bufs["v"] = np.abs(rng.standard_normal(n, dtype=np.float32)) * 1e-4
    src4, dst4 = np.ones(4 * n, np.float32), np.zeros(4 * n, np.float32)
    src2, dst2 = np.ones(2 * n, np.float32), np.zeros(2 * n, np.float32)
    # name -> (label, bytes per parameter the operation must move, callable)
    ops = {
        "cpp": ('pycvnn cpp `UpdateRule("adam").step`', 28, _adam(_core, bufs, work)),
        "numpy": ('pycvnn numpy `UpdateRule("adam").step`', 28, _adam(reference, bufs, work)),
    }
    if W.missing_reason("torch") is None:
        ops["torch"] = ("torch.optim.Adam step (one flat tensor)", 28, _torch_adam(bufs, work.lr))
    ops["copy4"] = (
        "`np.copyto`, 4 arrays → 4 arrays (Adam's bytes, twice its working set)",
        32,
        lambda: np.copyto(dst4, src4),
    )
    ops["copy2"] = (
        "`np.copyto`, 2 arrays → 2 arrays (Adam's working set)",
        16,
        lambda: np.copyto(dst2, src2),
    )
    for _, _, fn in ops.values():
        fn()
    times = interleaved({k: fn for k, (_, _, fn) in ops.items()}, rounds, 1)
    rows = []
    for key, (label, nbytes, _) in ops.items():
        ns = statistics.median(times[key]) / n * 1e9
        target = f"{mark(ns <= ADAM_NS_TARGET)} (≤ {ADAM_NS_TARGET:g})" if key == "cpp" else ""
        rows.append([label, f"{ns:.2f}", f"{nbytes / ns:,.1f}", target])
    return "\n".join(
        [
            f"## Adam update, wide arena ({n:,} float32 parameters, one thread)",
            "",
            table(
                ["update", "ns / parameter", "GB/s (bytes it must move)", "target"], rows, "lrrl"
            ),
            "",
            f"Medians of {rounds} interleaved calls. Adam must read p, g, m, v and write p, m, v "
            f"(28 B per parameter; working set 4 × {4 * n / MIB:.1f} MiB). The copies give this "
            "machine's streaming speed at the same bytes and at the same working set (see the L2/L3 "
            "sizes in the header: a working set that fits in L3 runs at cache, not DRAM, speed).",
        ]
    )


def _adam(module, bufs, work):
    rule = module.UpdateRule("adam")
    counter = iter(range(1, 1 << 30))
    return lambda: rule.step(
        bufs["p"], bufs["g"], bufs["m"], bufs["v"], work.params.size, work.lr, next(counter)
    )


def _torch_adam(bufs, lr):
    import torch

    p = torch.nn.Parameter(torch.from_numpy(bufs["p"].copy()))
    p.grad = torch.from_numpy(bufs["g"].copy())
    opt = torch.optim.Adam([p], lr=lr)
    return opt.step


# ---- main -----------------------------------------------------------------------------------


def fit_section(rounds, epochs, results):
    """A whole fit on the digits (bench/fit_peers.py), every library on one thread."""
    fits, missing = fit_peers.measure(rounds, epochs)
    results["fit"] = fits
    base = fits["pycvnn"][0]
    rows = [
        [peer, f"{s * 1e3:,.1f}", f"{s / base:.1f}×", f"{a:.3f}"] for peer, (s, a) in fits.items()
    ]
    notes = "".join(f" {peer} skipped: {why}." for peer, why in missing.items())
    return "\n".join(
        [
            f"## A whole fit (digits, {epochs} epochs, one thread)",
            "",
            table(["library", "fit ms", "time / pycvnn", "test accuracy"], rows),
            "",
            f"64-64-32-10 MLP, ReLU, softmax + cross-entropy, Adam lr 1e-3, batch 32, shuffled, "
            f"on 80% of the bundled digits; accuracy on the other 20%. Medians of {rounds} "
            f"interleaved rounds of the whole fit call (Keras 3 on its torch backend).{notes}",
        ]
    )


def summary(results, epochs):
    """README's small table: a whole fit and the training step, pycvnn against each peer."""
    names = {"torch": "PyTorch", "sklearn": "scikit-learn", "keras": "Keras"}

    def cell(t, base, unit):
        if t is None:
            return "–"
        ratio = (
            "" if t == base else f" ({t / base:.1f}×)" if t < 10 * base else f" ({t / base:.0f}×)"
        )
        return f"{t:,.1f} {unit}{ratio}"

    fits = {p: s * 1e3 for p, (s, _) in results["fit"].items()}
    rows = [
        [f"fit: digits, {epochs} epochs"]
        + [cell(fits.get(p), fits["pycvnn"], "ms") for p in ("pycvnn", *names)]
    ]
    for (config, opt), med in results.get("steps", {}).items():
        sizes, batch = W.CONFIGS[config]
        what = f"step: {'-'.join(map(str, sizes))}, batch {batch}, {opt}"
        rows.append(
            [what]
            + [cell(med.get(p), med["cpp"], "µs") for p in ("cpp", "torch", "sklearn")]
            + ["–"]
        )
    return (
        table(["one thread", "pycvnn", *names.values()], rows)
        + "\n\n"
        + f"{results['when']}, `bench/compare.py{' --quick' if results['quick'] else ''}`. "
        + results["footer"]
    )


def replace_between(path, text, begin, end):
    """Puts text between the begin and end markers of the file (the whole file if it has none)."""
    old = path.read_text() if path.exists() else ""
    if begin in old and end in old:
        i, j = old.index(begin) + len(begin), old.index(end)
        text = old[:i] + "\n" + text.strip() + "\n" + old[j:]
    path.write_text(text)


def fit_epochs(quick):
    return 10 if quick else 30


def run(quick):
    start, ticks0, own0 = time.perf_counter(), cpu_ticks(), own_cpu_seconds()
    notes = W.single_thread()
    plan, results = (QUICK_PLAN if quick else PLAN), {}
    sections = [
        lambda: header(quick, notes),
        lambda: fit_section(3 if quick else 7, fit_epochs(quick), results),
        lambda: step_section(plan, results),
        lambda: gemm_section(3 if quick else 7, results),
        lambda: headroom_section(results),
        lambda: thread_section({c: k for c, (k, _) in plan.items()}, 3 if quick else 9),
        alloc_section,
        lambda: memory_section(
            {
                "mnist": (2048,) if quick else (2048, 8192),
                "wide": (1024,) if quick else (1024, 4096),
            }
        ),
        lambda: adam_section(5 if quick else 21),
    ]
    out = []
    for make in sections:
        out.append(make())
        print(out[-1] + "\n", flush=True)
    out.append(noise_footer(start, ticks0, own0))
    print(out[-1])
    results.update(
        footer=out[-1],
        quick=quick,
        when=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )
    return "\n\n".join(out) + "\n", results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (well under a minute)")
    parser.add_argument("--out", type=Path, help="also write the report into this Markdown file")
    parser.add_argument("--readme", type=Path, help="also update this README's summary table")
    args = parser.parse_args(argv)
    text, results = run(args.quick)
    if args.out:
        replace_between(
            args.out, text, "<!-- bench/compare.py:begin -->", "<!-- bench/compare.py:end -->"
        )
        print(f"wrote {args.out}")
    if args.readme:
        replace_between(
            args.readme,
            summary(results, fit_epochs(args.quick)),
            "<!-- compare:summary -->",
            "<!-- /compare:summary -->",
        )
        print(f"wrote {args.readme}")


if __name__ == "__main__":
    main()
