"""Model files that also hold the optimizer: round trips for every optimizer and dtype, a loaded
(model, optimizer) pair continuing a fit bit for bit on both backends, files without an
optimizer unchanged (version 2), and damaged or crafted optimizer entries and state members
refused with a ValueError naming the file."""

import hashlib
import json
import math
import re
import warnings
import zipfile

import numpy as np
import pytest
from nethelpers import BACKENDS, backend_fixture
from test_io_cli import run_train
from test_model_files import DENSE_4_3, canonical, npy_bytes, small_model, write_archive

import pycvnn
from pycvnn import io as pio
from pycvnn import optim

X, Y = pycvnn.datasets.digits()
X, Y = X[:300], Y[:300]

OPTIMIZERS = {  # every registry name, with hyperparameters away from their defaults
    "gd": lambda: optim.GD(lr=0.1, clip_norm=1.0),
    "sgd": lambda: optim.SGD(lr=0.05, weight_decay=1e-3),
    "momentum": lambda: optim.Momentum(lr=0.05, beta=0.8, form="heavy_ball", nesterov=True),
    "rmsprop": lambda: optim.RMSProp(lr=2e-3, rho=0.95, eps=1e-7, weight_decay=1e-4),
    "adam": lambda: optim.Adam(lr=1e-3, beta1=0.85, beta2=0.99, clip_norm=5.0),
    "adamw": lambda: optim.AdamW(lr=1e-3, weight_decay=0.05),
}
DTYPES = ["float32", "float64"]


def test_every_registered_optimizer_is_covered():
    assert sorted(OPTIMIZERS) == sorted(optim.OPTIMIZERS)


backend = pytest.fixture(params=BACKENDS)(backend_fixture)


def _fit(model, opt, seed):
    return model.fit(X, Y, optimizer=opt, epochs=1, batch_size=64, verbose=False, seed=seed)


def trained_pair(name, dtype):
    model = pycvnn.MLP([64, 16, 10], output="softmax", seed=0, dtype=dtype)
    opt = OPTIMIZERS[name]()
    _fit(model, opt, 1)
    return model, opt


def assert_same_optimizer(loaded, opt):
    assert type(loaded) is type(opt) and repr(loaded) == repr(opt)
    assert pio._hyperparameters(loaded) == pio._hyperparameters(opt)
    assert loaded.t == opt.t
    assert len(loaded._state) == len(opt._state)
    for a, b in zip(loaded._state, opt._state):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


# ---- round trips and resuming ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_round_trip_keeps_class_hyperparameters_step_count_and_state(tmp_path, name, dtype):
    model, opt = trained_pair(name, dtype)
    assert opt.t == 5
    path = tmp_path / "pair.npz"
    model.save(path, optimizer=opt)
    loaded, loaded_opt = pycvnn.load(path, with_optimizer=True)
    assert loaded.dtype == model.dtype and loaded.params.tobytes() == model.params.tobytes()
    assert_same_optimizer(loaded_opt, opt)
    assert loaded_opt._owner[0] == loaded._uid != model._uid  # bound to the new model
    assert all(b.ctypes.data % 64 == 0 for b in loaded_opt._state if b.size)
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(str(data["header"]))
        assert data["state"].shape == (opt.n_state, model.n_params)
        assert data["state"].dtype == np.dtype(dtype)
    assert header["version"] == pio.VERSION == 3
    assert header["optimizer"]["t"] == 5 and optim.OPTIMIZERS[header["optimizer"]["name"]] is type(
        opt
    )
    # without with_optimizer the same file gives the model alone
    alone = pycvnn.load(path)
    assert isinstance(alone, pycvnn.Sequential) and alone.params.tobytes() == model.params.tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_loaded_pair_continues_the_fit_exactly(backend, tmp_path, name, dtype):
    model, opt = trained_pair(name, dtype)
    path = tmp_path / "pair.npz"
    pycvnn.io.save(model, path, optimizer=opt)
    model2, opt2 = pycvnn.load(path, with_optimizer=True)
    _fit(model, opt, 2)
    _fit(model2, opt2, 2)
    assert model2.params.tobytes() == model.params.tobytes()
    assert_same_optimizer(opt2, opt)


