"""Parse errors a person reads: at most two lines that name the key, where it was given (the command line, or the
`--config` file and line), what was wrong, and the closest valid key, value or class.

jsonargparse reports a typo inside a subclass's arguments (`model`, `data`) as a 10-20 line "Does not validate
against any of the Union subtypes" tree after the whole usage; `explain` reads that report (the shapes below, checked
on jsonargparse 4.53) and says the one thing that matters. Anything it does not recognise keeps the report's most
specific line.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from core.class_paths import is_allowed, not_allowed_message

FLAGS = ("--config", "-c")


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like `word` (difflib's ratio >= 0.6), or None."""
    found = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return found[0] if found else None


def _suggest(word: str, candidates: Iterable[str], prefix: str = "") -> str:
    match = closest(word, candidates)
    return f"; did you mean {prefix}{match}?" if match else ""


def source_of(key: str, argv: list[str]) -> str:
    """Where `key` (dotted, e.g. `model.lora_rank`; `init_args` optional) was given: `the command line`, or
    `<file>:<line>` of the last `--config` file that sets it."""
    parts = [p for p in key.split(".") if p != "init_args"]
    for arg in argv:
        if arg.startswith("--") and [p for p in arg[2:].partition("=")[0].split(".") if p != "init_args"] == parts:
            return "on the command line"
    found = None
    for path in _config_files(argv):
        line = _line_of(path, parts)
        if line is not None:
            found = f"in {path}:{line}"
    return found or "in the configs"


def _config_files(argv: list[str]) -> list[str]:
    files = []
    for index, arg in enumerate(argv):
        if arg in FLAGS and index + 1 < len(argv):
            files.append(argv[index + 1])
        elif arg.partition("=")[0] in FLAGS and "=" in arg:
            files.append(arg.partition("=")[2])
    return [f for f in files if Path(f).is_file()]


def _line_of(path: str, parts: list[str]) -> int | None:
    """The line of `path` that sets the nested key `parts` (`init_args` levels skipped), or None."""
    try:
        tree = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return None
    node: Any = tree
    for part in parts:
        if isinstance(node, dict) and isinstance(node.get("init_args"), dict) and part not in node:
            node = node["init_args"]
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    pattern = re.compile(rf"^\s*{re.escape(parts[-1])}\s*:")
    for number, text in enumerate(Path(path).read_text().splitlines(), 1):
        if pattern.match(text):
            return number
    return None


def _import(class_path: str) -> Any:
    """The class, if its package is allowed (`core.class_paths`: a suggestion must never import a refused module)."""
    if not is_allowed(class_path):
        return None
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def init_parameters(class_path: str) -> list[str]:
    """The `__init__` arguments jsonargparse accepts for a class (following `**kwargs` to its bases)."""
    from jsonargparse._parameter_resolvers import get_signature_parameters

    cls = _import(class_path)
    if cls is None:
        return []
    try:
        return [p.name for p in get_signature_parameters(cls, "__init__")]
    except Exception:  # a class jsonargparse cannot read: no suggestion rather than a second error
        return list(inspect.signature(cls).parameters)


def _class_names(class_path: str) -> list[str]:
    """The public classes next to `class_path` (its module's), as `module.Class`."""
    module_name = class_path.rpartition(".")[0]
    if not is_allowed(module_name):
        return []
    try:
        module = importlib.import_module(module_name)
    except (ImportError, ValueError):
        return []
    return [f"{module_name}.{n}" for n, v in vars(module).items() if inspect.isclass(v) and not n.startswith("_")]


def _group_of(message: str) -> str:
    found = re.match(r'Parser key "(\w+)"', message)
    return found.group(1) if found else ""


