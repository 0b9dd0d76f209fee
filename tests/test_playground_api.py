"""The playground's HTTP API through Starlette's test client (no network), and the
`pycvnn playground` command as a real server on a free port."""

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request

import numpy as np
import pytest
from playhelpers import free_port, start_playground
from starlette.testclient import TestClient

import pycvnn
from pycvnn import cli
from pycvnn.cli.playground import listen
from pycvnn.playground.app import create_app
from pycvnn.playground.config import DEFAULTS

SESSIONS = "/api/sessions"


@pytest.fixture
def client():
    with TestClient(create_app()) as c:
        yield c


def new(client, **config):
    r = client.post(SESSIONS, json=config)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def train(client, sid, epochs):
    r = client.post(f"{SESSIONS}/{sid}/train", json={"epochs": epochs})
    assert r.status_code == 200, r.text
    return r.json()


def error(r, status, field):
    assert r.status_code == status, r.text
    message = r.json()["error"]
    assert message.startswith(f"{field}: "), message
    return message


# ---- health, options, the page ------------------------------------------------------------


def test_health(client):
    assert client.get("/api/health").json() == {"ok": True, "version": pycvnn.__version__}


def test_options_derive_from_the_registries(client):
    o = client.get("/api/options").json()
    assert o["datasets"] == {
        "circle": "classification",
        "xor": "classification",
        "gaussians": "classification",
        "spiral": "classification",
        "plane": "regression",
        "gaussian": "regression",
    }
    assert o["features"] == ["x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)"]
    assert o["activations"][:5] == ["tanh", "sigmoid", "relu", "leaky_relu", "linear"]
    assert set(o["activations"]) == {*pycvnn.activations.names(per_row=False), "linear"}
    assert o["losses"] == {
        "classification": ["cross_entropy", "hinge", "squared_hinge"],
        "regression": ["l1", "l2", "huber"],
    }
    assert set(o["optimizers"]) == {"gd", "momentum", "rmsprop", "adam", "adamw"}
    assert o["optimizers"]["momentum"] == {"beta": 0.9, "form": "ema", "nesterov": False}
    assert set(o["schedules"]) == set(pycvnn.schedules.REGISTRY)
    assert o["defaults"] == DEFAULTS
    assert o["limits"]["layers"] == 6 and o["limits"]["neurons"] == 8
    assert o["limits"]["n"] == [10, 10000] and o["limits"]["size"] == [8, 256]


def test_page_and_static_files(client):
    for path in ("/", "/static/index.html"):
        r = client.get(path)
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        assert "<html" in r.text
    error(client.get("/static/missing.js"), 404, "path")


# ---- sessions -----------------------------------------------------------------------------


def test_new_session_has_the_defaults_data_and_weights(client):
    sid = new(client)
    assert len(sid) == 16 and int(sid, 16) >= 0
    s = client.get(f"{SESSIONS}/{sid}").json()
    assert s["id"] == sid and s["epoch"] == 0
    config = s["config"]
    for key in ("dataset", "noise", "n", "train_fraction", "seed", "features", "hidden"):
        assert config[key] == DEFAULTS[key]
    assert config["optimizer"] == {
        "name": "adam",
        "lr": 0.03,
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-8,
    }
    assert len(s["points"]["train"]) == 250 and len(s["points"]["test"]) == 250
    labels = {p[2] for part in ("train", "test") for p in s["points"][part]}
    assert labels == {0.0, 1.0}
    shapes = [(len(layer["W"]), len(layer["W"][0]), len(layer["b"])) for layer in s["layers"]]
    assert shapes == [(4, 2, 4), (2, 4, 2), (1, 2, 1)]
    assert s["history"] == {
        "epoch": [],
        "train_loss": [],
        "test_loss": [],
        "train_accuracy": [],
        "test_accuracy": [],
    }


