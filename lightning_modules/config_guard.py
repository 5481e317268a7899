"""Configs are data: a config may name classes of this project, torch, transformers, peft and lightning, nothing else.

jsonargparse imports every `class_path` it meets while parsing (to check the class), so a config naming, say,
`os.system` could run code before any of ours. Two guards, both set up by `main()`:

1. `check_class_paths(args)` reads the command line, the `--config` files and dict configs BEFORE parsing and
   rejects any `class_path` (at any depth: `init_args`, `callbacks`, `logger`, `optimizer`, ...) outside
   `ALLOWED_PREFIXES`, with one error naming the file, the key and the value. YAML is read with `yaml.safe_load`,
   so tags such as `!!python/object/apply:os.system` are refused, never executed (jsonargparse's own loader is
   safe too).
2. `restrict_imports()` sets jsonargparse's import policy (`import_path_denylist=["*"]` plus our allowlist), which
   also covers class paths given as plain values (`--model.mask=pkg.Class`) and the hyper-parameters that
   `--ckpt_path` and `load_from_checkpoint` parse.

Checkpoints: Lightning loads them with `torch.load(weights_only=True)` (torch >= 2.6), which unpickles tensors
and plain containers only, and calls only instantiators of its allowlist (`lightning.pytorch.core.saving.
_ALLOWED_INSTANTIATORS`); `check_checkpoint` also applies our class-path rule to the stored hyper-parameters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
import yaml
from jsonargparse import Namespace, set_parsing_settings

from lightning_modules.components import ALLOWED_PREFIXES

CONFIG_FLAGS = ("--config", "-c")
ALLOWED_TEXT = ", ".join(p.rstrip(".") for p in ALLOWED_PREFIXES)


class ConfigSecurityError(ValueError):
    """A config or checkpoint names a class outside the allowed packages, or holds executable YAML."""


def restrict_imports() -> None:
    """Let jsonargparse import only classes of the allowed packages from parsed values (idempotent)."""
    set_parsing_settings(import_path_denylist=["*"], import_path_allowlist=[p.rstrip(".") for p in ALLOWED_PREFIXES])


def is_allowed(class_path: str) -> bool:
    """A short name (resolved by jsonargparse among imported subclasses only) or a path in an allowed package."""
    return "." not in class_path or class_path.startswith(ALLOWED_PREFIXES)


def check_class_paths(args: Any) -> None:
    """Reject disallowed class paths in CLI arguments (a list of strings, a dict or a Namespace) before parsing.

    Raises:
        ConfigSecurityError: naming the source (file or argument), the key and the class path.
    """
    if isinstance(args, (Mapping, Namespace)):
        _check_tree(_plain(args), "config dict")
        return
    args = list(args or [])
    for index, arg in enumerate(args):
        key, value = _split(arg, args[index + 1] if index + 1 < len(args) else None)
        if key is None or value is None:
            continue
        if key in CONFIG_FLAGS:
            _check_config_value(value)
        elif key.endswith("class_path"):
            _check(value, key, "command line")
        elif value.lstrip().startswith(("{", "[")):
            _check_tree(_load_yaml(value, f"command line {key}"), f"command line {key}")


def check_checkpoint(path: str | Path) -> None:
    """Apply the class-path rule to a checkpoint's stored hyper-parameters (loaded with `weights_only=True`)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    for key in ("hyper_parameters", "datamodule_hyper_parameters"):
        _check_tree(checkpoint.get(key) or {}, f"checkpoint {path} ({key})")


def _split(arg: str, following: str | None) -> tuple[str | None, str | None]:
    if not isinstance(arg, str) or not arg.startswith("-"):
        return None, None
    if "=" in arg:
        key, _, value = arg.partition("=")
        return key.rstrip("+"), value
    return arg, following


def _check_config_value(value: str) -> None:
    path = Path(value)
    if path.is_file():
        _check_tree(_load_yaml(path.read_text(encoding="utf-8"), str(path)), str(path))
    else:  # jsonargparse also takes the config itself as a YAML/JSON string
        _check_tree(_load_yaml(value, "--config string"), "--config string")


def _load_yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.constructor.ConstructorError as error:
        raise ConfigSecurityError(f"{source}: refused YAML tag ({error.problem}); configs are data") from None
    except yaml.YAMLError:
        return None  # not ours to report: jsonargparse gives the parse error with its context


def _plain(tree: Any) -> Any:
    if isinstance(tree, Namespace):
        tree = tree.as_dict()
    if isinstance(tree, Mapping):
        return {k: _plain(v) for k, v in tree.items()}
    return [_plain(v) for v in tree] if isinstance(tree, (list, tuple)) else tree


def _walk(tree: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(tree, Mapping):
        for name, value in tree.items():
            path = f"{key}.{name}" if key else str(name)
            yield path, value
            yield from _walk(value, path)
    elif isinstance(tree, (list, tuple)):
        for index, value in enumerate(tree):
            yield from _walk(value, f"{key}[{index}]")


def _check_tree(tree: Any, source: str) -> None:
    for key, value in _walk(tree):
        name = key.rsplit(".", 1)[-1]
        if name in ("class_path", "_class_path"):
            _check(value, key, source)
        elif name == "_instantiator" and value != "lightning.pytorch.cli.instantiate_module":
            raise ConfigSecurityError(f"{source}: {key}={value!r} is not Lightning's CLI instantiator")
        elif isinstance(value, str) and value.lstrip().startswith("{") and "class_path" in value:
            try:
                _check_tree(json.loads(value), f"{source} {key}")
            except json.JSONDecodeError:
                _check_tree(_load_yaml(value, f"{source} {key}"), f"{source} {key}")


def _check(value: Any, key: str, source: str) -> None:
    if not isinstance(value, str) or not is_allowed(value):
        raise ConfigSecurityError(
            f"{source}: {key}={value!r} is not allowed; a config may only name classes of {ALLOWED_TEXT} "
            "(or a short class name of those)"
        )
