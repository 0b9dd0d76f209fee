"""Model files under damage and attack: every truncation and every flipped byte of a saved
file is refused or loads the identical model; crafted hostile files (huge declared sizes, deep
nesting, zip bombs, non-finite or mistyped parameters, pickles, newer versions) are refused
with a ValueError naming the file before anything big is allocated; version-1 files still
load; saves are atomic, follow the umask and leave nothing behind when they fail.

`python tests/test_model_files.py` prints the full corruption matrix (all eight single-bit
flips at every offset) and how long each hostile file takes to be refused."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import pycvnn
from pycvnn import _atomic
from pycvnn import io as pio

# ---- a small saved model --------------------------------------------------------------------------


def small_model(dtype="float32"):
    layers = [
        pycvnn.Dense(3, 4),
        pycvnn.LeakyReLU(0.2),
        pycvnn.Dense(4, 2, "tanh", init="xavier"),
        pycvnn.Softmax(),
    ]
    return pycvnn.Sequential(layers, seed=1, dtype=dtype)


def same_model(loaded, model):
    """Structure, dtype and bit-identical weights."""
    if repr(loaded) != repr(model) or loaded.dtype != model.dtype:
        return False
    if [getattr(layer, "init", None) for layer in loaded.layers] != [
        getattr(layer, "init", None) for layer in model.layers
    ]:
        return False
    return all(
        a.dtype == b.dtype and a.tobytes() == b.tobytes()
        for a, b in zip(loaded.get_weights(), model.get_weights())
    )


def outcome(path, data, model):
    """'rejected' (ValueError naming the file) or 'identical'; anything else fails the caller."""
    path.write_bytes(data)
    try:
        loaded = pycvnn.load(path)
    except ValueError as err:
        assert repr(str(path)) in str(err), str(err)
        return "rejected"
    assert same_model(loaded, model), "a damaged file loaded into a different model"
    return "identical"


def covered_offsets(path):
    """Offsets of the bytes of both .npy members (header text and parameters with their .npy
    headers): everything the checksum and the format checks cover."""
    data = path.read_bytes()
    covered = set()
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            start = data.index(b"\x93NUMPY", info.header_offset)
            covered.update(range(start, start + info.file_size))
    return covered


def corruption_matrix(directory, masks):
    """Outcome counts for every truncation and every (offset, mask) xor of a saved file, and
    the offsets where a flip loaded the identical model."""
    model = small_model()
    good = directory / "good.npz"
    model.save(good)
    data = good.read_bytes()
    bad = directory / "bad.npz"
    counts = {"size": len(data), "truncations": 0, "flips": 0}
    harmless = set()
    for n in range(len(data)):
        key = "truncated " + outcome(bad, data[:n], model)
        counts[key] = counts.get(key, 0) + 1
        counts["truncations"] += 1
    for offset in range(len(data)):
        for mask in masks(offset):
            flipped = bytearray(data)
            flipped[offset] ^= mask
            result = outcome(bad, bytes(flipped), model)
            counts["flipped " + result] = counts.get("flipped " + result, 0) + 1
            counts["flips"] += 1
            if result == "identical":
                harmless.add(offset)
    return counts, harmless, covered_offsets(good)


def test_every_truncation_and_every_flipped_byte_is_refused_or_harmless(tmp_path):
    # Each offset gets xor 0xFF and one single-bit flip (the bit cycling with the offset).
    counts, harmless, covered = corruption_matrix(
        tmp_path, lambda offset: (0xFF, 1 << (offset % 8))
    )
    assert counts["truncations"] == counts["size"] == counts["truncated rejected"]
    assert counts["flips"] == 2 * counts["size"]
    assert counts["flipped rejected"] + counts.get("flipped identical", 0) == counts["flips"]
    # Only zip metadata (timestamps, attributes, local copies of fields the reader takes from
    # the central directory) may change harmlessly; any flip in the members' bytes is refused.
    assert len(covered) > counts["size"] // 2
    assert not harmless & covered, sorted(harmless & covered)


def test_any_flipped_member_byte_is_refused_even_with_the_zip_crc_recomputed(tmp_path):
    # The zip's CRC-32 alone catches a random flip; an edit that recomputes it must meet the
    # checksum (or the format checks) at every byte of the header and the parameters.
    model = small_model()
    model.save(tmp_path / "good.npz")
    with zipfile.ZipFile(tmp_path / "good.npz") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    bad = tmp_path / "bad.npz"
    for name, data in members.items():
        for offset in range(len(data)):
            edited = bytearray(data)
            edited[offset] ^= 1 << (offset % 8)
            write_archive(bad, dict(members, **{name: bytes(edited)}))
            assert outcome(bad, bad.read_bytes(), model) == "rejected", (name, offset)


# ---- crafting files -----------------------------------------------------------------------------

DENSE_4_3 = [{"type": "Dense", "in": 4, "out": 3, "activation": None, "init": "he"}]


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def v2_header(layers, dtype, params):
    """A version-2 header whose checksum is right, computed from the documented rule."""
    header = {"format": "pycvnn-model", "version": 2, "dtype": dtype, "layers": layers}
    digest = hashlib.sha256(canonical(header).encode() + b"\n")
    digest.update(np.ascontiguousarray(params).tobytes())
    return dict(header, sha256=digest.hexdigest())


def npy_bytes(array, allow_pickle=False):
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=allow_pickle)
    return buffer.getvalue()


def write_archive(path, members, compress=()):
    """A zip of raw members {name: bytes}; names in `compress` are deflated."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            method = zipfile.ZIP_DEFLATED if name in compress else zipfile.ZIP_STORED
            archive.writestr(name, data, compress_type=method)


