"""The whole training step, config x optimizer x peer, one thread each.

Run: python -m pytest bench/bench_step.py --benchmark-json=bench/step.json
     python bench/report.py bench/step.json

Each benchmark times a chunk of K steps (K in the group name; report.py divides by it), after
checking that the peer's first losses match the NumPy reference from the same weights. Peers
that are not installed are skipped with the reason. bench/compare.py runs the same workloads
interleaved, for ratios less exposed to a noisy host.
"""

import pytest
import workloads as W

# config -> K steps per timed call (~1-100 ms per call for pycvnn cpp)
STEPS = {"tiny": 100, "mnist": 10, "wide": 2}
ROUNDS = {"tiny": 20, "mnist": 10, "wide": 5}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    for note in W.single_thread():
        print(f"bench_step: {note}")


@pytest.fixture(scope="module")
def workloads():
    """(config, optimizer) -> (workload, the reference's first losses), built once."""
    cache = {}

    def get(config, optimizer):
        if (config, optimizer) not in cache:
            work = W.make_workload(config, optimizer, STEPS[config])
            cache[config, optimizer] = work, W.make_runner("numpy", work).losses(W.VERIFY_STEPS)
        return cache[config, optimizer]

    return get


@pytest.mark.parametrize("peer", W.PEERS)
@pytest.mark.parametrize("optimizer", list(W.LEARNING_RATES))
@pytest.mark.parametrize("config", list(W.CONFIGS))
def bench_step(benchmark, workloads, config, optimizer, peer):
    reason = W.missing_reason(peer)
    if reason:
        pytest.skip(reason)
    work, want = workloads(config, optimizer)
    runner = W.make_runner(peer, work)
    W.verify(runner, peer, want)
    benchmark.group = f"step:{config}:{optimizer}:K={work.n_batches}"
    benchmark.extra_info["steps"] = work.n_batches
    benchmark.pedantic(runner.chunk, rounds=ROUNDS[config], warmup_rounds=1)
