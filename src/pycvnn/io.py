"""Model files: an .npz (zip) archive of two .npy members, `header` (a 0-d unicode array
holding JSON: format, version, dtype, layers and, from version 2, a SHA-256 checksum) and
`params` (the flat parameter arena, stored uncompressed).

A file saved with an optimizer is version 3: its header also holds `optimizer` (the
optimizer's registry name, all its constructor's hyperparameters and its step count `t`) and
a third member, `state`, holds its state buffers as an (n_state, n_params) array in the
model's dtype, stored uncompressed. A file without an optimizer stays version 2.

The checksum covers the canonical header JSON without its checksum field, a newline, the
little-endian parameter bytes and then the state bytes, so any change to the header text, the
weights or the optimizer's state is detected. `load` checks every declared size against the
others and against MAX_PARAMS before allocating anything, never unpickles, and reports any
damaged or hostile file as a ValueError naming it. `save` writes atomically with the
permissions a plain file would get.
"""

from __future__ import annotations

import errno
import hashlib
import inspect
import json
import math
import os
import re
import stat
import struct
import sys
import tokenize
import zipfile
import zlib
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    Dict,
    Iterable,
    List,
    Literal,
    NoReturn,
    Optional,
    Sequence,
    Tuple,
    Type,
    Union,
    overload,
)

import numpy as np
from numpy.lib import format as npy

from ._atomic import write_atomically
from ._net import arena_zeros
from ._types import Array, PathLike
from .layers import ACTIVATION_LAYERS, ACTIVATIONS, INITS, Dense, Layer, LeakyReLU
from .optim import OPTIMIZERS, Optimizer

if TYPE_CHECKING:
    from hashlib import _Hash
    from typing import TypeGuard

    from .model import Sequential

# A parsed JSON header (or one part of it).
Header = Dict[str, Any]
# The optimizer a file holds: (optimizer, step count t, state of shape (n_state, n_params)).
SavedOptimizer = Tuple[Optimizer, int, Array]
# What a model file holds: layers, dtype name, the flat parameters, the saved optimizer.
Contents = Tuple[List[Layer], str, Array, Optional[SavedOptimizer]]

FORMAT = "pycvnn-model"
VERSION = 3  # the newest this reader knows; a file without an optimizer is written as 2
PLAIN_VERSION = 2
MAX_PARAMS = 2**31  # far beyond any model this library trains; bounds what a file can ask for
MAX_HEADER_CHARS = 2**20
MAX_NESTING = 16  # a valid header nests three deep
DTYPES = ("float32", "float64")
MEMBERS = ["header.npy", "params.npy"]
STATE_MEMBER = "state.npy"  # the optimizer's state, in version-3 files only
MAX_MEMBERS = 8  # a valid file has at most three; more is refused before any is read
MAX_STEPS = 2**63 - 1  # the optimizer's step counter is an int64
OPTIMIZER_KEYS = ["hyperparameters", "name", "t"]
_CHUNK = 1 << 22  # bytes read and hashed, or parameters checked, at a time
_NPY_HEADER_MAX = 10000  # numpy's own default limit on an .npy header
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]")

# What zipfile, zlib and numpy's .npy reader raise on malformed input.
_ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    OverflowError,
    struct.error,
)


class _Invalid(ValueError):
    """A check of the file failed; load adds the path to the message."""


# ---- header: layers <-> JSON -------------------------------------------------------------------


def _layer_config(layer: Layer) -> Header:
    if isinstance(layer, Dense):
        return {
            "type": "Dense",
            "in": layer.in_features,
            "out": layer.out_features,
            "activation": layer.dense_activation,
            "init": layer.init,
        }
    config: Header = {"type": layer.activation}
    if isinstance(layer, LeakyReLU):
        config["alpha"] = layer.alpha
    return config