def write_model(path, header, params, **kwargs):
    text = header if isinstance(header, str) else canonical(header)
    write_archive(
        path, {"header.npy": npy_bytes(np.array(text)), "params.npy": npy_bytes(params)}, **kwargs
    )


def npy_prefix(shape, dtype):
    """An .npy header alone: what a file declares before any data."""
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer,
        {
            "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
            "fortran_order": False,
            "shape": shape,
        },
    )
    return buffer.getvalue()


def huge_dense(path):  # a ~1 KB file declaring Dense(20000, 20000)
    layers = [{"type": "Dense", "in": 20000, "out": 20000, "activation": None, "init": "he"}]
    params = np.zeros(15, np.float32)
    write_model(path, v2_header(layers, "float32", params), params)


def huge_dense_declared_in_npy(path):  # the .npy header agrees with the layers, the data is absent
    layers = [{"type": "Dense", "in": 20000, "out": 20000, "activation": None, "init": "he"}]
    header = v2_header(layers, "float32", np.zeros(0, np.float32))
    write_archive(
        path,
        {
            "header.npy": npy_bytes(np.array(canonical(header))),
            "params.npy": npy_prefix((20000 * 20000 + 20000,), "<f4"),
        },
    )


def tera_params(path):  # 10**12 parameters
    layers = [{"type": "Dense", "in": 10**6, "out": 10**6, "activation": None, "init": "he"}]
    params = np.zeros(15, np.float32)
    write_model(path, v2_header(layers, "float32", params), params)


def tera_in_features(path):
    layers = [{"type": "Dense", "in": 10**12, "out": 1, "activation": None, "init": "he"}]
    write_model(
        path, v2_header(layers, "float32", np.zeros(2, np.float32)), np.zeros(2, np.float32)
    )


def deep_nesting(path):
    write_model(path, "[" * 200000 + "]" * 200000, np.zeros(15, np.float32))


def deep_nesting_inside_a_header(path):
    header = canonical(v2_header(DENSE_4_3, "float32", np.zeros(15, np.float32)))
    write_model(
        path,
        header[:-1] + ',"x":' + '{"a":' * 50000 + "1" + "}" * 50000 + "}",
        np.zeros(15, np.float32),
    )


def oversized_header(path):
    header = dict(v2_header(DENSE_4_3, "float32", np.zeros(15, np.float32)))
    header["layers"] = DENSE_4_3 + [{"type": "relu"}] * 100000
    write_model(path, header, np.zeros(15, np.float32))


BOMB_PARAMS = 10_000_000  # 40 MB of zeros, about 40 KB deflated


def zip_bomb_small_layers(path):
    """A deflated params member of BOMB_PARAMS float32 zeros for a 15-weight model."""
    write_bomb(path, DENSE_4_3, BOMB_PARAMS)


def zip_bomb_matching_layers(path):
    """The same bomb with layers that need every one of its parameters."""
    width = BOMB_PARAMS // 1000 - 1
    layers = [
        {"type": "Dense", "in": 999, "out": width, "activation": None, "init": "he"},
        {"type": "Dense", "in": width, "out": 1, "activation": None, "init": "he"},
    ]
    write_bomb(path, layers, 999 * width + width + width + 1)