def test_resuming_differs_from_restarting_the_optimizer(tmp_path):
    # The state matters: the same weights with a fresh Adam end elsewhere (so the test above
    # would catch a loader that dropped the state).
    model, opt = trained_pair("adam", "float64")
    model.save(tmp_path / "pair.npz", optimizer=opt)
    resumed, resumed_opt = pycvnn.load(tmp_path / "pair.npz", with_optimizer=True)
    restarted = pycvnn.load(tmp_path / "pair.npz")
    _fit(resumed, resumed_opt, 2)
    _fit(restarted, OPTIMIZERS["adam"](), 2)
    assert not np.array_equal(resumed.params, restarted.params)


def test_an_unused_optimizer_is_stored_with_t_0_and_zero_state(tmp_path):
    model, opt = pycvnn.MLP([64, 16, 10], seed=0), optim.Adam(lr=1e-3)
    model.save(tmp_path / "fresh.npz", optimizer=opt)
    model2, opt2 = pycvnn.load(tmp_path / "fresh.npz", with_optimizer=True)
    assert opt2.t == 0 and all(not b.any() for b in opt2._state)
    assert [b.size for b in opt2._state] == [model.n_params] * 2
    _fit(model, opt, 3)
    _fit(model2, opt2, 3)
    assert model2.params.tobytes() == model.params.tobytes()


def test_a_loaded_model_can_be_trained_with_a_new_optimizer(tmp_path):
    # A loaded model gets its own identity, which an optimizer's state is keyed by.
    model = pycvnn.MLP([64, 16, 10], seed=0)
    model.save(tmp_path / "m.npz")
    loaded = pycvnn.load(tmp_path / "m.npz")
    _fit(model, "adam", 1)
    _fit(loaded, "adam", 1)
    assert loaded.params.tobytes() == model.params.tobytes()


def test_the_state_checksum_follows_the_documented_rule(tmp_path):
    model, opt = trained_pair("rmsprop", "float32")
    model.save(tmp_path / "m.npz", optimizer=opt)
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        text, params, state = str(data["header"]), data["params"], data["state"]
    header = json.loads(text)
    body = {k: v for k, v in header.items() if k != "sha256"}
    digest = hashlib.sha256(canonical(body).encode() + b"\n" + params.tobytes() + state.tobytes())
    assert header["sha256"] == digest.hexdigest()


# ---- files without an optimizer are unchanged -------------------------------------------------


def version_2_members(model):
    """The members today's version-2 writer produces, built from the documented rule."""
    params = model.params.astype(np.dtype(model.dtype).newbyteorder("<"))
    header = {
        "format": "pycvnn-model",
        "version": 2,
        "dtype": np.dtype(model.dtype).name,
        "layers": [pio._layer_config(layer) for layer in model.layers],
    }
    digest = hashlib.sha256(canonical(header).encode() + b"\n" + params.tobytes())
    text = canonical(dict(header, sha256=digest.hexdigest()))
    return {"header.npy": npy_bytes(np.array(text)), "params.npy": npy_bytes(params)}


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_file_without_an_optimizer_is_unchanged(tmp_path, dtype):
    model, opt = trained_pair("adam", dtype)
    for kwargs in ({}, {"optimizer": None}):
        model.save(tmp_path / "m.npz", **kwargs)
        with zipfile.ZipFile(tmp_path / "m.npz") as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
        assert members == version_2_members(model)
    assert pycvnn.load(tmp_path / "m.npz", with_optimizer=True)[1] is None


# ---- what save refuses --------------------------------------------------------------------------


class MyAdam(optim.Adam):
    pass


def refused_at_save(tmp_path, model, optimizer, error, pattern):
    path = tmp_path / "refused.npz"
    with pytest.raises(error, match=pattern):
        model.save(path, optimizer=optimizer)
    assert list(tmp_path.iterdir()) == []


def test_an_optimizer_of_another_model_is_refused(tmp_path):
    model, opt = trained_pair("adam", "float32")
    other = pycvnn.MLP([64, 16, 10], output="softmax", seed=0)  # same shape, another model
    refused_at_save(tmp_path, other, opt, ValueError, r"optimizer: .*another model")
    minimized = optim.Adam()
    optim.minimize(lambda x: x, [1.0, 2.0], minimized, steps=3)
    refused_at_save(tmp_path, model, minimized, ValueError, r"optimizer: .*another model")