def test_the_same_config_gives_the_same_data_and_weights(client):
    a, b = (client.get(f"{SESSIONS}/{new(client, seed=7)}").json() for _ in range(2))
    assert a["points"] == b["points"] and a["layers"] == b["layers"]
    c = client.get(f"{SESSIONS}/{new(client, seed=8)}").json()
    assert c["points"] != a["points"]


def test_train_counts_epochs_and_keeps_history(client):
    sid = new(client)
    first = train(client, sid, 3)
    assert set(first) == {
        "epoch",
        "train_loss",
        "test_loss",
        "train_accuracy",
        "test_accuracy",
        "lr",
    }
    assert first["epoch"] == 3
    assert train(client, sid, 7)["epoch"] == 10
    history = client.get(f"{SESSIONS}/{sid}").json()["history"]
    assert history["epoch"] == [3, 10]
    assert history["test_accuracy"][0] == first["test_accuracy"]


def test_circle_with_the_defaults_reaches_95_percent(client):
    sid = new(client)
    for _ in range(10):
        result = train(client, sid, 50)
        if result["test_accuracy"] >= 0.95:
            break
    assert result["test_accuracy"] >= 0.95, result


def test_regression_on_plane(client):
    sid = new(client, dataset="plane")
    assert client.get(f"{SESSIONS}/{sid}").json()["config"]["loss"] == "l2"
    before = train(client, sid, 1)
    after = train(client, sid, 200)
    assert "test_accuracy" not in after and "train_accuracy" not in after
    assert after["test_loss"] < before["test_loss"] and after["test_loss"] < 0.01
    b = client.get(f"{SESSIONS}/{sid}/boundary?size=16").json()
    out = np.array(b["output"])
    lo, hi = b["range"]
    assert lo == pytest.approx(out.min(), abs=1e-3) and hi == pytest.approx(out.max(), abs=1e-3)
    # The plane's target is (x1 + x2) / 10: the corners of the grid near -1.2 and 1.2.
    assert out[0] < -0.8 and out[-1] > 0.8


def _forward(layers, X, activation):
    """The network's hidden activations and output score, from the API's weights."""
    a, hidden = X, []
    for i, layer in enumerate(layers):
        z = a @ np.array(layer["W"]).T + np.array(layer["b"])
        a = z if i == len(layers) - 1 else activation(z)
        hidden.append(a)
    return hidden[:-1], a[:, 0]


def _grid(size, extent):
    x0, x1, y0, y1 = extent
    gx, gy = np.meshgrid(np.linspace(x0, x1, size), np.linspace(y0, y1, size))
    return np.stack([gx.ravel(), gy.ravel()], axis=1) / 6  # the features x1, x2


@pytest.mark.parametrize(
    "loss, to_output",
    [
        ("cross_entropy", lambda s: 1 / (1 + np.exp(-s))),
        ("hinge", lambda s: np.clip((s + 1) / 2, 0, 1)),
    ],
)
def test_boundary_is_the_network_over_the_plane(client, loss, to_output):
    sid = new(client, hidden=[3, 2], loss=loss)
    train(client, sid, 20)
    b = client.get(f"{SESSIONS}/{sid}/boundary?size=12").json()
    assert b["size"] == 12 and b["extent"] == [-6.0, 6.0, -6.0, 6.0]
    layers = client.get(f"{SESSIONS}/{sid}").json()["layers"]
    hidden, score = _forward(layers, _grid(12, b["extent"]), np.tanh)
    np.testing.assert_allclose(b["output"], to_output(score), atol=2e-3)
    neurons = [a[:, j] for a in hidden for j in range(a.shape[1])]
    assert len(b["neurons"]) == 5
    np.testing.assert_allclose(b["neurons"], neurons, atol=2e-3)
    assert "range" not in b


def test_boundary_default_size_and_no_hidden_layer(client):
    b = client.get(f"{SESSIONS}/{new(client, hidden=[])}/boundary").json()
    assert b["size"] == 64 and len(b["output"]) == 64 * 64 and b["neurons"] == []