def write_bomb(path, layers, n):
    header = {"format": "pycvnn-model", "version": 1, "dtype": "float32", "layers": layers}
    zeros = bytes(1 << 22)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("header.npy", npy_bytes(np.array(canonical(header))))
        with archive.open("params.npy", "w", force_zip64=True) as member:
            member.write(npy_prefix((n,), "<f4"))
            left = 4 * n
            while left:
                member.write(zeros[: min(left, len(zeros))])
                left -= min(left, len(zeros))


def sizes_beyond_the_file(path):
    """A stored params member whose central directory claims 1.6 GB."""
    params = np.zeros(15, np.float32)
    write_model(path, v2_header(DENSE_4_3, "float32", params), params)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("params.npy")
    # the central directory entry: sizes at +20 (compressed) and +24 (uncompressed)
    entry = [i for i in range(len(data)) if data[i : i + 4] == b"PK\x01\x02"][1]
    assert data[entry + 46 : entry + 46 + 10] == b"params.npy"
    if data[entry + 20 : entry + 24] == b"\xff\xff\xff\xff":  # sizes live in the zip64 extra
        extra = entry + 46 + 10 + 4
        data[extra : extra + 16] = (1_600_000_128).to_bytes(8, "little") * 2
    else:
        data[entry + 20 : entry + 28] = (1_600_000_128).to_bytes(4, "little") * 2
    assert info.file_size < 1000
    path.write_bytes(bytes(data))


def non_finite(value, version=2):
    def write(path):
        params = np.zeros(15, np.float32)
        params[7] = value
        if version == 2:
            write_model(path, v2_header(DENSE_4_3, "float32", params), params)
        else:
            write_model(
                path,
                dict(format="pycvnn-model", version=1, dtype="float32", layers=DENSE_4_3),
                params,
            )

    return write


def float64_1e300_in_float32_model(path):
    params = np.full(15, 1e300)
    write_model(path, v2_header(DENSE_4_3, "float32", params), params)


def float64_params_in_float32_model(path):
    params = np.zeros(15)
    write_model(path, v2_header(DENSE_4_3, "float32", params), params)


def int_params(path):
    params = np.arange(15, dtype=np.int32)
    write_model(path, v2_header(DENSE_4_3, "float32", params), params)


def big_endian_params(path):
    params = np.arange(15, dtype=">f4")
    write_model(path, v2_header(DENSE_4_3, "float32", params), params)


def two_d_params(path):
    params = np.zeros((3, 5), np.float32)
    write_model(path, v2_header(DENSE_4_3, "float32", params), params)


def short_params(path):
    params = np.zeros(14, np.float32)
    write_model(path, v2_header(DENSE_4_3, "float32", params), params)


class Tripwire:
    """Unpickling this writes a file: proof that load never unpickles."""

    target = None

    def __reduce__(self):
        return (open, (self.target, "w"))


def pickled_params(path):
    Tripwire.target = str(path) + ".unpickled"
    params = np.array([Tripwire()] * 15, dtype=object)
    header = {"format": "pycvnn-model", "version": 1, "dtype": "float32", "layers": DENSE_4_3}
    write_archive(
        path,
        {
            "header.npy": npy_bytes(np.array(canonical(header))),
            "params.npy": npy_bytes(params, allow_pickle=True),
        },
    )


def pickled_header(path):
    Tripwire.target = str(path) + ".unpickled"
    write_archive(
        path,
        {
            "header.npy": npy_bytes(np.array([Tripwire()], dtype=object), True),
            "params.npy": npy_bytes(np.zeros(15, np.float32)),
        },
    )


def newer_version(path):
    params = np.zeros(15, np.float32)
    header = dict(v2_header(DENSE_4_3, "float32", params), version=pio.VERSION + 1)
    write_model(path, header, params)


def wrong_checksum(path):
    params = np.zeros(15, np.float32)
    header = v2_header(DENSE_4_3, "float32", params)
    params[3] = 1.0
    write_model(path, header, params)


def header_edits(**changes):
    def write(path):
        params = np.zeros(15, np.float32)
        header = dict(v2_header(DENSE_4_3, "float32", params), **changes)
        write_model(path, {k: v for k, v in header.items() if v is not None}, params)

    return write


def non_canonical_header(path):  # same content, other spacing: the writer never does this
    params = np.zeros(15, np.float32)
    write_model(path, json.dumps(v2_header(DENSE_4_3, "float32", params), indent=1), params)


