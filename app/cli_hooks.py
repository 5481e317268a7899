"""What `main.py`'s CLI does around jsonargparse's parsing: the class-path guard, `--print_config` with the run
defaults filled in, and the checks before the classes are built."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import ArgumentError, Namespace
from jsonargparse._actions import _ActionPrintConfig  # what --print_config records; see print_config_deferred

from app.config_guard import check_checkpoint, check_class_paths, show_allowed_classes_only
from app.errors import debugging
from app.parse_errors import explain
from app.run_defaults import fill_run_defaults, get
from app.run_record import (
    RunRecord,
    ckpt_path_of,
    join_fit_run,
    read_checkpoint,
    record_of,
    recorded,
    set_checkpoint_defaults,
)
from app.wandb_runs import drop_wandb_loggers, quiet_loggers
from core.class_paths import restrict_imports

log = logging.getLogger(__name__)


PACKAGES = ("app", "core", "lightning_modules", "datamodules")
SUBCOMMANDS = ("fit", "validate", "test", "predict")
# `--trainer.max_epoch` is not silently `max_epochs` (argparse's abbreviations), and a parse error is raised to
# `readable_parse_errors` instead of printing the whole usage
_STRICT = {"exit_on_error": False, "allow_abbrev": False}
PARSER_KWARGS: dict[str, Any] = {**_STRICT, **{name: dict(_STRICT) for name in SUBCOMMANDS}}


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (pytest and notebooks swap it)."""

    @property
    def stream(self) -> Any:  # noqa: D102
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class _DropAdverts(logging.Filter):
    """Lightning's "💡 Tip: ... try installing litlogger/litmodels" lines: advertising, not about the run."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102
        return not str(record.msg).startswith("💡 Tip")


# warnings raised inside libraries on every run that say nothing about the user's run (checked 2026-11, Lightning
# 2.6.6 + torch 2.13: its pytree helper calls an API torch deprecated)
HARMLESS_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
    # Lightning, on any machine with SLURM's client installed: a hint for runs outside a job, where it is no error
    r"The `srun` command is available on your system but is not used.*",
)


def quiet_harmless_noise() -> None:
    """Filter the library messages that every run prints and that carry no information about it (idempotent)."""
    for message in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropAdverts) for f in rank_zero.filters):
        rank_zero.addFilter(_DropAdverts())


def configure_logging() -> None:
    """Show this project's INFO messages (precision chosen, trainable parameters, probe passed, data sizes) on
    stderr, as Lightning shows its own, and quiet the harmless library noise (idempotent)."""
    quiet_harmless_noise()
    for name in PACKAGES:
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        if not any(getattr(h, "ls_llama", False) for h in logger.handlers):
            handler = _StderrHandler()
            handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
            handler.ls_llama = True  # type: ignore[attr-defined]
            logger.addHandler(handler)


def guard_class_paths(args: Any) -> None:
    """Before parsing: jsonargparse may import allowed packages only, `--help` lists those only, and the command
    line, config files and a `--ckpt_path` checkpoint are checked with messages naming file and key."""
    restrict_imports()
    show_allowed_classes_only()
    check_class_paths(args)
    for path in _ckpt_paths(args):
        check_checkpoint(path)


def _ckpt_paths(args: Any) -> list[str]:
    return [p for p in _flag_values(args, ("--ckpt_path",)) if Path(p).is_file()]


def _flag_values(args: Any, flags: tuple[str, ...]) -> list[str]:
    """The values of `flags` on a command line (`--flag value` or `--flag=value`), in order."""
    values = []
    for index, arg in enumerate(args if isinstance(args, list) else []):
        if isinstance(arg, str) and arg.partition("=")[0] in flags and "=" in arg:
            values.append(arg.partition("=")[2])
        elif arg in flags and index + 1 < len(args):
            values.append(args[index + 1])
    return values


@contextmanager
def readable_parse_errors(args: Any) -> Iterator[None]:
    """Print a parse error as at most two lines naming the key, where it was given and the closest valid choice
    (`app.parse_errors.explain`), then exit with status 2 as argparse does; `LS_LLAMA_DEBUG=1` re-raises it."""
    argv = [a for a in args if isinstance(a, str)] if isinstance(args, list) else []
    try:
        yield
    except ArgumentError as error:
        if debugging(argv):
            raise
        subcommand = next((a for a in argv if a in SUBCOMMANDS), "fit")
        print(explain(str(error), argv, subcommand), file=sys.stderr)
        raise SystemExit(2) from None


@contextmanager
def print_config_deferred(parser: Any) -> Iterator[dict[str, Any]]:
    """Parse with `--print_config` recorded but not yet printed; yields the request (empty when not asked for).

    jsonargparse prints the config at the end of parsing, before LightningCLI or we fill in anything; the request
    is kept on the root parser as `print_config` (`key`, `subparser` and the dump options)."""
    request: dict[str, Any] = {}
    with _ActionPrintConfig.skip_print_config():
        yield request
        asked = getattr(parser, "print_config", None)
        if asked is not None:
            request.update(asked)
            delattr(parser, "print_config")


def print_config_and_exit(parser: Any, config: Namespace, request: dict[str, Any]) -> None:
    """Fill the run defaults into the parsed config and print it as `--print_config` would, then exit."""
    options = dict(request)
    key, subparser = options.pop("key"), options.pop("subparser")
    section = config[key] if key is not None else config
    fill_run_defaults(section, key)
    sys.stdout.write(subparser.dump(section, **options))
    parser.exit()


def checkpoint_defaults(parser: Any, args: Any) -> dict[str, Any]:
    """For `validate`/`test`/`predict --ckpt_path X`: X's record (data section, seed, loggers; `app.run_record`)
    becomes the subcommand's defaults, which every config and option given overrides; returns the record. A
    `--ckpt_path` that is no checkpoint fails here with one line."""
    if not isinstance(args, list) or not args or args[0] not in ("validate", "test", "predict"):
        return {}
    path = ckpt_path_of(args)
    if path is None:
        return {}
    record = recorded(read_checkpoint(path))
    set_checkpoint_defaults(parser, args[0], record)
    return record


def before_instantiate(config: Namespace, subcommand: str | None, args: Any, record: dict[str, Any]) -> None:
    """Fill the run defaults (no W&B run for `predict`); a checkpoint's test joins its fit's W&B run; warn when a
    later config dropped the checkpoint callback of an earlier one."""
    fill_run_defaults(config, subcommand)
    drop_wandb_loggers(config, subcommand)
    if subcommand in ("validate", "test") and record:
        join_fit_run(config, record)
    if subcommand == "fit":
        warn_if_checkpoint_dropped(config, args)


def after_instantiate(trainer: Any, config: Namespace) -> None:
    """Give the trainer's `RunRecord` the run's data section, seed and loggers, and quiet the loggers."""
    for callback in trainer.callbacks:
        if isinstance(callback, RunRecord):
            callback.config = record_of(config)
    quiet_loggers(trainer)


def _has_checkpoint(callbacks: Any) -> bool:
    callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
    names = [c.get("class_path") if isinstance(c, dict) else get(c, "class_path") for c in callbacks if c]
    return any(str(name).endswith("ModelCheckpoint") for name in names)


def warn_if_checkpoint_dropped(config: Namespace, args: Any) -> None:
    """A later config's `trainer.callbacks` list replaces an earlier one (YAML lists are not merged): warn when that
    dropped a `ModelCheckpoint`, e.g. `trainer.callbacks: [EarlyStopping]` stacked on configs/trainer/default.yaml."""
    trainer = config.trainer
    if get(trainer, "fast_dev_run") or get(trainer, "enable_checkpointing") is False:
        return
    if _has_checkpoint(get(trainer, "callbacks") or []):
        return
    earlier = [path for path, tree in config_files(args) if _has_checkpoint(_dig(tree, "trainer", "callbacks"))]
    if earlier:
        log.warning(
            "trainer.callbacks lost the ModelCheckpoint of %s: a later config's callbacks list replaced it (lists are "
            "not merged), so no best-on-validation checkpoint is kept. Stack configs/trainer/early_stopping.yaml "
            "(which keeps the checkpoints) or append with --trainer.callbacks+=...",
            ", ".join(earlier),
        )


def _dig(tree: Any, *keys: str) -> Any:
    for key in keys:
        tree = tree.get(key) if isinstance(tree, dict) else None
    return tree or []


def config_files(args: Any) -> list[tuple[str, Any]]:
    """`(path, parsed YAML)` of the `--config` files of a command line, in order."""
    paths = _flag_values(args, ("--config", "-c"))
    return [(p, yaml.safe_load(Path(p).read_text())) for p in paths if Path(p).is_file()]