@pytest.mark.parametrize("dataset", ["circle", "xor", "gaussians", "spiral", "plane", "gaussian"])
def test_every_dataset_loss_and_feature_trains(client, dataset):
    kind = client.get("/api/options").json()["datasets"][dataset]
    losses = client.get("/api/options").json()["losses"][kind]
    features = client.get("/api/options").json()["features"]
    for loss in losses:
        sid = new(client, dataset=dataset, loss=loss, n=60, features=features, noise=0.5)
        result = train(client, sid, 2)
        assert np.isfinite(result["train_loss"]) and result["epoch"] == 2
        b = client.get(f"{SESSIONS}/{sid}/boundary?size=8").json()
        assert len(b["output"]) == 64 and len(b["neurons"]) == 6


def test_every_activation_optimizer_and_schedule_trains(client):
    options = client.get("/api/options").json()
    for activation in options["activations"]:
        assert train(client, new(client, activation=activation, n=40), 2)["epoch"] == 2
    for name, hyper in options["optimizers"].items():
        sid = new(client, optimizer={"name": name, "lr": 0.01, **hyper}, n=40, batch_size="full")
        assert train(client, sid, 2)["epoch"] == 2
    for name, hyper in options["schedules"].items():
        sid = new(client, schedule={"name": name, **hyper}, n=40, batch_size=1)
        assert np.isfinite(train(client, sid, 3)["lr"])


def test_a_schedule_counts_epochs_across_train_calls(client):
    sid = new(client, schedule={"name": "step", "step_size": 3, "gamma": 0.5}, n=40)
    assert train(client, sid, 2)["lr"] == pytest.approx(0.03)
    assert train(client, sid, 2)["lr"] == pytest.approx(0.015)  # epoch 3 of the session


def test_patch_changes_the_optimizer_and_keeps_the_weights(client):
    sid = new(client)
    train(client, sid, 5)
    before = client.get(f"{SESSIONS}/{sid}").json()
    r = client.patch(
        f"{SESSIONS}/{sid}",
        json={
            "optimizer": {"name": "momentum", "lr": 0.1, "form": "heavy_ball"},
            "batch_size": "full",
        },
    )
    assert r.status_code == 200, r.text
    after = client.get(f"{SESSIONS}/{sid}").json()
    assert after["layers"] == before["layers"] and after["epoch"] == 5
    assert after["config"]["optimizer"] == {
        "name": "momentum",
        "lr": 0.1,
        "beta": 0.9,
        "form": "heavy_ball",
        "nesterov": False,
    }
    assert after["config"]["batch_size"] == "full" and after["config"]["hidden"] == [4, 2]
    assert train(client, sid, 1)["epoch"] == 6
    assert client.get(f"{SESSIONS}/{sid}").json()["layers"] != before["layers"]
    client.patch(f"{SESSIONS}/{sid}", json={"optimizer": {"name": "rmsprop"}})
    assert client.get(f"{SESSIONS}/{sid}").json()["config"]["optimizer"]["lr"] == 0.1


def test_patch_refuses_what_needs_a_new_session(client):
    sid = new(client)
    error(client.patch(f"{SESSIONS}/{sid}", json={"hidden": [3]}), 400, "hidden")
    error(
        client.patch(f"{SESSIONS}/{sid}", json={"optimizer": {"name": "adam", "lr": 0}}),
        400,
        "optimizer.lr",
    )
    assert client.get(f"{SESSIONS}/{sid}").json()["config"]["optimizer"]["lr"] == 0.03


def test_delete(client):
    sid = new(client)
    assert client.delete(f"{SESSIONS}/{sid}").status_code == 204
    error(client.get(f"{SESSIONS}/{sid}"), 404, "session")
    error(client.delete(f"{SESSIONS}/{sid}"), 404, "session")


