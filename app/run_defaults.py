"""What the CLI decides before building anything, so that `--print_config` shows what a run really uses.

- `data.tokenizer` left out: the backbone's own (`model.backbone`). This is the only value that crosses from the
  model's config to the data's; the data module then hands the model ids only (labels, pad id, vocabulary size).
- `model.mask` / `model.pooling` left out: the backbone's defaults, decided by `lightning_modules.backbone.builders`
  (`default_mask`, `default_pooling`) from its transformers config, written into the config as class paths.
- `trainer.precision` left out: `bf16-mixed` on a bf16-capable GPU, `32-true` elsewhere.
- Loggers: runs are named `<dataset>-<backbone>-<mask>-<pooling>` (e.g. `sst2-Llama-2-7b-hf-bidirectional-max`;
  `<dataset>-<backbone>-<method>` for methods without a mask strategy, e.g. zero-shot),
  tagged with each part (`dataset:sst2`, `mask:bidirectional`, ...) and grouped by dataset, so a W&B dashboard
  compares BERT vs LS-LLaMA vs LS-unLLaMA by filtering. Explicit settings in a config always win.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from jsonargparse import Namespace

from core.class_paths import from_spec, import_class, to_spec
from core.hub import load_config
from lightning_modules.backbone.builders import default_mask
from lightning_modules.backbone.masks import MASKS, AttentionMaskStrategy
from lightning_modules.label_supervised.pooling import POOLINGS, Pooling, default_pooling

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


def model_args(config: Namespace) -> Namespace:
    """The model's arguments: `model.init_args` (a `class_path` is always set, see main.DEFAULT_MODEL)."""
    model = config.model
    return model.init_args if isinstance(get(model, "init_args"), Namespace) else model


def model_class(config: Namespace) -> type | None:
    """The configured model class, or None when it cannot be imported."""
    try:
        return import_class(get(config, "model.class_path", "lightning_modules.LabelSupervisedModule"), "model")
    except ValueError:
        return None


@lru_cache(maxsize=8)
def _backbone_config(source: str | None, overrides: str) -> Any:
    return load_config(source, json.loads(overrides))


def backbone_config(config: Namespace) -> Any:
    """The backbone's transformers config (read once per process; a GGUF file's header takes seconds)."""
    args = model_args(config)
    overrides = get(args, "backbone_config") or {}
    return _backbone_config(get(args, "backbone"), json.dumps(dict(overrides), sort_keys=True, default=str))


def fill_components(config: Namespace) -> None:
    """Write the default mask and pooling of the backbone into `model.mask` / `model.pooling` where left out
    (for model classes that take them)."""
    args, cls = model_args(config), model_class(config)
    keys = [k for k in ("mask", "pooling") if cls is not None and k in inspect.signature(cls).parameters]
    missing = [k for k in keys if get(args, k) is None]
    if not missing:
        return
    defaults = {"mask": default_mask, "pooling": default_pooling}
    for key in missing:
        setattr(args, key, Namespace(to_spec(defaults[key](backbone_config(config)))))


def component_label(spec: Any, base: type, registry: dict[str, type], field: str) -> str | None:
    """The `label` a mask or pooling spec gives itself (`causal`, `max`, `bidir@15`; `core.registry.Component`),
    built from the spec as the model will build it; None for no spec."""
    if spec is None:
        return None
    spec = spec.as_dict() if isinstance(spec, Namespace) else spec
    return from_spec(spec, base, field, registry).label


def method_of(config: Namespace) -> str:
    """The method the config declares: the model's `method` argument (set by the method overlays,
    configs/method/*.yaml: `ls_llama`, `ls_unllama`, `finetune`), else its class's `method` (`zero_shot`,
    `instruction_tuning`, `mntp`), else the class name."""
    declared = get(model_args(config), "method")
    if isinstance(declared, str):
        return declared
    cls = model_class(config)
    method = getattr(cls, "method", None)
    return method if isinstance(method, str) else (cls.__name__ if cls is not None else "unknown")


def run_descriptor(config: Namespace) -> dict[str, str]:
    """Dataset, backbone, method, mask, pooling, task and finetuning of a parsed config (components filled in)."""
    args = model_args(config)
    task = _class_attr(get(config, "data"), "task", "sequence")
    mask = component_label(get(args, "mask"), AttentionMaskStrategy, MASKS, "model.mask")
    pooling = component_label(get(args, "pooling"), Pooling, POOLINGS, "model.pooling")
    return {
        "dataset": _class_attr(get(config, "data"), "name", "data"),
        "backbone": backbone_label(args),
        "method": method_of(config),
        "mask": mask or "none",
        "pooling": "tokens" if task == "token" else pooling or "none",
        "task": task,
        "finetuning": str(get(args, "finetuning", "none")),
    }


def _loggers(trainer: Namespace) -> list[Namespace]:
    loggers = get(trainer, "logger")
    if isinstance(loggers, Namespace):
        return [loggers]
    return [item for item in loggers if isinstance(item, Namespace)] if isinstance(loggers, list) else []


def name_loggers(config: Namespace, subcommand: str | None) -> None:
    """Name, group and tag the loggers' runs after `run_descriptor` (settings given in a config win)."""
    parts = run_descriptor(config)
    if parts["mask"] == "none":  # a method without mask/pooling (zero-shot, instruction tuning): name it instead
        name = "-".join(parts[k] for k in ("dataset", "backbone", "method"))
    else:
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
            if get(args, "job_type") is None and get(args, "id") is None:  # with an id: the run of an earlier stage
                args.job_type = subcommand or "run"


def fill_run_defaults(config: Namespace, subcommand: str | None) -> None:
    """Fill the tokenizer, mask/pooling and precision defaults, and name/group/tag the loggers' runs."""
    data_args = get(config, "data.init_args")
    backbone = get(model_args(config), "backbone")
    if data_args is not None and get(data_args, "tokenizer") is None and backbone:
        data_args.tokenizer = backbone
    fill_components(config)
    if get(config, "trainer.precision") is None:
        use_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        config.trainer.precision = "bf16-mixed" if use_bf16 else "32-true"
        log.info(
            "trainer.precision not set: using %s (%s)",
            config.trainer.precision,
            "GPU with bf16" if use_bf16 else "no bf16-capable GPU",
        )
    name_loggers(config, subcommand)