def _canonical(header: Header) -> str:
    return json.dumps(
        header, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def _hasher(header: Header) -> _Hash:
    """SHA-256 primed with the canonical header without its checksum field."""
    body = {k: v for k, v in header.items() if k != "sha256"}
    return hashlib.sha256(_canonical(body).encode("ascii") + b"\n")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _keys(config: Iterable[str], expected: Iterable[str], what: str) -> None:
    if sorted(config) != sorted(expected):
        raise _Invalid(
            f"has an invalid {what}: expected the keys {sorted(expected)}, got {sorted(config)}"
        )


def _check_layer(i: int, config: Any, width: Optional[int]) -> Tuple[int, int]:
    """Validate one layer entry; returns the width after it and its parameter count."""
    where = f"layer list: layers[{i}]"
    if not isinstance(config, dict) or not isinstance(config.get("type"), str):
        raise _Invalid(
            f"has an invalid {where}: expected an object with a 'type', got {str(config)[:80]}"
        )
    kind = config["type"]
    if kind == "Dense":
        _keys(config, ["type", "in", "out", "activation", "init"], where)
        n_in, n_out = config["in"], config["out"]
        for name, value in (("in", n_in), ("out", n_out)):
            if not _is_int(value) or not 1 <= value <= MAX_PARAMS:
                raise _Invalid(
                    f"has an invalid {where}: expected '{name}' an int in [1, "
                    f"{MAX_PARAMS}], got {value!r}"
                )
        if width is not None and n_in != width:
            raise _Invalid(
                f"has an invalid {where}: expected in={width} (the previous "
                f"layer's output), got {n_in}"
            )
        if config["activation"] is not None and config["activation"] not in ACTIVATIONS:
            raise _Invalid(
                f"has an invalid {where}: expected activation None or one of "
                f"{ACTIVATIONS}, got {config['activation']!r}"
            )
        if config["init"] not in INITS:
            raise _Invalid(
                f"has an invalid {where}: expected init one of {INITS}, got {config['init']!r}"
            )
        return n_out, n_in * n_out + n_out
    if kind not in ACTIVATION_LAYERS:
        raise _Invalid(
            f"has an invalid {where}: expected type 'Dense' or one of "
            f"{sorted(ACTIVATION_LAYERS)}, got {kind!r}"
        )
    if width is None:
        raise _Invalid(f"has an invalid {where}: expected a Dense first layer, got {kind!r}")
    if kind == "leaky_relu":
        _keys(config, ["type", "alpha"], where)
        alpha = config["alpha"]
        if (
            isinstance(alpha, bool)
            or not isinstance(alpha, (int, float))
            or not math.isfinite(alpha)
            or alpha < 0
        ):
            raise _Invalid(
                f"has an invalid {where}: expected alpha a finite number >= 0, got {alpha!r}"
            )
    else:
        _keys(config, ["type"], where)
    return width, 0


def _check_header(header: Any) -> Tuple[int, str, int]:
    """Validate a parsed header; returns (version, dtype name, parameter count)."""
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        shown = header.get("format") if isinstance(header, dict) else type(header).__name__
        raise _Invalid(
            f"is not a pycvnn model file (its header's format is {shown!r}, expected {FORMAT!r})"
        )
    version = header.get("version")
    if not _is_int(version) or version < 1:
        raise _Invalid(
            f"has an invalid format version {version!r} (expected an int from 1 to {VERSION})"
        )
    if version > VERSION:
        raise _Invalid(
            f"was written by a newer pycvnn (format version {version}, this one "
            f"reads up to {VERSION}); upgrade pycvnn to load it"
        )
    expected = ["format", "version", "dtype", "layers"] + (["sha256"] if version >= 2 else [])
    expected += ["optimizer"] if version >= 3 else []
    missing = [k for k in expected if k not in header]
    if missing:
        raise _Invalid(
            f"has an invalid header: missing {missing} (a version {version} header "
            f"holds {expected})"
        )
    _keys(header, expected, f"version {version} header")
    if header["dtype"] not in DTYPES:
        raise _Invalid(f"has an invalid dtype {header['dtype']!r} (expected one of {DTYPES})")
    if version >= 2 and not (
        isinstance(header["sha256"], str) and re.fullmatch(r"[0-9a-f]{64}", header["sha256"])
    ):
        raise _Invalid(
            f"has an invalid checksum {str(header['sha256'])[:80]!r} (expected 64 "
            f"lowercase hex digits)"
        )
    layers = header["layers"]
    if not isinstance(layers, list) or not layers:
        raise _Invalid(
            f"has an invalid layer list: expected a non-empty list, got {str(layers)[:80]!r}"
        )
    width, n_params = None, 0
    for i, config in enumerate(layers):
        width, count = _check_layer(i, config, width)
        n_params += count
        if n_params > MAX_PARAMS:
            raise _Invalid(
                f"declares more than {MAX_PARAMS} parameters (layers[0..{i}] alone "
                f"need {n_params}); refusing to allocate them"
            )
    return version, header["dtype"], n_params


def _registry_name(cls: Type[Optimizer]) -> Optional[str]:
    """The first name the optimizer registry gives exactly this class, else None."""
    return next((name for name, entry in OPTIMIZERS.items() if entry is cls), None)


def _constructor_keys(cls: Type[Optimizer]) -> List[str]:
    return sorted(inspect.signature(cls).parameters)


def _hyperparameters(optimizer: Optimizer) -> Dict[str, Any]:
    """Everything the optimizer's constructor takes, as the optimizer holds it now."""
    return {
        "lr": optimizer.lr,
        "weight_decay": optimizer.weight_decay,
        "clip_norm": optimizer.clip_norm,
        **optimizer.hyperparameters(),
    }


def _build_optimizer(entry: Any) -> Tuple[Optimizer, int]:
    """The optimizer a header's `optimizer` entry describes, built through its constructor
    (which checks every hyperparameter's type and range); returns (optimizer, t)."""
    where = "optimizer entry"
    if not isinstance(entry, dict):
        raise _Invalid(f"has an invalid {where}: expected an object, got {str(entry)[:80]}")
    _keys(entry, OPTIMIZER_KEYS, where)
    name, hyper, t = entry["name"], entry["hyperparameters"], entry["t"]
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise _Invalid(
            f"has an invalid {where}: expected name one of {sorted(OPTIMIZERS)}, "
            f"got {str(name)[:80]!r}"
        )
    cls = OPTIMIZERS[name]
    if not isinstance(hyper, dict):
        raise _Invalid(
            f"has an invalid {where}: expected hyperparameters an object, got {str(hyper)[:80]}"
        )
    _keys(hyper, _constructor_keys(cls), f"{where}: {name} hyperparameters")
    try:
        optimizer = cls(**hyper)
    except (TypeError, ValueError) as err:
        raise _Invalid(f"has an invalid {where}: {name} hyperparameters: {err}") from None
    if not _is_int(t) or not 0 <= t <= MAX_STEPS:
        raise _Invalid(
            f"has an invalid {where}: expected t (the step count) an int in [0, "
            f"{MAX_STEPS}], got {str(t)[:80]}"
        )
    return optimizer, t


def _nesting(text: str) -> int:
    """How deep [ and { nest in JSON text, strings ignored (an upper bound if it is not JSON)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub('""', text)).encode("ascii")
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, np.uint8)
    return int(np.cumsum(np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)).max())


def _reject_constant(name: str) -> NoReturn:
    raise _Invalid(f"has an invalid header: {name} is not allowed in it")


def _unique_keys(pairs: List[Tuple[str, Any]]) -> Header:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _Invalid(f"has an invalid header: a key appears twice in {sorted(keys)}")
    return dict(pairs)


def _parse_header(text: str) -> Any:
    if len(text) > MAX_HEADER_CHARS:
        raise _Invalid(f"has a header of {len(text)} characters (at most {MAX_HEADER_CHARS})")
    depth = _nesting(text)
    if depth > MAX_NESTING:
        raise _Invalid(f"has a header nested {depth} deep (at most {MAX_NESTING})")
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except _Invalid:
        raise
    except (ValueError, RecursionError) as err:
        raise _Invalid(f"is not a pycvnn model file (its header is not JSON: {err})") from None


# ---- archive ------------------------------------------------------------------------------------


def _foreign(names: Sequence[str]) -> NoReturn:
    raise _Invalid(
        f"is an .npz archive but not a pycvnn model (it holds "
        f"{[n.removesuffix('.npy') for n in names][:20]})"
    )


def _members(archive: zipfile.ZipFile, file_size: int) -> Dict[str, zipfile.ZipInfo]:
    """The zip's {name: ZipInfo}, after checking names, flags and declared sizes."""
    infos = archive.infolist()
    names = [info.filename for info in infos]
    # Members beyond these two are checked against the header's version once it is read, so
    # that a newer version's extra member is reported as a newer version.
    if not set(MEMBERS) <= set(names) or len(set(names)) != len(names) or len(names) > MAX_MEMBERS:
        _foreign(names)
    for info in infos:
        if info.flag_bits & 0x61:  # encrypted, patched or strongly encrypted data
            raise _Invalid(f"has an encrypted or patched member {info.filename!r}")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _Invalid(
                f"has member {info.filename!r} compressed with method "
                f"{info.compress_type} (expected stored or deflated)"
            )
        if info.header_offset < 0 or info.header_offset + info.compress_size > file_size:
            raise _Invalid(
                f"is truncated or damaged: member {info.filename!r} declares "
                f"{info.compress_size} bytes from offset {info.header_offset}, "
                f"the file has {file_size}"
            )
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise _Invalid(
                f"is damaged: stored member {info.filename!r} declares "
                f"{info.file_size} bytes but occupies {info.compress_size}"
            )
    return dict(zip(names, infos))


def _npy_header(member: IO[bytes], name: str) -> Tuple[Tuple[int, ...], bool, np.dtype[Any]]:
    """(shape, fortran_order, dtype) of an .npy member, its data not read."""
    version = npy.read_magic(member)
    readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
    if version not in readers:
        raise _Invalid(
            f"has member {name!r} in .npy format version {version} (expected 1.0 or 2.0)"
        )
    try:
        shape, fortran, dtype = readers[version](member, max_header_size=_NPY_HEADER_MAX)
    except (SyntaxError, tokenize.TokenError) as err:  # numpy's fallback parser lets these out
        raise _Invalid(f"has a malformed .npy header in member {name!r} ({err})") from None
    if dtype.hasobject:
        raise _Invalid(
            f"holds pickled Python objects in {name!r} (dtype {dtype}); pycvnn "
            f"model files never contain them and they are not loaded"
        )
    return shape, fortran, dtype


def _expect_size(info: zipfile.ZipInfo, data_start: int, data_bytes: int, what: str) -> None:
    if info.file_size != data_start + data_bytes:
        raise _Invalid(
            f"is damaged: its {what} member declares {info.file_size} bytes, its "
            f".npy header and contents need {data_start + data_bytes}"
        )


def _read_exactly(member: IO[bytes], n: int) -> bytes:
    data = member.read(n)
    if len(data) != n:
        raise EOFError(f"expected {n} bytes, got {len(data)}")
    return data


def _end_of(member: IO[bytes]) -> None:
    """Reading past the end makes zipfile check the member's CRC-32."""
    if member.read(1):
        raise _Invalid("is damaged: a member holds more data than it declares")


def _read_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    if info.file_size > 4 * MAX_HEADER_CHARS + _NPY_HEADER_MAX + 16:
        raise _Invalid(
            f"has a header member of {info.file_size} bytes (its JSON may hold at "
            f"most {MAX_HEADER_CHARS} characters)"
        )
    with archive.open(info) as member:
        shape, _, dtype = _npy_header(member, "header")
        if dtype.kind != "U" or shape != ():
            raise _Invalid(
                f"is not a pycvnn model file (its header is a {dtype} array of "
                f"shape {shape}, expected one unicode string)"
            )
        _expect_size(info, member.tell(), dtype.itemsize, "header")
        raw = _read_exactly(member, dtype.itemsize)
        _end_of(member)
    little = dtype.byteorder == "<" or (dtype.byteorder == "=" and sys.byteorder == "little")
    # Decoded here, not by numpy, which fails with SystemError on code points past U+10FFFF.
    return raw.decode("utf-32-le" if little else "utf-32-be").rstrip("\0")


def _arena_header(
    member: IO[bytes], name: str, what: str, dtype_name: str
) -> Tuple[Tuple[int, ...], bool]:
    """(shape, fortran_order) of an arena member, after checking its dtype against the header's."""
    shape, fortran, dtype = _npy_header(member, name)
    expected = np.dtype(dtype_name).newbyteorder("<")
    if dtype != expected or dtype.str != expected.str:
        raise _Invalid(
            f"holds {what} of dtype {dtype.str}, expected {expected.str} "
            f"(little-endian {dtype_name}, as its header declares)"
        )
    return shape, fortran


def _stored(
    member: IO[bytes], info: zipfile.ZipInfo, name: str, what: str, n_values: int, dtype_name: str
) -> None:
    """Check an arena member's declared size and that it is stored uncompressed."""
    _expect_size(info, member.tell(), n_values * np.dtype(dtype_name).itemsize, name)
    if info.compress_type != zipfile.ZIP_STORED:
        raise _Invalid(
            f"has its {what} compressed; pycvnn stores them uncompressed, so a "
            f"file's size bounds the memory loading it takes"
        )


def _params_layout(
    member: IO[bytes], info: zipfile.ZipInfo, dtype_name: str, n_params: int
) -> None:
    """Check the params member's .npy header against the header's dtype and layers."""
    shape, fortran = _arena_header(member, "params", "parameters", dtype_name)
    if fortran or len(shape) != 1:
        raise _Invalid(f"holds parameters of shape {shape}, expected a flat ({n_params},) arena")
    if shape[0] != n_params:
        raise _Invalid(f"holds {shape[0]} parameters, its layers need {n_params}")
    _stored(member, info, "params", "parameters", n_params, dtype_name)


def _state_layout(
    member: IO[bytes],
    info: zipfile.ZipInfo,
    dtype_name: str,
    n_state: int,
    n_params: int,
    name: str,
) -> None:
    """Check the state member's .npy header against the optimizer's buffers and the layers."""
    shape, fortran = _arena_header(member, "state", "optimizer state", dtype_name)
    if fortran or shape != (n_state, n_params):
        raise _Invalid(
            f"holds optimizer state of shape {shape}{' (Fortran order)' if fortran else ''}, "
            f"expected ({n_state}, {n_params}): {name} keeps {n_state} buffer(s) of one "
            f"value per parameter"
        )
    _stored(member, info, "state", "optimizer state", n_state * n_params, dtype_name)


def _layers(header: Header) -> List[Layer]:
    """The layers the header describes."""
    layers: List[Layer] = []
    for config in header["layers"]:
        if config["type"] == "Dense":
            layers.append(
                Dense(
                    config["in"],
                    config["out"],
                    activation=config["activation"],
                    init=config["init"],
                )
            )
        elif config["type"] == "leaky_relu":
            layers.append(LeakyReLU(config["alpha"]))
        else:
            layers.append(ACTIVATION_LAYERS[config["type"]]())
    return layers


def _fill(member: IO[bytes], arena: Array, hasher: _Hash) -> None:
    """Read the parameter bytes into the arena, feeding the hasher, a chunk at a time."""
    raw = arena.view(np.uint8)
    for start in range(0, raw.size, _CHUNK):
        chunk = _read_exactly(member, min(_CHUNK, raw.size - start))
        hasher.update(chunk)
        raw[start : start + len(chunk)] = np.frombuffer(chunk, np.uint8)
    _end_of(member)


def _first_non_finite(arena: Array) -> Optional[int]:
    for start in range(0, arena.size, _CHUNK):
        bad = np.flatnonzero(~np.isfinite(arena[start : start + _CHUNK]))
        if bad.size:
            return start + int(bad[0])
    return None


def _load(f: IO[bytes], file_size: int) -> Contents:
    """(layers, dtype name, params, saved optimizer or None) of an open model file, where a
    saved optimizer is (optimizer, t, state of shape (n_state, n_params))."""
    with zipfile.ZipFile(f) as archive:
        members = _members(archive, file_size)
        text = _read_header(archive, members["header.npy"])
        header = _parse_header(text)
        version, dtype_name, n_params = _check_header(header)
        if version >= 2 and text != _canonical(header):
            raise _Invalid("is damaged: its header is not in the canonical form pycvnn writes")
        saved = _build_optimizer(header["optimizer"]) if version >= 3 else None
        if STATE_MEMBER not in members and saved is not None:
            raise _Invalid(
                f"is damaged: its header describes an optimizer, but it lacks the member "
                f"{STATE_MEMBER!r} that holds the optimizer's state"
            )
        if sorted(members) != sorted(MEMBERS + ([STATE_MEMBER] if saved else [])):
            _foreign(list(members))
        with archive.open(members["params.npy"]) as member:
            _params_layout(member, members["params.npy"], dtype_name, n_params)
            layers = _layers(header)
            params = arena_zeros(n_params, np.dtype(dtype_name))
            hasher = _hasher(header)
            _fill(member, params, hasher)
        if saved is not None:
            optimizer, t = saved
            n_state = optimizer.n_state
            with archive.open(members[STATE_MEMBER]) as member:
                _state_layout(
                    member,
                    members[STATE_MEMBER],
                    dtype_name,
                    n_state,
                    n_params,
                    header["optimizer"]["name"],
                )
                state = arena_zeros(n_state * n_params, np.dtype(dtype_name))
                _fill(member, state, hasher)
    if version >= 2 and hasher.hexdigest() != header["sha256"]:
        raise _Invalid(
            f"is damaged: its checksum does not match its contents (stored "
            f"sha256 {header['sha256'][:16]}..., computed {hasher.hexdigest()[:16]}...)"
        )
    bad = _first_non_finite(params)
    if bad is not None:
        raise _Invalid(f"holds a non-finite parameter (params[{bad}] = {params[bad]})")
    if saved is None:
        return layers, dtype_name, params, None
    bad = _first_non_finite(state)
    if bad is not None:
        row, col = divmod(bad, n_params)
        raise _Invalid(
            f"holds a non-finite optimizer state value (state[{row}, {col}] = {state[bad]})"
        )
    return layers, dtype_name, params, (optimizer, t, state.reshape(n_state, n_params))


# ---- public -------------------------------------------------------------------------------------


def save(model: Sequential, path: PathLike, optimizer: Optional[Optimizer] = None) -> None:
    """Write model to path (.npz format, whatever the name) atomically, with the permissions
    a new file gets (0o666 & ~umask). Nothing is left behind if it fails. With an optimizer
    (one used on this model, or not used yet: then it is stored with t = 0 and zero state, as
    a fit would start it), its class, hyperparameters, step count and state go in too."""
    params = model.params
    bad = _first_non_finite(params)
    if bad is not None:
        raise ValueError(
            f"model: expected finite parameters to save, got params[{bad}] = {params[bad]}"
        )
    dtype_name = np.dtype(model.dtype).name
    little = np.dtype(dtype_name).newbyteorder("<")
    arrays = {"params": np.ascontiguousarray(params, dtype=little)}
    header = {
        "format": FORMAT,
        "version": PLAIN_VERSION,
        "dtype": dtype_name,
        "layers": [_layer_config(layer) for layer in model.layers],
    }
    if optimizer is not None:
        header["optimizer"], state = _optimizer_entry(model, optimizer)
        header["version"] = VERSION
        arrays["state"] = np.ascontiguousarray(state, dtype=little)
    hasher = _hasher(header)
    for data in arrays.values():
        hasher.update(data.view(np.uint8).data)
    header["sha256"] = hasher.hexdigest()
    text = _canonical(header)
    write_atomically(
        path,
        # numpy's stub lets **arrays fill savez's allow_pickle; its keys are params and state.
        lambda f: np.savez(f, header=np.array(text), **arrays),  # type: ignore[arg-type]
    )


def _optimizer_entry(model: Sequential, optimizer: object) -> Tuple[Header, Array]:
    """The header entry and the (n_state, n_params) state of an optimizer saved with model."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"optimizer: expected None or a pycvnn.optim optimizer, got {type(optimizer).__name__}"
        )
    name = _registry_name(type(optimizer))
    if name is None:
        raise ValueError(
            f"optimizer: expected one of pycvnn's optimizers ({sorted(OPTIMIZERS)}), got an "
            f"instance of {type(optimizer).__qualname__}, which a model file cannot rebuild"
        )
    hyper = _hyperparameters(optimizer)
    if sorted(hyper) != _constructor_keys(type(optimizer)):
        raise ValueError(
            f"optimizer: expected hyperparameters {_constructor_keys(type(optimizer))}, "
            f"{name} reports {sorted(hyper)}"
        )
    try:  # a value changed after construction must still be one the loader accepts
        type(optimizer)(**hyper)
    except (TypeError, ValueError) as err:
        raise type(err)(f"optimizer: {err}") from None
    n_params, n_state = model.n_params, optimizer.n_state
    owner = (model._uid, n_params, np.dtype(model.dtype).name)
    if optimizer._owner is None or optimizer._state is None:
        state, t = np.zeros((n_state, n_params), model.dtype), 0
    elif optimizer._owner != owner:
        raise ValueError(
            "optimizer: expected the optimizer that trains this model (or an unused one), "
            "got one whose state belongs to another model"
        )
    else:
        state, t = np.empty((n_state, n_params), model.dtype), optimizer.t
        for row, buf in zip(state, optimizer._state):
            row[...] = buf
    bad = _first_non_finite(state.reshape(-1))
    if bad is not None:
        row, col = divmod(bad, n_params)
        raise ValueError(
            f"optimizer: expected a finite state to save, got state[{row}, {col}] = "
            f"{state[row, col]}"
        )
    entry = {"name": name, "hyperparameters": hyper, "t": t}
    return entry, state


@overload
def read(
    path: PathLike, with_optimizer: Literal[False] = False
) -> Tuple[List[Layer], str, Array]: ...
@overload
def read(path: PathLike, with_optimizer: Literal[True]) -> Contents: ...
@overload
def read(
    path: PathLike, with_optimizer: bool
) -> Union[Contents, Tuple[List[Layer], str, Array]]: ...
def read(
    path: PathLike, with_optimizer: bool = False
) -> Union[Contents, Tuple[List[Layer], str, Array]]:
    """(layers, dtype name, flat parameters) of the model file at path, and with_optimizer
    a fourth item: None or (optimizer, t, state of shape (n_state, n_params)) of the
    optimizer saved with it. FileNotFoundError if missing; ValueError naming the file for a
    foreign, truncated, damaged, hostile or newer-version file. pycvnn.load builds the model
    (and binds the optimizer to it) from them."""
    contents = _read(path)
    return contents if with_optimizer else contents[:3]


def _read(path: PathLike) -> Contents:
    path = os.fspath(path)
    # O_NONBLOCK so that a FIFO without a writer is refused below instead of hanging here.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as err:
        raise FileNotFoundError(err.errno, f"path: no model file at {path!r}", path) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ValueError(f"path: {path!r} is not a regular file (a model file is one)")
    with os.fdopen(fd, "rb") as f:
        try:
            return _load(f, info.st_size)
        except _Invalid as err:
            raise ValueError(f"path: {path!r} {err}") from None
        except OSError as err:
            if err.errno != errno.EINVAL:  # a real I/O error, not damage
                raise
            raise ValueError(
                f"path: {path!r} is damaged: its zip directory points outside the file ({err})"
            ) from None
        except _ARCHIVE_ERRORS as err:
            raise ValueError(
                f"path: {path!r} is not a readable pycvnn model file (truncated "
                f"or damaged, or not an .npz archive: {type(err).__name__}: "
                f"{str(err)[:200]})"
            ) from None