def test_save_refuses_what_no_file_could_rebuild(tmp_path):
    model, _ = trained_pair("gd", "float32")
    refused_at_save(tmp_path, model, "adam", TypeError, r"optimizer: expected None or .*str")
    refused_at_save(tmp_path, model, MyAdam(), ValueError, r"optimizer: .*MyAdam")
    changed = optim.Adam()
    changed.beta1 = 1.5  # set after construction, past what the constructor allows
    refused_at_save(tmp_path, model, changed, ValueError, r"optimizer: beta1")


def test_with_optimizer_must_be_a_bool(tmp_path):
    model = small_model()
    model.save(tmp_path / "m.npz")
    with pytest.raises(TypeError, match="with_optimizer"):
        pycvnn.load(tmp_path / "m.npz", with_optimizer="yes")


# ---- damaged and crafted files ----------------------------------------------------------------

PARAMS = np.zeros(15, np.float32)
ADAM_ENTRY = {
    "name": "adam",
    "hyperparameters": {
        "lr": 0.001,
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-08,
        "weight_decay": 0.0,
        "clip_norm": None,
    },
    "t": 3,
}


def write_v3(path, entry=ADAM_ENTRY, state=None, version=3, members=None, compress=()):
    """A version-3 file with a right checksum over whatever it holds (an Adam state of ones
    unless given); `members` edits the member dict before writing."""
    state = np.ones((2, 15), np.float32) if state is None else state
    header = {"format": "pycvnn-model", "version": version, "dtype": "float32"}
    header.update(layers=DENSE_4_3, optimizer=entry)
    header = {k: v for k, v in header.items() if v is not None}
    body = canonical(header).encode() + b"\n" + PARAMS.tobytes() + np.asarray(state).tobytes()
    text = canonical(dict(header, sha256=hashlib.sha256(body).hexdigest()))
    archive = {"header.npy": npy_bytes(np.array(text)), "params.npy": npy_bytes(PARAMS)}
    archive["state.npy"] = npy_bytes(state, allow_pickle=True)
    write_archive(path, members(archive) if members else archive, compress=compress)


def hyper(**changes):
    """ADAM_ENTRY with these hyperparameters changed ("drop" removes one)."""
    values = dict(ADAM_ENTRY["hyperparameters"], **changes)
    return dict(ADAM_ENTRY, hyperparameters={k: v for k, v in values.items() if v != "drop"})


def momentum(**changes):
    """A Momentum entry with these hyperparameters changed (its other fields valid)."""
    values = dict(lr=0.01, beta=0.9, form="heavy_ball", nesterov=True, weight_decay=0.0)
    return {"name": "momentum", "hyperparameters": dict(values, clip_norm=None, **changes), "t": 0}