def test_divergence_is_an_error_and_the_session_lives_on(client):
    sid = new(client, activation="linear", optimizer={"name": "gd", "lr": 1e30})
    before = client.get(f"{SESSIONS}/{sid}").json()["layers"]
    error(client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 5}), 400, "optimizer.lr")
    assert client.get(f"{SESSIONS}/{sid}").json()["layers"] == before
    client.patch(f"{SESSIONS}/{sid}", json={"optimizer": {"name": "gd", "lr": 0.01}})
    assert np.isfinite(train(client, sid, 2)["train_loss"])


# ---- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, field",
    [
        ({"dataset": "moons"}, "dataset"),
        ({"dataset": 3}, "dataset"),
        ({"activation": "softmax"}, "activation"),
        ({"activation": "swish"}, "activation"),
        ({"hidden": [2] * 7}, "hidden"),
        ({"hidden": [9]}, "hidden[0]"),
        ({"hidden": [4, 0]}, "hidden[1]"),
        ({"hidden": "4,2"}, "hidden"),
        ({"optimizer": {"name": "adam", "lr": 0}}, "optimizer.lr"),
        ({"optimizer": {"name": "adam", "lr": -0.1}}, "optimizer.lr"),
        ({"optimizer": {"name": "adam", "lr": "0.1"}}, "optimizer.lr"),
        ({"optimizer": {"name": "nadam"}}, "optimizer.name"),
        ({"optimizer": {"name": "adam", "beta": 0.9}}, "optimizer.beta"),
        ({"optimizer": {"name": "adam", "beta1": 1.0}}, "optimizer.beta1"),
        ({"optimizer": {"name": "momentum", "nesterov": True}}, "optimizer.nesterov"),
        ({"optimizer": "adam"}, "optimizer"),
        ({"n": 9}, "n"),
        ({"n": 10001}, "n"),
        ({"n": 500.0}, "n"),
        ({"noise": -0.1}, "noise"),
        ({"train_fraction": 1.0}, "train_fraction"),
        ({"seed": -1}, "seed"),
        ({"features": []}, "features"),
        ({"features": ["x3"]}, "features[0]"),
        ({"loss": "l2"}, "loss"),
        ({"dataset": "plane", "loss": "hinge"}, "loss"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": "half"}, "batch_size"),
        ({"weight_decay": -1}, "weight_decay"),
        ({"schedule": {"name": "step", "step_size": 0}}, "schedule.step_size"),
        ({"schedule": {"name": "cyclic"}}, "schedule.name"),
        ({"layers": 3}, "layers"),
        ([1, 2], "body"),
    ],
)
def test_bad_session_config(client, body, field):
    error(client.post(SESSIONS, json=body), 400, field)


@pytest.mark.parametrize(
    "text",
    [
        b'{"optimizer": {"name": "adam", "lr": NaN}}',
        b'{"optimizer": {"name": "adam", "lr": Infinity}}',
    ],
)
def test_lr_not_finite(client, text):
    message = error(client.post(SESSIONS, content=text), 400, "optimizer.lr")
    assert "finite" in message


@pytest.mark.parametrize("text", [b"{", b"[" * 20000, b"\xff"])
def test_bad_json(client, text):
    error(client.post(SESSIONS, content=text), 400, "body")


@pytest.mark.parametrize("epochs", [0, 1001, "5", 2.5, None])
def test_bad_epochs(client, epochs):
    sid = new(client)
    error(client.post(f"{SESSIONS}/{sid}/train", json={"epochs": epochs}), 400, "epochs")
    assert client.get(f"{SESSIONS}/{sid}").json()["epoch"] == 0


@pytest.mark.parametrize("size", ["7", "257", "abc", "", "1e2"])
def test_bad_size(client, size):
    sid = new(client)
    error(client.get(f"{SESSIONS}/{sid}/boundary?size={size}"), 400, "size")


