"""The package itself: version from one source, the _core stub and the NumPy twin in step."""

import ast
import importlib.metadata
import inspect
import pathlib
import re

import pycvnn
from pycvnn import _core, reference

STUB = pathlib.Path(pycvnn.__file__).with_name("_core.pyi")
NO_DEFAULT = "<no default>"  # a parameter without a default (None is a default value)


def stub_functions():
    """name -> [(arg name, default, or NO_DEFAULT)] for each public function in _core.pyi."""
    tree = ast.parse(STUB.read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            args = node.args.args
            defaults = [None] * (len(args) - len(node.args.defaults)) + node.args.defaults
            out[node.name] = [
                (a.arg, NO_DEFAULT if d is None else ast.literal_eval(d))
                for a, d in zip(args, defaults)
            ]
    return out


def stub_classes():
    """class name -> {method name -> [(arg name, default)]} (self dropped), from _core.pyi."""
    tree = ast.parse(STUB.read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            methods = {}
            for f in node.body:
                if isinstance(f, ast.FunctionDef):
                    args = f.args.args[1:]
                    defaults = [None] * (len(args) - len(f.args.defaults)) + f.args.defaults
                    methods[f.name] = [
                        (a.arg, NO_DEFAULT if d is None else ast.literal_eval(d))
                        for a, d in zip(args, defaults)
                    ]
            out[node.name] = methods
    return out


# The activation kernels, made from the registry: the stub describes them once, generically.
ACTIVATION_KERNELS = {
    f"{entry[0]}_{part}" for entry in _core.ACTIVATIONS for part in ("forward", "backward")
}


def core_functions():
    return {
        n
        for n in dir(_core)
        if not n.startswith("_")
        and callable(getattr(_core, n))
        and not isinstance(getattr(_core, n), type)
        and n not in ACTIVATION_KERNELS
    }


def activation_signatures():
    """name -> [(arg name, default)] each registered activation kernel must have."""
    out = {}
    for name, _, has_alpha, _ in _core.ACTIVATIONS:
        alpha = [("alpha", 0.01)] if has_alpha else []
        out[f"{name}_forward"] = [("z", NO_DEFAULT)] + alpha
        out[f"{name}_backward"] = [("z", NO_DEFAULT), ("dout", NO_DEFAULT)] + alpha
    return out


def test_the_twin_has_the_same_activation_registry():
    assert reference.activations.ACTIVATIONS == _core.ACTIVATIONS


def test_activation_kernels_have_the_registry_signatures_on_both_backends():
    for name, params in activation_signatures().items():
        assert pybind_params(getattr(_core, name)) == params, name
        sig = inspect.signature(getattr(reference, name))
        assert [
            (p.name, NO_DEFAULT if p.default is inspect.Parameter.empty else p.default)
            for p in sig.parameters.values()
        ] == params, name


def test_version_single_source():
    assert re.fullmatch(r"\d+\.\d+\.\d+", pycvnn.__version__)
    assert importlib.metadata.version("pycvnn") == pycvnn.__version__
    assert _core.__version__ == pycvnn.__version__


def test_stub_lists_exactly_the_compiled_functions():
    assert set(stub_functions()) == core_functions()


def split_top_level(text):
    """Split "a: T[x, y] = 1, b: U" on the commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "[("
        depth -= ch in "])"
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    return parts + [text[start:].strip()] if text.strip() else parts


def pybind_params(fn, drop_self=False):
    """[(arg name, default)] from the "name(arg: type = default, ...) -> ret" line pybind11
    puts first in each docstring."""
    doc = fn.__doc__.splitlines()[0]
    inner = doc[doc.index("(") + 1 : doc.rindex(") ->")]
    got = []
    for part in split_top_level(inner):
        pname, _, rest = part.partition(":")
        default = rest.partition(" = ")[2]
        got.append((pname.strip(), ast.literal_eval(default) if default else NO_DEFAULT))
    return got[1:] if drop_self else got


def test_compiled_signatures_match_stub():
    for name, params in stub_functions().items():
        assert pybind_params(getattr(_core, name)) == params, name
    for cls, methods in stub_classes().items():
        for name, params in methods.items():
            assert pybind_params(getattr(getattr(_core, cls), name), drop_self=True) == params, (
                cls,
                name,
            )


def test_reference_mirrors_stub():
    for name, params in stub_functions().items():
        fn = getattr(reference, name)
        sig = inspect.signature(fn)
        assert [p for p in sig.parameters] == [p[0] for p in params], name
        for pname, default in params:
            d = sig.parameters[pname].default
            assert (d is inspect.Parameter.empty) if default is NO_DEFAULT else d == default, (
                name,
                pname,
            )


def test_stub_lists_exactly_the_compiled_classes():
    compiled = {
        n for n in dir(_core) if not n.startswith("_") and isinstance(getattr(_core, n), type)
    }
    assert set(stub_classes()) == compiled


def test_reference_classes_mirror_stub():
    for cls, methods in stub_classes().items():
        for name, params in methods.items():
            for impl in (getattr(reference, cls), getattr(_core, cls)):
                assert hasattr(impl, name), (impl, name)
            sig = inspect.signature(getattr(getattr(reference, cls), name))
            got = [
                (p.name, NO_DEFAULT if p.default is inspect.Parameter.empty else p.default)
                for p in list(sig.parameters.values())[1:]
            ]
            assert got == params, (cls, name)
