"""The CLI's guard for "configs are data" (the rule itself: `core.class_paths`).

`core.class_paths.restrict_imports()` makes jsonargparse's own import-path policy refuse any class outside the
allowed packages; that is the enforcement, for files, the command line, dict configs and checkpoints. What its
refusal lacks, measured on jsonargparse 4.53: the message names neither the config file nor the key, and its advice
("Add the import path to import_path_allowlist in set_parsing_settings") is a Python call a CLI user cannot make.
So before parsing, `check_class_paths(args)` reads the command line, the `--config` files and dict configs and
refuses a disallowed `class_path` (at any depth: `init_args`, `callbacks`, `logger`, `optimizer`, ...) with one line
naming the file, the key, the class and the environment variable that allows it; `check_checkpoint` does the same
for a checkpoint's stored hyper-parameters. YAML is read with `yaml.safe_load`: Python tags are refused, never run.
`show_allowed_classes_only()` keeps `--help` consistent: jsonargparse lists every imported subclass of a type
(accelerate's optimizers come in with transformers); only the allowed ones are listed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
import yaml
from jsonargparse import Namespace

from core.class_paths import ClassPathNotAllowed, is_allowed, not_allowed_message

CONFIG_FLAGS = ("--config", "-c")


class ConfigSecurityError(ClassPathNotAllowed):
    """A config or checkpoint names a class outside the allowed packages, or holds executable YAML."""


def _allowed_or_short(class_path: str) -> bool:
    # a short name is resolved by jsonargparse among the imported (and, see below, allowed) subclasses only
    return "." not in class_path or is_allowed(class_path)


def show_allowed_classes_only() -> None:
    """Make jsonargparse's `--help` (and short-name resolution) list only subclasses in allowed packages."""
    from jsonargparse import _completions, _typehints

    original = _typehints.get_all_subclass_paths
    if getattr(original, "allowed_only", False):
        return

    def allowed_subclass_paths(*args: Any, **kwargs: Any) -> list[str]:
        return [path for path in original(*args, **kwargs) if is_allowed(path)]

    allowed_subclass_paths.allowed_only = True  # type: ignore[attr-defined]
    _typehints.get_all_subclass_paths = allowed_subclass_paths
    _completions.get_all_subclass_paths = allowed_subclass_paths


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
    if not isinstance(value, str) or not _allowed_or_short(value):
        raise ConfigSecurityError(not_allowed_message(str(value), f"{source}: {key}"))
