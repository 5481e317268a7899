"""What a checkpoint needs to stand on its own: the run's data section, seed and loggers, and its W&B run.

`RunRecord` (added to every run by `main.py`) writes into each checkpoint the resolved `data` section (class path and
arguments: files, tokenizer, labels, lengths), `seed_everything` and the trainer's logger specs of the run that wrote
it; `WandbRuns` adds its W&B run id. So:

- `python main.py predict --ckpt_path best.ckpt --data.init_args.predict_file texts.txt` needs no config:
  `set_checkpoint_defaults` makes the record the subcommand's defaults, which any `--config` or option overrides
  (the model's arguments come from the checkpoint's hyper-parameters, as LightningCLI does);
- `python main.py test ... --ckpt_path best.ckpt` logs into the fit's W&B run (`join_fit_run`), its metrics beside
  `best/val_score`, at the fit's last step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from jsonargparse import Namespace
from lightning.pytorch import Callback

STATE_KEY = "RunRecord"
KEYWORD_PATHS = ("last", "best", "hpc", "registry")  # --ckpt_path values Lightning resolves itself


class RunRecord(Callback):
    """Keeps the run's data section, seed and logger specs in every checkpoint (see the module docstring); the CLI
    sets `config` after parsing."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}

    def state_dict(self) -> dict[str, Any]:
        """The record, plain data (checkpoints load with `weights_only=True`)."""
        return {"config": self.config}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep a loaded checkpoint's record (a resumed fit writes it again)."""
        self.config = state_dict.get("config") or self.config


def plain(value: Any) -> Any:
    """A jsonargparse Namespace (or nested lists/dicts of them) as plain dicts and lists."""
    if isinstance(value, Namespace):
        value = value.as_dict()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def record_of(config: Namespace) -> dict[str, Any]:
    """The part of a parsed subcommand config that a checkpoint keeps."""
    loggers = config.trainer.get("logger") if isinstance(config.trainer, Namespace) else None
    return {
        "seed_everything": plain(config.get("seed_everything")),
        "data": plain(config.get("data")),
        "trainer": {"logger": plain(loggers)} if isinstance(loggers, list) else {},
    }


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint's contents without its tensors' data (`weights_only`, memory-mapped).

    Raises:
        FileNotFoundError, IsADirectoryError, ValueError: one line naming the path and what was expected.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"--ckpt_path {path}: is a folder; expected a .ckpt file written by fit (its checkpoints/ folder holds "
            "best-*.ckpt and last.ckpt)"
        )
    if not path.is_file():
        raise FileNotFoundError(f"--ckpt_path {path}: file not found (expected a .ckpt file written by fit)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # a truncated file, another format: torch names the cause
        reason = str(error).strip().splitlines()[0][:160]
        raise ValueError(
            f"--ckpt_path {path}: not a checkpoint written by fit ({type(error).__name__}: {reason})"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"--ckpt_path {path}: not a Lightning checkpoint (no state_dict); expected a .ckpt of fit")
    return checkpoint


def recorded(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The `RunRecord` of a loaded checkpoint, with the fit's W&B run id (`wandb_id`) where it had one."""
    callbacks = checkpoint.get("callbacks") or {}
    record = dict((callbacks.get(STATE_KEY) or {}).get("config") or {})
    run = (callbacks.get("WandbRuns") or {}).get("run") or {}
    if run.get("id"):
        record["wandb"] = run
    return record


# how much of the data a fit sampled (a training subset, a validation subset) is no default for a later test or
# predict of its checkpoint: they read whole splits unless told otherwise (a suite's test once scored only the first
# 500 test sentences because its fit had validated on 500)
FIT_SAMPLING = ("max_train_examples", "max_eval_examples")


def checkpoint_defaults(record: dict[str, Any]) -> dict[str, Any]:
    """The subcommand defaults a checkpoint's record gives: its seed, data section (without `FIT_SAMPLING`) and
    loggers."""
    defaults = {key: record[key] for key in ("seed_everything", "data") if record.get(key) is not None}
    if isinstance(defaults.get("data"), dict) and isinstance(defaults["data"].get("init_args"), dict):
        init_args = {k: v for k, v in defaults["data"]["init_args"].items() if k not in FIT_SAMPLING}
        defaults["data"] = {**defaults["data"], "init_args": init_args}
    if (record.get("trainer") or {}).get("logger"):
        defaults["trainer.logger"] = record["trainer"]["logger"]
    return defaults


def set_checkpoint_defaults(parser: Any, subcommand: str, record: dict[str, Any]) -> None:
    """Make the checkpoint's data section, seed and loggers the subcommand's defaults (`checkpoint_defaults`): every
    config and option given on the command line overrides them."""
    subparser = parser._subcommands_action._name_parser_map[subcommand]
    defaults = checkpoint_defaults(record)
    if defaults:
        subparser.set_defaults(defaults)


def ckpt_path_of(args: list[Any]) -> str | None:
    """The `--ckpt_path` of a command line (None when absent or a keyword such as `last`)."""
    for index, arg in enumerate(args):
        if not isinstance(arg, str):
            continue
        value = arg.partition("=")[2] if arg.startswith("--ckpt_path=") else None
        if arg == "--ckpt_path" and index + 1 < len(args):
            value = args[index + 1]
        if value is not None:
            return None if value in KEYWORD_PATHS else value
    return None


def join_fit_run(config: Namespace, record: dict[str, Any]) -> None:
    """Point the W&B loggers of a checkpoint's `test`/`validate` at the fit's run (its id and project), unless a
    config names another run."""
    run = record.get("wandb") or {}
    loggers = config.trainer.get("logger") if isinstance(config.trainer, Namespace) else None
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        args = logger.get("init_args") if isinstance(logger, Namespace) else None
        if not str(logger and logger.get("class_path")).endswith("WandbLogger") or args is None or not run:
            continue
        if args.get("id") is None:
            args.id = run["id"]
            args.project = run.get("project") or args.get("project")
