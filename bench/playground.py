"""The playground's speed through its HTTP API, on a live `pycvnn playground` on loopback.

    python bench/playground.py [--seconds 5] [--port 0]

Training epochs a second through POST /api/sessions/{id}/train (circle, 500 points, hidden
[8, 8], tanh, Adam, batch 10; epochs / wall time over many calls of k epochs); boundary
frames a second (GET .../boundary?size=64 with all 16 neurons, the JSON parsed by a native
parser as the page's is); and /api/health's latency, median and max, while 8 sessions train
at once.
"""

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

import orjson
from cli_options import parse

CONFIG = {"dataset": "circle", "n": 500, "hidden": [8, 8], "activation": "tanh",
          "optimizer": {"name": "adam", "lr": 0.03}, "batch_size": 10}  # fmt: skip


class Client:
    """One keep-alive connection to the server, as a page holds one."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        headers = {} if data is None else {"Content-Type": "application/json"}
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        raw = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {raw[:200]!r}")
        return raw

    def session(self, **config):
        return json.loads(self.call("POST", "/api/sessions", {**CONFIG, **config}))["id"]

    def train(self, sid, epochs):
        return json.loads(self.call("POST", f"/api/sessions/{sid}/train", {"epochs": epochs}))


def start_server(port):
    if port == 0:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pycvnn", "playground", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    proc.stdout.readline()
    for _ in range(400):
        try:
            Client(port).call("GET", "/api/health")
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the playground did not start")


def epochs_per_second(client, k, seconds, **config):
    sid = client.session(**config)
    client.train(sid, k)  # warm-up: the first call builds the network
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        done = client.train(sid, k)["epoch"] - k
    return done / (time.perf_counter() - start)


def frames_per_second(client, size, seconds):
    sid = client.session()
    client.train(sid, 100)
    frames, start, sizes = 0, time.perf_counter(), set()
    while time.perf_counter() - start < seconds:
        # Parsed natively, as the page's JSON.parse does (Python's json module alone takes
        # longer than the server's whole frame).
        frame = orjson.loads(client.call("GET", f"/api/sessions/{sid}/boundary?size={size}"))
        sizes.add(len(frame["neurons"]))
        frames += 1
    assert sizes == {16}, sizes
    return frames / (time.perf_counter() - start)


def health_under_load(port, sessions, k, seconds):
    """Health latencies (s) while `sessions` sessions each train k epochs a call, nonstop."""
    stop, trained = threading.Event(), []
    ids = [Client(port).session(seed=i) for i in range(sessions)]

    def trainer(sid):
        client, n = Client(port), 0
        while not stop.is_set():
            n = client.train(sid, k)["epoch"]
        trained.append(n)

    threads = [threading.Thread(target=trainer, args=(sid,)) for sid in ids]
    began = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(0.5)  # every session is training
    probe, latencies, start = Client(port), [], time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        probe.call("GET", "/api/health")
        latencies.append(time.perf_counter() - t0)
        time.sleep(0.02)
    stop.set()
    for t in threads:
        t.join()
    return latencies, sum(trained) / (time.perf_counter() - began)


def main():
    args = parse(__doc__, seconds=5.0, port=0)
    load_before = os.getloadavg()[0]
    proc, port = start_server(args.port)
    try:
        client = Client(port)
        rows = []
        for k in (1000, 100, 10):
            rate = epochs_per_second(client, k, args.seconds)
            rows.append((f"train epochs/s, {k} epochs a call", f"{rate:,.0f}", ">= 2,000"))
        rate = epochs_per_second(client, 1000, args.seconds, n=1000)
        rows.append(("train epochs/s, 1000 a call, n=1000 (500 train)", f"{rate:,.0f}", ""))
        fps = frames_per_second(client, 64, args.seconds)
        rows.append(("boundary frames/s, 64x64 + 16 neurons", f"{fps:,.1f}", ">= 30"))
        for k in (1000, 100):
            lat, rate = health_under_load(port, 8, k, args.seconds)
            ms = sorted(x * 1000 for x in lat)
            rows.append(
                (
                    f"health ms while 8 sessions train ({k} a call), median / max",
                    f"{statistics.median(ms):.1f} / {ms[-1]:.1f}",
                    "<= 50",
                )
            )
            rows.append(("  meanwhile, epochs/s of the 8 sessions together", f"{rate:,.0f}", ""))
        width = max(len(r[0]) for r in rows)
        print(f"{'measure':<{width}}  {'value':>14}  target")
        for name, value, target in rows:
            print(f"{name:<{width}}  {value:>14}  {target}")
        print(
            f"load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, "
            f"on {os.cpu_count()} cores"
        )
    finally:
        proc.send_signal(2)
        proc.wait(30)


if __name__ == "__main__":
    main()