CRAFTED = {  # name: (write_v3 arguments, a pattern the message must carry)
    "a valid file (control)": ({}, None),
    "unknown optimizer class": ({"entry": dict(ADAM_ENTRY, name="lbfgs")}, r"name one of"),
    "optimizer name not a string": ({"entry": dict(ADAM_ENTRY, name=7)}, r"name one of"),
    "optimizer entry a list": ({"entry": [1, 2]}, r"optimizer entry: expected an object"),
    "optimizer entry missing t": (
        {"entry": {k: v for k, v in ADAM_ENTRY.items() if k != "t"}},
        r"optimizer entry: expected the keys",
    ),
    "hyperparameters a list": (
        {"entry": dict(ADAM_ENTRY, hyperparameters=[0.1])},
        r"hyperparameters an object",
    ),
    "missing hyperparameter": ({"entry": hyper(beta2="drop")}, r"adam hyperparameters"),
    "unknown hyperparameter": ({"entry": hyper(momentum=0.9)}, r"adam hyperparameters"),
    "another class's hyperparameters": (
        {"entry": dict(ADAM_ENTRY, name="rmsprop")},
        r"rmsprop hyperparameters",
    ),
    "negative lr": ({"entry": hyper(lr=-0.1)}, r"lr: expected a number >= 0"),
    "lr a string": ({"entry": hyper(lr="0.1")}, r"lr: expected a real number"),
    "lr a bool": ({"entry": hyper(lr=True)}, r"lr: expected a real number"),
    "beta1 = 1": ({"entry": hyper(beta1=1.0)}, r"beta1: expected a value in \[0, 1\)"),
    "eps = 0": ({"entry": hyper(eps=0)}, r"eps: expected a number > 0"),
    "momentum form unknown": ({"entry": momentum(form="nag")}, r"form: expected one of"),
    "momentum nesterov not a bool": (
        {"entry": momentum(nesterov=1)},
        r"nesterov: expected True or False",
    ),
    "nesterov with form ema": (
        {"entry": momentum(form="ema", nesterov=True)},
        r"nesterov: expected False with form='ema'",
    ),
    "clip_norm a list": ({"entry": hyper(clip_norm=[1])}, r"clip_norm"),
    "t negative": ({"entry": dict(ADAM_ENTRY, t=-1)}, r"expected t .*got -1"),
    "t a float": ({"entry": dict(ADAM_ENTRY, t=3.0)}, r"expected t .*got 3.0"),
    "t a bool": ({"entry": dict(ADAM_ENTRY, t=True)}, r"expected t .*got True"),
    "t past int64": ({"entry": dict(ADAM_ENTRY, t=2**63)}, r"expected t "),
    "state of one buffer for Adam": (
        {"state": np.ones((1, 15), np.float32)},
        r"state of shape \(1, 15\), expected \(2, 15\)",
    ),
    "state one parameter short": (
        {"state": np.ones((2, 14), np.float32)},
        r"shape \(2, 14\), expected \(2, 15\)",
    ),
    "state flat": ({"state": np.ones(30, np.float32)}, r"shape \(30,\), expected \(2, 15\)"),
    "state in Fortran order": (
        {"state": np.asfortranarray(np.ones((2, 15), np.float32))},
        r"Fortran order",
    ),
    "float64 state in a float32 model": (
        {"state": np.ones((2, 15), np.float64)},
        r"optimizer state of dtype <f8, expected <f4",
    ),
    "big-endian state": ({"state": np.ones((2, 15), ">f4")}, r"dtype >f4"),
    "pickled object state": ({"state": np.array([[None] * 15] * 2, object)}, r"pickled"),
    "compressed state": ({"compress": ("state.npy",)}, r"optimizer state compressed"),
    "NaN in the state": (
        {"state": np.where(np.arange(30).reshape(2, 15) == 17, np.nan, 1).astype(np.float32)},
        r"non-finite optimizer state value \(state\[1, 2\] = nan\)",
    ),
    "Inf in the state": (
        {"state": np.full((2, 15), np.inf, np.float32)},
        r"non-finite optimizer state value \(state\[0, 0\] = inf\)",
    ),
    "missing state member": (
        {"members": lambda m: {k: v for k, v in m.items() if k != "state.npy"}},
        r"describes an optimizer, but it lacks the member 'state.npy'",
    ),
    "state member in a version-2 file": (
        {"version": 2, "entry": None},
        r"not a pycvnn model \(it holds \['header', 'params', 'state'\]\)",
    ),
    "version 3 without an optimizer entry": ({"entry": None}, r"missing \['optimizer'\]"),
    "an optimizer in a newer version": ({"version": 4}, r"newer.*version 4"),
    "a newer version with a member this reader does not know": (
        {"version": 4, "members": lambda m: dict(m, **{"grads.npy": m["params.npy"]})},
        r"newer.*version 4",
    ),
    "another extra member": (
        {"members": lambda m: dict(m, **{"extra.npy": m["state.npy"]})},
        r"not a pycvnn model",
    ),
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_optimizer_files_are_refused_naming_the_file(tmp_path, name):
    kwargs, pattern = CRAFTED[name]
    path = tmp_path / "crafted.npz"
    write_v3(path, **kwargs)
    if pattern is None:
        model, opt = pycvnn.load(path, with_optimizer=True)
        assert type(opt) is optim.Adam and opt.t == 3 and all(b.sum() == 15 for b in opt._state)
        return
    for with_optimizer in (False, True):
        with pytest.raises(ValueError, match=r"crafted\.npz") as info:
            pycvnn.load(path, with_optimizer=with_optimizer)
        assert re.search(pattern, str(info.value)), str(info.value)


def test_a_duplicated_member_is_refused(tmp_path):
    path = tmp_path / "twice.npz"
    write_v3(path)
    with zipfile.ZipFile(path) as archive:
        state = archive.read("state.npy")
    with warnings.catch_warnings(), zipfile.ZipFile(path, "a") as archive:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate it is asked to write
        archive.writestr("state.npy", state)
    with pytest.raises(ValueError, match=r"twice\.npz.*not a pycvnn model"):
        pycvnn.load(path, with_optimizer=True)


def saved_pair_members(tmp_path):
    model = small_model()
    opt = optim.Adam(lr=0.01)
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(8, 3)), rng.integers(0, 2, 8), optimizer=opt, verbose=False)
    model.save(tmp_path / "good.npz", optimizer=opt)
    with zipfile.ZipFile(tmp_path / "good.npz") as archive:
        return model, opt, {name: archive.read(name) for name in archive.namelist()}


