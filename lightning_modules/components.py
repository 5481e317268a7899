"""Serialisable specs of the injected components (mask strategy, pooling), and a guarded importer for them.

Configs are data: a class path is only imported from this project, torch, transformers, peft or lightning, so a
config or checkpoint cannot make us import and run arbitrary code.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, TypeVar

T = TypeVar("T")

ALLOWED_PREFIXES = ("lightning_modules.", "datamodules.", "torch.", "transformers.", "peft.", "lightning.")


def import_class(class_path: str, field: str) -> type:
    """Import `class_path` if it belongs to an allowed package; `field` names the config field in errors."""
    if not class_path.startswith(ALLOWED_PREFIXES):
        raise ValueError(
            f"{field}: class path {class_path!r} is not allowed; configs may only name classes of "
            f"{', '.join(p.rstrip('.') for p in ALLOWED_PREFIXES)}"
        )
    module_name, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"{field}: cannot import {class_path!r}: {error}") from error


def to_spec(obj: Any) -> dict[str, Any]:
    """`{"class_path": ..., "init_args": {...}}` of an object whose init arguments are stored as attributes."""
    cls = type(obj)
    params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
    init_args = {p.name: getattr(obj, p.name) for p in params if hasattr(obj, p.name)}
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": init_args}


def from_spec(spec: Any, base: type[T], field: str, names: dict[str, type[T]] | None = None) -> T:
    """Build a `base` instance from an instance, a `{"class_path", "init_args"}` dict, or a short name."""
    if isinstance(spec, base):
        return spec
    if isinstance(spec, str):
        if names and spec in names:
            return names[spec]()
        spec = {"class_path": spec}
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise ValueError(f"{field}: expected a {base.__name__}, a short name or a class_path dict, got {spec!r}")
    class_path = spec["class_path"]
    if "." not in class_path:
        class_path = f"lightning_modules.{class_path}"
    cls = import_class(class_path, field)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ValueError(f"{field}: {class_path} is not a {base.__name__}")
    return cls(**spec.get("init_args", {}))
