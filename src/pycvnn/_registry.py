"""The registry behind each concept (activations, losses, optimizers, schedules): names to
entries, from which the layers, the CLI's choices, the checks and the error messages derive."""

from __future__ import annotations

import inspect
from typing import Any, Dict, Mapping, Optional, Tuple, Type, TypeVar, cast

from . import _validate as v

V = TypeVar("V")
T = TypeVar("T")


class Registry(Dict[str, V]):
    """name -> entry for one concept; `concept` names the argument in error messages."""

    def __init__(self, concept: str) -> None:
        super().__init__()
        self.concept = concept

    def names(self) -> Tuple[str, ...]:
        return tuple(self)

    def lookup(self, name: object, arg: Optional[str] = None) -> V:
        """The entry called `name`, else a ValueError naming `arg` and listing the names."""
        return self[v.name_in(name, arg or self.concept, self)]

    def build(
        self: Registry[Type[T]],
        name: object,
        options: Mapping[str, Any],
        base: Optional[Type[T]] = None,
    ) -> T:
        """An object by name built with `options`; an instance of `base`, if given, passes
        through as it is (it carries its own options, so giving more is an error)."""
        if base is not None and isinstance(name, base):
            if options:
                raise ValueError(
                    f"options: expected none when passing a {base.__name__} object, "
                    f"got {sorted(options)}"
                )
            return name
        cls = self.lookup(name)
        known = list(inspect.signature(cls).parameters)
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise TypeError(f"options: {name!r} takes {known}, got the unknown option(s) {unknown}")
        return cls(**options)


def subclass(
    base: Type[T], class_name: str, module: str, doc: Optional[str], **attributes: Any
) -> Type[T]:
    """A subclass of `base` as if written in `module` under `class_name` (so pickle finds it)."""
    namespace = {**attributes, "__doc__": doc, "__module__": module, "__qualname__": class_name}
    # type() with three arguments is typed as returning a plain type; this one subclasses base.
    return cast(Type[T], type(class_name, (base,), namespace))