def loads_the_saved_pair_or_is_refused(path, model, opt):
    """True if the file at path is refused with a ValueError naming it; if it loads, the
    pair must be the saved one, bit for bit."""
    try:
        loaded, loaded_opt = pycvnn.load(path, with_optimizer=True)
    except ValueError as err:
        assert path.name in str(err), str(err)
        return True
    assert loaded.params.tobytes() == model.params.tobytes()
    assert_same_optimizer(loaded_opt, opt)
    return False


def each_bit_flipped(members):
    """The members with one bit flipped, the bit cycling with the offset, for every byte."""
    for name, data in members.items():
        for offset, byte in enumerate(data):
            yield dict(
                members,
                **{name: data[:offset] + bytes([byte ^ 1 << offset % 8]) + data[offset + 1 :]},
            )


def test_a_flipped_bit_in_any_member_byte_is_refused_even_with_the_zip_crc_recomputed(
    tmp_path,
):
    # The zip's CRC-32 alone catches a random flip; an edit that recomputes it must meet the
    # checksum or the format checks at every byte of the header, the parameters and the state
    # (one bit each, cycling with the offset).
    model, opt, members = saved_pair_members(tmp_path)
    assert len(members["state.npy"]) > 2 * 4 * model.n_params  # Adam's two buffers are in it
    bad = tmp_path / "bad.npz"
    edits = 0
    for edited in each_bit_flipped(members):
        write_archive(bad, edited)
        with pytest.raises(ValueError, match=r"bad\.npz"):
            pycvnn.load(bad, with_optimizer=True)
        edits += 1
    assert edits == sum(len(data) for data in members.values())


def test_every_truncation_is_refused_and_raw_flips_are_refused_or_harmless(tmp_path):
    model, opt, _ = saved_pair_members(tmp_path)
    data = (tmp_path / "good.npz").read_bytes()
    bad = tmp_path / "bad.npz"
    for n in range(len(data)):
        bad.write_bytes(data[:n])
        with pytest.raises(ValueError, match=r"bad\.npz"):
            pycvnn.load(bad, with_optimizer=True)
    for offset in range(len(data)):
        flipped = bytearray(data)
        flipped[offset] ^= 0xFF
        bad.write_bytes(bytes(flipped))
        loads_the_saved_pair_or_is_refused(bad, model, opt)


# ---- the command line -----------------------------------------------------------------------


def test_train_save_stores_the_optimizer(capsys, tmp_path):
    path = tmp_path / "digits.npz"
    rc, out, err = run_train(capsys, "--save", str(path), "--hidden", "8", "--lr", "0.002")
    assert rc == 0 and f"saved model to {path}" in out
    n_train = int(re.search(r"\((\d+) train /", err).group(1))
    model, opt = pycvnn.load(path, with_optimizer=True)
    assert type(opt) is optim.Adam and opt.lr == 0.002
    assert opt.t == 2 * math.ceil(n_train / 32)  # two epochs in batches of 32
    assert all(b.any() for b in opt._state)
