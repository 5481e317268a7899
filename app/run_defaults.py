"""What the CLI decides before building anything, so that `--print_config` shows what a run really uses.

- `data.tokenizer` left out: the backbone's own (`model.backbone`). This is the only value that crosses from the
  model's config to the data's; the data module then hands the model ids only (labels, pad id, vocabulary size).
- `model.mask` / `model.pooling` left out: the backbone's defaults, decided by `lightning_modules.builders`
  (`default_mask`, `default_pooling`) from its transformers config, written into the config as class paths.
- `trainer.precision` left out: `bf16-mixed` on a bf16-capable GPU, `32-true` elsewhere.
- Loggers: runs are named `<dataset>-<backbone>-<mask>-<pooling>` (e.g. `sst2-Llama-2-7b-hf-bidirectional-max`),
  tagged with each part (`dataset:sst2`, `mask:bidirectional`, ...) and grouped by dataset, so a W&B dashboard
  compares BERT vs LS-LLaMA vs LS-unLLaMA by filtering. Explicit settings in a config always win.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch
from jsonargparse import Namespace

from core.class_paths import import_class, to_spec
from core.hub import load_config
from lightning_modules.builders import default_mask, default_pooling

log = logging.getLogger(__name__)


def get(namespace: Any, key: str, default: Any = None) -> Any:
    """`namespace.a.b.c` for `key="a.b.c"`, or `default` where a part is missing or None."""
    value = namespace
    for part in key.split("."):
        value = getattr(value, part, None) if isinstance(value, Namespace) else None
        if value is None:
            return default
    return value


def _class_attr(spec: Any, attribute: str, default: str) -> Any:
    class_path = spec.class_path if isinstance(spec, Namespace) else spec
    if not isinstance(class_path, str):
        return default
    if "." not in class_path:
        class_path = f"lightning_modules.{class_path}"
    try:
        return getattr(import_class(class_path, "run name"), attribute, default)
    except ValueError:
        return class_path.rsplit(".", 1)[-1].lower()


def backbone_label(model: Namespace) -> str:
    """A short name of the backbone: the hub id's last part, a file or folder name, or `<type>-random-<L>L<H>H`."""
    source = get(model, "backbone")
    if source:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(source).rstrip("/")).stem)
    config = get(model, "backbone_config") or {}
    layers, hidden = config.get("num_hidden_layers"), config.get("hidden_size")
    return f"{config.get('model_type', 'model')}-random-{layers}L{hidden}H"


def fill_components(config: Namespace) -> None:
    """Write the default mask and pooling of the backbone into `model.mask` / `model.pooling` where left out."""
    model = config.model
    if get(model, "mask") is not None and get(model, "pooling") is not None:
        return
    backbone_config = load_config(get(model, "backbone"), get(model, "backbone_config"))
    for key, default in (("mask", default_mask), ("pooling", default_pooling)):
        if get(model, key) is None:
            setattr(model, key, Namespace(to_spec(default(backbone_config))))


def run_descriptor(config: Namespace) -> dict[str, str]:
    """Dataset, backbone, mask, pooling, task and finetuning of a parsed config (components filled in)."""
    model = config.model
    task = _class_attr(get(config, "data"), "task", "sequence")
    mask_spec = get(model, "mask")
    mask = _class_attr(mask_spec, "name", "mask") if not isinstance(mask_spec, str) else mask_spec
    layer = get(mask_spec, "init_args.layer")
    mask = f"{mask}{layer}" if layer is not None else mask
    pooling_spec = get(model, "pooling")
    pooling = _class_attr(pooling_spec, "name", "pool") if not isinstance(pooling_spec, str) else pooling_spec
    return {
        "dataset": _class_attr(get(config, "data"), "name", "data"),
        "backbone": backbone_label(model),
        "mask": mask,
        "pooling": "tokens" if task == "token" else pooling,
        "task": task,
        "finetuning": str(get(model, "finetuning", "lora")),
    }


def _loggers(trainer: Namespace) -> list[Namespace]:
    loggers = get(trainer, "logger")
    if isinstance(loggers, Namespace):
        return [loggers]
    return [item for item in loggers if isinstance(item, Namespace)] if isinstance(loggers, list) else []


def name_loggers(config: Namespace, subcommand: str | None) -> None:
    """Name, group and tag the loggers' runs after `run_descriptor` (settings given in a config win)."""
    parts = run_descriptor(config)
    name = "-".join(parts[k] for k in ("dataset", "backbone", "mask", "pooling"))
    tags = [f"{k}:{v}" for k, v in parts.items()]
    for logger in _loggers(config.trainer):
        args = logger.init_args if isinstance(get(logger, "init_args"), Namespace) else None
        if args is None:
            continue
        if "name" in args and args.name in (None, "lightning_logs"):
            args.name = name
        if logger.class_path.endswith("WandbLogger"):
            if get(args, "group") is None:  # wandb.init's own arguments are resolved into init_args
                args.group = parts["dataset"]
            args.tags = list(dict.fromkeys([*(get(args, "tags") or []), *tags]))
            if get(args, "job_type") is None:
                args.job_type = subcommand or "run"


def fill_run_defaults(config: Namespace, subcommand: str | None) -> None:
    """Fill the tokenizer, mask/pooling and precision defaults, and name/group/tag the loggers' runs."""
    data_args = get(config, "data.init_args")
    if data_args is not None and get(data_args, "tokenizer") is None and get(config, "model.backbone"):
        data_args.tokenizer = config.model.backbone
    fill_components(config)
    if get(config, "trainer.precision") is None:
        use_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        config.trainer.precision = "bf16-mixed" if use_bf16 else "32-true"
        log.info("trainer.precision not set: using %s (%s)", config.trainer.precision,
                 "GPU with bf16" if use_bf16 else "no bf16-capable GPU")  # fmt: skip
    name_loggers(config, subcommand)
