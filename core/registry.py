"""Registries of named components: mask strategies, poolings, prompt formatters (any family of small classes that a
config may name by a short name, e.g. `model.pooling: max`).

A family's base class subclasses `Component` and sets `registry` (the family's dict) and `kind` (named in errors);
defining a subclass with its own `name` registers it there. A component also names itself for run names, tags and
the W&B config: `label` is its `name`, plus its parameters where it has any (`bidir@15`, `window16`), so two
settings of one class never share a run name.
"""

from __future__ import annotations

from typing import Any, ClassVar


def register(registry: dict[str, type], cls: type, kind: str) -> None:
    """Add `cls` to `registry` under `cls.name`; a different class may not take a registered name."""
    known = registry.get(cls.name)
    if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"{kind} name {cls.name!r} is taken by {known.__module__}.{known.__qualname__}")
    registry[cls.name] = cls


class Component:
    """Base of a family of named components (see the module docstring)."""

    name: ClassVar[str] = "base"
    registry: ClassVar[dict[str, type]] = {}
    kind: ClassVar[str] = "component"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            register(cls.registry, cls, cls.kind)

    @property
    def label(self) -> str:
        """The short name of this component with its parameters, for run names, tags and the W&B config: `name` by
        default; a parametrised component overrides it (`bidir@15`)."""
        return self.name