def nan_in_header(path):
    params = np.zeros(15, np.float32)
    header = v2_header(DENSE_4_3 + [{"type": "leaky_relu", "alpha": 0.5}], "float32", params)
    write_model(path, canonical(header).replace("0.5", "NaN"), params)


def duplicate_key(path):
    params = np.zeros(15, np.float32)
    text = canonical(v2_header(DENSE_4_3, "float32", params))
    write_model(path, text[:-1] + ',"dtype":"float64"}', params)


def huge_number_in_header(path):
    params = np.zeros(15, np.float32)
    text = canonical(v2_header(DENSE_4_3, "float32", params))
    write_model(path, text.replace('"in":4', '"in":' + "9" * 100000), params)


def extra_member(path):
    params = np.zeros(15, np.float32)
    header = v2_header(DENSE_4_3, "float32", params)
    write_archive(
        path,
        {
            "header.npy": npy_bytes(np.array(canonical(header))),
            "params.npy": npy_bytes(params),
            "extra.npy": npy_bytes(params),
        },
    )


def bytes_header(path):
    params = np.zeros(15, np.float32)
    write_archive(
        path,
        {
            "header.npy": npy_bytes(
                np.array(canonical(v2_header(DENSE_4_3, "float32", params)).encode())
            ),
            "params.npy": npy_bytes(params),
        },
    )


def encrypted_flag(path):
    params = np.zeros(15, np.float32)
    write_model(path, v2_header(DENSE_4_3, "float32", params), params)
    data = bytearray(path.read_bytes())
    for start in [i for i in range(len(data)) if data[i : i + 4] in (b"PK\x03\x04", b"PK\x01\x02")]:
        flags = start + (6 if data[start + 2] == 3 else 8)
        data[flags] |= 1
    path.write_bytes(bytes(data))


HOSTILE = {
    "huge Dense(20000, 20000) in a 1 KB file": huge_dense,
    "Dense(20000, 20000) with a matching .npy header but no data": huge_dense_declared_in_npy,
    "10**12 parameters": tera_params,
    "in_features 10**12": tera_in_features,
    "200000-deep nesting": deep_nesting,
    "50000-deep nesting inside a valid header": deep_nesting_inside_a_header,
    "header over 1 Mi characters": oversized_header,
    "zip bomb for a 15-weight model": zip_bomb_small_layers,
    "zip bomb matching its layers": zip_bomb_matching_layers,
    "central directory claiming 1.6 GB": sizes_beyond_the_file,
    "NaN parameter (valid checksum)": non_finite(np.nan),
    "+Inf parameter (valid checksum)": non_finite(np.inf),
    "-Inf parameter, version 1": non_finite(-np.inf, version=1),
    "float64 1e300 in a float32 model": float64_1e300_in_float32_model,
    "float64 parameters in a float32 model": float64_params_in_float32_model,
    "int32 parameters": int_params,
    "big-endian float32 parameters": big_endian_params,
    "parameters of shape (3, 5)": two_d_params,
    "14 parameters for 15": short_params,
    "pickled object parameters": pickled_params,
    "pickled object header": pickled_header,
    "a newer format version": newer_version,
    "wrong checksum": wrong_checksum,
    "no checksum in a version-2 header": header_edits(sha256=None),
    "checksum not hex": header_edits(sha256="z" * 64),
    "unknown header key": header_edits(comment="hi"),
    "version true": header_edits(version=True),
    "dtype int8": header_edits(dtype="int8"),
    "non-canonical header text": non_canonical_header,
    "NaN in the header JSON": nan_in_header,
    "duplicate header key": duplicate_key,
    "100000-digit number in the header": huge_number_in_header,
    "an extra member": extra_member,
    "a bytes header": bytes_header,
    "encrypted flag set": encrypted_flag,
}