def test_body_over_64_kib(client):
    big = json.dumps({"features": ["x1"] * 20000}).encode()
    assert len(big) > 64 * 1024
    error(client.post(SESSIONS, content=big), 400, "body")
    # Without a Content-Length (chunked), the limit holds as the body arrives.
    error(client.post(SESSIONS, content=iter([big[:40000], big[40000:]])), 400, "body")
    sid = new(client)
    error(client.post(f"{SESSIONS}/{sid}/train", content=big), 400, "body")
    assert len(json.dumps({"features": ["x1"] * 6000})) < 64 * 1024  # under the limit: a 400
    error(client.post(SESSIONS, json={"features": ["x1"] * 6000}), 400, "features")


def test_unknown_session(client):
    for method, path in [
        ("GET", ""),
        ("DELETE", ""),
        ("PATCH", ""),
        ("POST", "/train"),
        ("GET", "/boundary"),
    ]:
        r = client.request(method, f"{SESSIONS}/0123456789abcdef{path}", json={})
        assert "0123456789abcdef" in error(r, 404, "session")


def test_the_33rd_session_evicts_the_least_recently_used(client):
    ids = [new(client, n=10) for _ in range(32)]
    assert client.get(f"{SESSIONS}/{ids[0]}").status_code == 200  # now the most recent
    newest = new(client, n=10)
    error(client.get(f"{SESSIONS}/{ids[1]}"), 404, "session")
    for sid in [ids[0], *ids[2:], newest]:
        assert client.get(f"{SESSIONS}/{sid}").status_code == 200
    assert len(client.app.state.store) == 32


# ---- threads ------------------------------------------------------------------------------


