"""Configs are data: the packages whose classes a config or checkpoint may name, and a guarded importer.

jsonargparse imports every `class_path` it meets while parsing, so a config naming, say, `os.system` could run code
before any of ours. The rule: a class path must belong to this project (`lightning_modules`, `datamodules`, `core`,
`app`), torch, transformers, peft or lightning, or to a package the user allows explicitly:

- `LS_LLAMA_ALLOWED_CLASS_PATHS=bitsandbytes.optim,my_lab.poolings python main.py fit ...` (comma-separated import
  path prefixes), or
- `allow_class_paths("my_lab.poolings")` from Python.

`restrict_imports()` hands the rule to jsonargparse's own import-path policy (`set_parsing_settings(
import_path_denylist=["*"], import_path_allowlist=...)`), which covers config files, the command line, dict configs
and the hyper-parameters Lightning parses from checkpoints; jsonargparse's YAML loader is safe (no Python tags) and
Lightning loads checkpoints with `torch.load(weights_only=True)` and only its own instantiators. `from_spec` applies
the same rule to the component specs the model rebuilds from its hyper-parameters (`mask`, `pooling`).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import sys
from typing import Any, TypeVar

from jsonargparse import set_parsing_settings
from jsonargparse._common import default_import_path_denylist  # modules that run code by design

T = TypeVar("T")

PROJECT_PACKAGES = ("lightning_modules", "datamodules", "core", "app")
ALLOWED_PACKAGES = (*PROJECT_PACKAGES, "torch", "transformers", "peft", "lightning")
ENV_VAR = "LS_LLAMA_ALLOWED_CLASS_PATHS"
_extra: list[str] = []


class ClassPathNotAllowed(ValueError):
    """A config or checkpoint names a class outside the allowed packages."""


def allow_class_paths(*prefixes: str) -> None:
    """Allow configs to name classes under these import path prefixes (e.g. `my_lab.poolings`)."""
    for prefix in prefixes:
        if not prefix or not all(part.isidentifier() for part in prefix.split(".")):
            raise ValueError(f"allow_class_paths: {prefix!r} is not a dotted import path")
        if prefix not in _extra:
            _extra.append(prefix)
    restrict_imports()


def allowed_prefixes() -> list[str]:
    """The allowed import path prefixes: the built-in packages, `allow_class_paths` and the environment variable."""
    from_env = [p.strip() for p in os.environ.get(ENV_VAR, "").split(",") if p.strip()]
    return [p for p in dict.fromkeys([*ALLOWED_PACKAGES, *_extra, *from_env]) if not never_allowed(p)]


def is_allowed(class_path: str) -> bool:
    """Whether `class_path` lies under an allowed prefix (and not in a module that is never allowed)."""
    prefixes = allowed_prefixes()
    return not never_allowed(class_path) and any(class_path == p or class_path.startswith(p + ".") for p in prefixes)


def never_allowed(class_path: str) -> bool:
    """Whether `class_path` lies in a module that runs code, deletes files or opens connections by design (`os`,
    `subprocess`, `pickle`, `builtins.exec`, ...: jsonargparse's default denylist): never allowed, even when asked."""
    parts = class_path.split(".")
    return any(".".join(parts[:n]) in default_import_path_denylist for n in range(1, len(parts) + 1))


def not_allowed_message(class_path: str, field: str) -> str:
    """One line naming the class, the rule and the way to allow it."""
    if never_allowed(class_path):
        return f"{field}: class {class_path!r} is refused: its module can run code or touch files; configs are data"
    return (
        f"{field}: class {class_path!r} is not in an allowed package ({', '.join(allowed_prefixes())}); configs are "
        f"data. To allow it: {ENV_VAR}={class_path.rpartition('.')[0] or class_path}"
    )


def restrict_imports() -> None:
    """Let jsonargparse import only classes of the allowed packages from parsed values (idempotent)."""
    set_parsing_settings(import_path_denylist=["*"], import_path_allowlist=allowed_prefixes())


def import_class(class_path: str, field: str) -> type:
    """Import `class_path` if it belongs to an allowed package; `field` names the config field in errors."""
    if not is_allowed(class_path):
        raise ClassPathNotAllowed(not_allowed_message(class_path, field))
    module_name, _, name = class_path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"{field}: cannot import {class_path!r}: {error}") from error
    if not hasattr(module, name):
        public = [n for n, v in vars(module).items() if inspect.isclass(v) and not n.startswith("_")]
        match = difflib.get_close_matches(name, public, n=1, cutoff=0.6)
        hint = f"; did you mean {module_name}.{match[0]}?" if match else ""
        raise ValueError(f"{field}: {module_name} has no class {name!r}{hint}")
    return getattr(module, name)


def public_class_path(cls: type) -> str:
    """`package.Class` where the class's top-level package exports it (`lightning_modules.MaxPooling`, the name
    configs use, stable when files move), else `module.Class`."""
    package = sys.modules.get(cls.__module__.split(".")[0])
    if package is not None and getattr(package, cls.__qualname__, None) is cls:
        return f"{package.__name__}.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def to_spec(obj: Any) -> dict[str, Any]:
    """`{"class_path": ..., "init_args": {...}}` of an object whose init arguments are stored as attributes."""
    cls = type(obj)
    params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
    init_args = {p.name: getattr(obj, p.name) for p in params if hasattr(obj, p.name)}
    return {"class_path": public_class_path(cls), "init_args": init_args}


def from_spec(spec: Any, base: type[T], field: str, names: dict[str, type[T]] | None = None) -> T:
    """Build a `base` instance from an instance, a `{"class_path", "init_args"}` dict, or a registered short name.

    Args:
        spec: the instance, spec dict, short name (a key of `names`) or class path.
        base: the class the result must be an instance of.
        field: the config field, named in errors.
        names: the registry of short names (e.g. `POOLINGS`: `max` -> `MaxPooling`).
    """
    if isinstance(spec, base):
        return spec
    if isinstance(spec, str):
        if names and spec in names:
            return names[spec]()
        spec = {"class_path": spec}
    if not isinstance(spec, dict) or "class_path" not in spec:
        known = f" (registered names: {', '.join(sorted(names))})" if names else ""
        raise ValueError(f"{field}: expected a {base.__name__}, a short name or a class_path dict, got {spec!r}{known}")
    class_path = spec["class_path"]
    if "." not in class_path:
        if names and class_path in names:
            return names[class_path](**spec.get("init_args", {}))
        class_path = f"lightning_modules.{class_path}"
    cls = import_class(class_path, field)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ValueError(f"{field}: {class_path} is not a {base.__name__}")
    return cls(**spec.get("init_args", {}))