def _unknown_option(message: str, argv: list[str], subcommand: str) -> str | None:
    found = re.search(r"Problem with given class_path '([\w.]+)':\s*\n\s*Option '(\w+)' is not accepted", message)
    if not found:
        return None
    class_path, option = found.groups()
    group, name = _group_of(message), class_path.rsplit(".", 1)[-1]
    key = f"{group}.{option}" if group else option
    hint = _suggest(option, init_parameters(class_path), f"{group}." if group else "")
    return (
        f"error: {key} ({source_of(key, argv)}) is not an option of {name}{hint}\n"
        f"  every option: python main.py {subcommand} --{group or 'model'}.help {name}"
    )


def _unknown_key(message: str, argv: list[str], subcommand: str) -> str | None:
    found = re.search(r"does not accept option '([\w.]+)'", message) or re.search(
        r"unrecognized arguments: (--[\w.]+)", message
    )
    if not found:
        return None
    key = found.group(1).lstrip("-")
    group, _, option = key.rpartition(".")
    candidates = _group_options(group)
    hint = _suggest(option, candidates, f"{group}." if group else "")
    where = source_of(key, argv)
    return f"error: {key} ({where}) is not an option{hint}\n  every option: python main.py {subcommand} --help"


def _group_options(group: str) -> list[str]:
    """The options of a plain group (`trainer`: Lightning's `Trainer` arguments)."""
    if group == "trainer":
        from lightning.pytorch import Trainer

        return list(inspect.signature(Trainer).parameters)
    return []


BAD_VALUE = re.compile(
    r'Parser key "(\w+)":\s*\n\s*Expected a (typing\.Literal\[(.*?)\]|<class \'(\w+)\'>)\. Got value: (.*)'
)


def _bad_value(message: str, argv: list[str], subcommand: str) -> str | None:
    found = BAD_VALUE.search(message)
    if not found:
        return None
    option, _, allowed, type_name, value = found.groups()
    group = _group_of(message)
    key = f"{group}.{option}" if group else option
    if allowed is not None:
        choices = [c.strip().strip("'\"") for c in allowed.split(",")]
        expected = "one of " + ", ".join(choices) + _suggest(value.strip(), choices)
    else:
        expected = f"a value of type {type_name}"
    return f"error: {key}={value.strip()} ({source_of(key, argv)}): expected {expected}"


def _bad_class(message: str, argv: list[str], subcommand: str) -> str | None:
    found = re.search(r"Expected a path but ([\w.]+) either not accessible or invalid", message) or re.search(
        r"Import path ([\w.]+) does not exist", message
    )
    if not found:
        return None
    class_path = found.group(1)
    if "is not allowed" in message:  # refused by the class-path policy: say that, not "cannot import"
        return None
    keys = re.findall(r'Parser key "(\w+)"', message)
    key = ".".join(dict.fromkeys(keys)) or "a class_path"
    hint = _suggest(class_path, _class_names(class_path))
    return f"error: {key}: cannot import the class {class_path!r} ({source_of(key, argv)}){hint}"


def _refused_class(message: str, argv: list[str], subcommand: str) -> str | None:
    found = re.search(r"Importing '([\w.]+)' is not allowed", message)
    if not found:
        return None
    keys = re.findall(r'Parser key "(\w+)"', message)
    key = ".".join(dict.fromkeys(keys)) or "a class_path"
    return f"error: {not_allowed_message(found.group(1), key)} ({source_of(key, argv)})"


READERS = (_refused_class, _unknown_option, _bad_value, _bad_class, _unknown_key)


def explain(message: str, argv: list[str], subcommand: str = "fit") -> str:
    """At most two lines for a jsonargparse parse error `message` of the command line `argv` (see the module
    docstring); the report's most specific line where no reader recognises its shape."""
    for reader in READERS:
        text = reader(message, argv, subcommand)
        if text:
            return text
    lines = [line.strip(" -") for line in message.splitlines() if line.strip()]
    boilerplate = (
        "Parser key",
        "Does not validate",
        "Subtypes",
        "Errors",
        "Given value",
        "Expected a <class 'NoneType'>",
    )
    specific = [line for line in lines if not line.startswith(boilerplate)]
    return f"error: {(specific or lines or [message])[0]}\n  every option: python main.py {subcommand} --help"