EXPECTED = {  # a word each message must carry, beyond the file's name
    "a newer format version": rf"newer.*version {pio.VERSION + 1}",
    "10**12 parameters": r"more than 2147483648 parameters",
    "wrong checksum": r"checksum",
    "NaN parameter (valid checksum)": r"non-finite",
    "float64 1e300 in a float32 model": r"dtype",
    "pickled object parameters": r"pickled",
    "14 parameters for 15": r"holds 14 parameters, its layers need 15",
    "zip bomb matching its layers": r"compressed",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_files_are_refused_with_a_value_error_naming_them(tmp_path, name):
    path = tmp_path / "hostile.npz"
    HOSTILE[name](path)
    with pytest.raises(ValueError, match=r"hostile\.npz") as info:
        pycvnn.load(path)
    if name in EXPECTED:
        assert __import__("re").search(EXPECTED[name], str(info.value)), str(info.value)
    assert not os.path.exists(str(path) + ".unpickled")


def test_the_version_2_checksum_follows_the_documented_rule(tmp_path):
    model = small_model("float64")
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        text, params = str(data["header"]), data["params"]
    header = json.loads(text)
    assert header["version"] == 2 and text == canonical(header)
    body = {k: v for k, v in header.items() if k != "sha256"}
    expected = hashlib.sha256(canonical(body).encode() + b"\n" + params.astype("<f8").tobytes())
    assert header["sha256"] == expected.hexdigest()
    # and a hand-made file following the rule loads
    params = np.arange(15, dtype=np.float32) / 7
    write_model(tmp_path / "hand.npz", v2_header(DENSE_4_3, "float32", params), params)
    np.testing.assert_array_equal(
        pycvnn.load(tmp_path / "hand.npz").get_weights()[0], params[:12].reshape(3, 4)
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_version_1_files_still_load(tmp_path, dtype):
    model = small_model(dtype)
    header = {
        "format": "pycvnn-model",
        "version": 1,
        "dtype": dtype,
        "layers": [pio._layer_config(layer) for layer in model.layers],
    }
    with open(tmp_path / "v1.npz", "wb") as f:  # exactly what the version-1 writer did
        np.savez(f, header=np.array(json.dumps(header)), params=model._params)
    assert same_model(pycvnn.load(tmp_path / "v1.npz"), model)


def test_version_1_files_get_the_same_checks(tmp_path):
    path = tmp_path / "v1.npz"
    layers = [{"type": "Dense", "in": 20000, "out": 20000, "activation": None, "init": "he"}]
    write_model(
        path,
        {"format": "pycvnn-model", "version": 1, "dtype": "float32", "layers": layers},
        np.zeros(15, np.float32),
    )
    with pytest.raises(ValueError, match=r"v1\.npz.*holds 15 parameters"):
        pycvnn.load(path)


def test_a_missing_file_is_file_not_found_and_a_directory_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="gone.npz"):
        pycvnn.load(tmp_path / "gone.npz")
    with pytest.raises((ValueError, IsADirectoryError), match=str(tmp_path)):
        pycvnn.load(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_or_a_device_is_refused_without_hanging(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ValueError, match=r"fifo.*not a regular file"):
        pycvnn.load(tmp_path / "fifo")
    if os.path.exists("/dev/zero"):
        with pytest.raises(ValueError, match=r"/dev/zero.*not a regular file"):
            pycvnn.load("/dev/zero")


def test_loading_keeps_each_dense_layers_init(tmp_path):
    model = small_model()
    model.save(tmp_path / "m.npz")
    loaded = pycvnn.load(tmp_path / "m.npz")
    assert [layer.init for layer in loaded.layers if isinstance(layer, pycvnn.Dense)] == [
        "he",
        "xavier",
    ]


# ---- saving -------------------------------------------------------------------------------------


@pytest.fixture(params=["unnamed", "named"])
def temporary_kind(request, tmp_path, monkeypatch):
    """Run a test with the O_TMPFILE path (where this system has it) and with named
    temporaries."""
    if request.param == "unnamed":
        if not _atomic.unnamed_temporaries_work(str(tmp_path)):
            pytest.skip("this file system cannot link an O_TMPFILE")
    else:
        monkeypatch.setattr(_atomic, "_unlinkable_devices", {os.stat(tmp_path).st_dev})
    return request.param


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_files_get_the_mode_a_new_file_gets(tmp_path, temporary_kind, umask):
    old = os.umask(umask)
    try:
        small_model().save(tmp_path / "m.npz")
        with open(tmp_path / "plain", "wb"):
            pass
    finally:
        os.umask(old)
    mode = os.stat(tmp_path / "m.npz").st_mode & 0o777
    assert mode == 0o666 & ~umask == os.stat(tmp_path / "plain").st_mode & 0o777


def test_save_into_a_missing_directory_names_the_path_and_creates_nothing(tmp_path, temporary_kind):
    path = tmp_path / "missing" / "m.npz"
    with pytest.raises(FileNotFoundError) as info:
        small_model().save(path)
    assert info.value.filename == str(path) and str(path) in str(info.value)
    assert "missing" in str(info.value) and ".tmp" not in str(info.value)
    assert os.listdir(tmp_path) == []


def test_save_under_a_regular_file_names_the_path_and_creates_nothing(tmp_path, temporary_kind):
    (tmp_path / "file").write_bytes(b"x")
    path = tmp_path / "file" / "m.npz"
    with pytest.raises(NotADirectoryError) as info:
        small_model().save(path)
    assert info.value.filename == str(path)
    assert os.listdir(tmp_path) == ["file"]


def test_save_onto_a_directory_names_it_and_leaves_no_temporary(tmp_path, temporary_kind):
    (tmp_path / "dir").mkdir()
    with pytest.raises(OSError) as info:
        small_model().save(tmp_path / "dir")
    assert info.value.filename == str(tmp_path / "dir")
    assert os.listdir(tmp_path) == ["dir"] and os.listdir(tmp_path / "dir") == []


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only directories"
)
def test_save_into_a_read_only_directory_names_the_path(tmp_path, temporary_kind):
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o555)
    try:
        with pytest.raises(PermissionError) as info:
            small_model().save(tmp_path / "ro" / "m.npz")
        assert info.value.filename == str(tmp_path / "ro" / "m.npz")
        assert os.listdir(tmp_path / "ro") == []
    finally:
        os.chmod(tmp_path / "ro", 0o755)


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_an_interrupted_write_keeps_the_old_file_and_leaves_nothing_else(
    tmp_path, monkeypatch, temporary_kind, error
):
    old = small_model()
    path = tmp_path / "m.npz"
    old.save(path)

    def failing_savez(f, **arrays):
        f.write(b"PK\x03\x04 part of a file")
        raise error

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(type(error)) as info:
        pycvnn.MLP([3, 2], seed=5).save(path)
    monkeypatch.undo()
    if isinstance(error, OSError):
        assert info.value.filename == str(path)
    assert os.listdir(tmp_path) == ["m.npz"]
    assert same_model(pycvnn.load(path), old)