def _run_threads(targets):
    errors = []

    def guarded(fn):
        try:
            fn()
        except BaseException as err:  # noqa: B036 (reported below)
            errors.append(err)

    threads = [threading.Thread(target=guarded, args=(fn,)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_concurrent_train_calls_on_one_session(client):
    sid = new(client)
    epochs = []

    def worker():
        for _ in range(5):
            epochs.append(train(client, sid, 4)["epoch"])

    _run_threads([worker] * 4)
    # Each call ran alone on the model: the counts it reports are 4, 8, ..., 80, each once.
    assert sorted(epochs) == list(range(4, 81, 4))
    assert client.get(f"{SESSIONS}/{sid}").json()["epoch"] == 80


def test_concurrent_sessions_train_as_they_would_alone(client):
    seeds = range(4)
    alone = {}
    for seed in seeds:
        sid = new(client, seed=seed, hidden=[8, 8])
        for _ in range(3):
            alone[seed] = train(client, sid, 10)
    together, ids = {}, {seed: new(client, seed=seed, hidden=[8, 8]) for seed in seeds}

    def worker(seed):
        def run():
            for _ in range(3):
                together[seed] = train(client, ids[seed], 10)
                client.get(f"{SESSIONS}/{ids[seed]}/boundary?size=16")

        return run

    _run_threads([worker(seed) for seed in seeds])
    for seed in seeds:
        assert together[seed]["epoch"] == 30
        for key in ("train_loss", "test_loss", "test_accuracy"):
            assert together[seed][key] == pytest.approx(alone[seed][key], rel=1e-4)


# ---- the command --------------------------------------------------------------------------


def test_bad_port_is_an_argparse_error(capsys):
    for port in ("0", "70000", "abc"):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["playground", "--port", port])
        assert exit_.value.code == 2
        assert f"argument --port: expected a port from 1 to 65535, got '{port}'" in (
            capsys.readouterr().err
        )


def test_missing_extra_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # makes `import uvicorn` fail
    assert cli.main(["playground"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "pycvnn playground: needs uvicorn, which is not installed: pip install 'pycvnn[playground]'"
    )


@pytest.mark.skipif(os.name == "nt", reason="SIGINT to a child process is POSIX")
def test_the_command_serves_until_ctrl_c():
    port = free_port()
    proc = start_playground(port, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == f"pycvnn playground: http://127.0.0.1:{port}/\n"
        health = None
        for _ in range(600):  # until the server listens (it binds right after printing)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health") as r:
                    health = json.loads(r.read())
                break
            except OSError:
                threading.Event().wait(0.05)
        assert health == {"ok": True, "version": pycvnn.__version__}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        err = proc.stderr.read()
        assert "Traceback" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_command_refuses_a_busy_port_or_an_unknown_host_before_announcing(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli.main(["playground", "--port", str(port)]) == 1
        out, err = capsys.readouterr()
        assert out == ""  # no URL printed for a server that cannot start
        assert (
            err.strip()
            == f"pycvnn playground: cannot listen on 127.0.0.1:{port}: "
            + os.strerror(errno.EADDRINUSE)
        )
    assert cli.main(["playground", "--host", "no-such-host.invalid", "--port", "8000"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(
        "pycvnn playground: cannot listen on no-such-host.invalid:8000: "
    )


def test_the_listener_is_a_tcp_socket_so_connections_get_nodelay():
    # asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP; a listener made
    # with proto 0 gave keep-alive clients a 40 ms wait on every small response.
    for host in ("127.0.0.1", "localhost"):
        with listen(host, 0) as sock:
            assert sock.proto == socket.IPPROTO_TCP
            assert sock.type == socket.SOCK_STREAM


# ---- found in review: inputs that gave a 500, and one call holding the workers ------------


@pytest.mark.parametrize("body", [b"[1]", b'["optimizer"]', b'"abc"', b"5", b"null"])
def test_a_patch_body_that_is_not_an_object_is_a_400(client, body):
    sid = new(client)
    error(client.patch(f"{SESSIONS}/{sid}", content=body), 400, "body")


@pytest.mark.parametrize(
    "config,field",
    [
        ({"noise": 10**400}, "noise"),
        ({"train_fraction": 10**400}, "train_fraction"),
        ({"weight_decay": 10**400}, "weight_decay"),
        ({"optimizer": {"name": "adam", "lr": 10**400}}, "optimizer.lr"),
        ({"optimizer": {"name": "adam", "beta1": -(10**400)}}, "optimizer.beta1"),
    ],
)
def test_an_int_past_floats_range_is_a_400_naming_the_field(client, config, field):
    error(client.post(SESSIONS, json=config), 400, field)


def test_a_train_call_is_capped_and_the_session_says_its_cap(client):
    sid = new(client, n=10000, train_fraction=0.9, hidden=[8] * 6, batch_size=1)
    cap = client.get(f"{SESSIONS}/{sid}").json()["max_epochs"]
    assert cap == 200_000 // 9000  # 9,000 batches an epoch
    message = error(client.post(f"{SESSIONS}/{sid}/train", json={"epochs": cap + 1}), 400, "epochs")
    assert f"at most {cap} " in message
    assert client.get(f"{SESSIONS}/{sid}").json()["epoch"] == 0  # refused before any work
    r = client.patch(f"{SESSIONS}/{sid}", json={"batch_size": "full"})
    assert r.json()["max_epochs"] == 2_000_000 // 9000  # one batch an epoch: rows bind


def test_a_schedule_that_fails_mid_call_is_a_400_and_the_epochs_before_it_count(client):
    sid = new(client)
    session = client.app.state.store.get(sid)

    def overflowing(epoch):
        if epoch >= 2:
            raise ValueError("gamma: lr * gamma ** 2 overflows a float at epoch 2")
        return 0.01

    session.schedule = overflowing
    message = error(
        client.post(f"{SESSIONS}/{sid}/train", json={"epochs": 5}), 400, "schedule.gamma"
    )
    assert "overflows" in message
    state = client.get(f"{SESSIONS}/{sid}").json()
    assert state["epoch"] == 2 and state["history"]["epoch"] == [2]


@pytest.mark.parametrize("size", ["1_0", " 12 ", "٣٣", "+16"])
def test_boundary_size_takes_ascii_digits_only(client, size):
    sid = new(client)
    error(client.get(f"{SESSIONS}/{sid}/boundary", params={"size": size}), 400, "size")
