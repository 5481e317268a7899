"""Defaults the CLI fills in before building anything: tokenizer, precision, and run names/groups/tags.

Runs are named `<dataset>-<backbone>-<mask>-<pooling>` (e.g. `sst2-Llama-2-7b-hf-bidirectional-max`), grouped by
dataset and tagged with each part, so a W&B dashboard can compare BERT vs LS-LLaMA vs LS-unLLaMA by filtering.
Explicit settings in a config always win.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch
from jsonargparse import Namespace

from lightning_modules.components import import_class

log = logging.getLogger(__name__)

ENCODER_HINTS = ("bert", "roberta", "minilm", "electra", "deberta", "albert", "mpnet")


def _get(namespace: Any, key: str, default: Any = None) -> Any:
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
    """A short name of the backbone: the hub id's last part, a file or folder name, or `<type>-random`."""
    source = _get(model, "backbone")
    if source:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(source).rstrip("/")).stem)
    config = _get(model, "backbone_config") or {}
    layers, hidden = config.get("num_hidden_layers"), config.get("hidden_size")
    return f"{config.get('model_type', 'model')}-random-{layers}L{hidden}H"


def _is_encoder(model: Namespace) -> bool:
    source = str(_get(model, "backbone") or (_get(model, "backbone_config") or {}).get("model_type", "")).lower()
    return any(hint in source for hint in ENCODER_HINTS)


def run_descriptor(config: Namespace) -> dict[str, str]:
    """Dataset, backbone, mask, pooling and task of a parsed config."""
    model, data = config.model, config.data
    task = _class_attr(_get(config, "data"), "task", "sequence")
    mask_spec = _get(model, "mask")
    if mask_spec is None:
        mask = "bidirectional" if _is_encoder(model) else "causal"
    else:
        mask = _class_attr(mask_spec, "name", "mask")
        layer = _get(mask_spec, "init_args.layer")
        mask = f"{mask}{layer}" if layer is not None else mask
    if task == "token":
        pooling = "tokens"
    elif _get(model, "pooling") is None:
        pooling = "first" if _is_encoder(model) else "last"
    else:
        pooling = _class_attr(_get(model, "pooling"), "name", "pool")
    return {
        "dataset": _class_attr(data, "name", "data"),
        "backbone": backbone_label(model),
        "mask": mask,
        "pooling": pooling,
        "task": task,
        "finetuning": str(_get(model, "finetuning", "lora")),
    }


def _loggers(trainer: Namespace) -> list[Namespace]:
    loggers = _get(trainer, "logger")
    if isinstance(loggers, Namespace):
        return [loggers]
    return [item for item in loggers if isinstance(item, Namespace)] if isinstance(loggers, list) else []


def fill_run_defaults(config: Namespace, subcommand: str | None) -> None:
    """Fill the tokenizer from the backbone, pick the precision, and name/group/tag the loggers' runs."""
    data_args = _get(config, "data.init_args")
    if data_args is not None and _get(data_args, "tokenizer") is None and _get(config, "model.backbone"):
        data_args.tokenizer = config.model.backbone
    if _get(config, "trainer.precision") is None:
        use_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        config.trainer.precision = "bf16-mixed" if use_bf16 else "32-true"
        log.warning("trainer.precision not set: using %s (%s)", config.trainer.precision,
                    "GPU with bf16" if use_bf16 else "no bf16-capable GPU")  # fmt: skip
    parts = run_descriptor(config)
    name = "-".join(parts[k] for k in ("dataset", "backbone", "mask", "pooling"))
    tags = [f"{k}:{v}" for k, v in parts.items()]
    for logger in _loggers(config.trainer):
        args = logger.init_args if isinstance(getattr(logger, "init_args", None), Namespace) else None
        if args is None:
            continue
        if "name" in args and args.name in (None, "lightning_logs"):
            args.name = name
        if logger.class_path.endswith("WandbLogger"):
            if _get(args, "group") is None:  # wandb.init's own arguments are resolved into init_args
                args.group = parts["dataset"]
            args.tags = list(dict.fromkeys([*(_get(args, "tags") or []), *tags]))
            if _get(args, "job_type") is None:
                args.job_type = subcommand or "run"