def test_a_killed_save_leaves_no_temporary_file(tmp_path):
    if not _atomic.unnamed_temporaries_work(str(tmp_path)):
        pytest.skip(
            "this file system cannot link an O_TMPFILE; a killed save leaves its named temporary"
        )
    small_model().save(tmp_path / "m.npz")
    before = (tmp_path / "m.npz").read_bytes()
    script = textwrap.dedent(f"""
        import os, signal, numpy as np, pycvnn
        def dying_savez(f, **arrays):
            f.write(b"PK\\x03\\x04" + bytes(100000))
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        np.savez = dying_savez
        pycvnn.MLP([3, 2], seed=5).save({str(tmp_path / "m.npz")!r})
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert os.listdir(tmp_path) == ["m.npz"]
    assert (tmp_path / "m.npz").read_bytes() == before


def test_a_model_with_non_finite_weights_is_not_saved(tmp_path):
    model = small_model()
    model._params[5] = np.nan
    with pytest.raises(ValueError, match=r"model.*finite.*params\[5\]"):
        model.save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_cli_save_into_a_missing_directory_names_the_given_path(tmp_path):
    path = tmp_path / "nowhere" / "model.npz"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pycvnn",
            "train",
            "--quiet",
            "--epochs",
            "1",
            "--hidden",
            "8",
            "--backend",
            "numpy",
            "--save",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert str(path) in result.stderr
    assert ".tmp" not in result.stderr
    assert os.listdir(tmp_path) == []


# ---- the full matrix and the timings, for the record --------------------------------------------


def main():
    import pathlib
    import tempfile
    import time

    with tempfile.TemporaryDirectory() as directory:
        directory = pathlib.Path(directory)
        start = time.perf_counter()
        counts, harmless, covered = corruption_matrix(
            directory, lambda offset: [1 << bit for bit in range(8)] + [0xFF]
        )
        print(f"corruption matrix ({time.perf_counter() - start:.1f} s): {counts}")
        print(
            f"{len(covered)} bytes in the .npy members, {len(harmless)} offsets where some flip "
            f"loaded the identical model, {len(harmless & covered)} of them in the members: "
            f"{sorted(harmless)}"
        )
        path = directory / "hostile.npz"
        for name, write in HOSTILE.items():
            write(path)
            start = time.perf_counter()
            try:
                pycvnn.load(path)
                result = "LOADED"
            except ValueError as err:
                result = f"ValueError: {str(err)[len(repr(str(path))) + 7 :][:110]}"
            seconds = time.perf_counter() - start
            print(f"{seconds * 1000:8.2f} ms  {path.stat().st_size:>9} B  {name}: {result}")


if __name__ == "__main__":
    main()
