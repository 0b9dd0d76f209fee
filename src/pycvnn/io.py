"""Model files: an .npz holding a JSON header (format, version, dtype, layers) and the
parameter arena. Written atomically (temporary file, then rename); loaded without pickle."""

import json
import os
import tempfile

import numpy as np

from .layers import ACTIVATION_LAYERS, Dense, LeakyReLU
from .model import Sequential

FORMAT = "pycvnn-model"
VERSION = 1


def _layer_config(layer):
    if isinstance(layer, Dense):
        return {"type": "Dense", "in": layer.in_features, "out": layer.out_features,
                "activation": layer.dense_activation, "init": layer.init}
    config = {"type": layer.activation}
    if isinstance(layer, LeakyReLU):
        config["alpha"] = layer.alpha
    return config


def _layer(config):
    kind = config["type"]
    if kind == "Dense":
        return Dense(config["in"], config["out"], activation=config["activation"], init=config["init"])
    if kind == "leaky_relu":
        return LeakyReLU(config["alpha"])
    return ACTIVATION_LAYERS[kind]()


def save(model, path):
    """Write model to path (.npz format, whatever the name) atomically."""
    path = os.fspath(path)
    header = {"format": FORMAT, "version": VERSION, "dtype": np.dtype(model.dtype).name,
              "layers": [_layer_config(layer) for layer in model.layers]}
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".pycvnn-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, header=np.array(json.dumps(header)), params=model._params)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load(path):
    """The model saved at path. FileNotFoundError if missing; ValueError for a foreign,
    truncated or newer-version file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: no model file at {path!r}")
    try:
        with np.load(path, allow_pickle=False) as data:
            files = sorted(data.files)
            if "header" in files and "params" in files:
                header_text, params = str(data["header"]), data["params"]
    except Exception as err:  # zipfile/zlib/EOF errors, numpy refusing pickled data, ...
        raise ValueError(f"path: {path!r} is not a readable pycvnn model file (truncated, or "
                         f"not an .npz archive without pickled objects: {type(err).__name__}: "
                         f"{err})") from None
    if "header" not in files or "params" not in files:
        raise ValueError(f"path: {path!r} is an .npz file but not a pycvnn model "
                         f"(it holds {files})")
    try:
        header = json.loads(header_text)
    except ValueError as err:
        raise ValueError(f"path: {path!r} is not a pycvnn model file (its header is not JSON: "
                         f"{err})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"path: {path!r} is not a pycvnn model file (format {header!r})")
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"path: {path!r} has an invalid format version {version!r} "
                         f"(expected an int from 1 to {VERSION})")
    if version > VERSION:
        raise ValueError(f"path: {path!r} was written by a newer pycvnn (format version "
                         f"{version}, this one reads up to {VERSION})")
    try:
        model = Sequential([_layer(c) for c in header["layers"]], dtype=header["dtype"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"path: {path!r} has an invalid layer list: {err}") from None
    if params.dtype.kind not in "fiu":
        raise ValueError(f"path: {path!r} holds parameters of dtype {params.dtype}, expected floats")
    if params.shape != model._params.shape:
        raise ValueError(f"path: {path!r} holds {params.size} parameters, its layers need "
                         f"{model.n_params}")
    model._params[...] = params
    return model
