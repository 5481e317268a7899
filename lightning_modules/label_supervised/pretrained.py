"""Save a trained model to a folder that `from_pretrained` loads: ours, peft's, or (merged) transformers' own.

    module.save_pretrained("exported/", tokenizer="meta-llama/Llama-2-7b-hf")            # adapter + head
    module.save_pretrained("exported/", tokenizer=..., merge=True)                        # LoRA merged
    LabelSupervisedModule.from_pretrained("exported/")
    python -m app.export --ckpt_path best.ckpt --output_dir exported/ [--merge]          # + model card

Every folder holds `head.safetensors` (the whole head: the linear layer and a pooling's weights), `ls_llama.json`
(format, task, label names, mask, pooling, backbone source: what `from_pretrained` needs) and, when given, the
tokenizer. Formats:

- `adapter` (LoRA, default): peft's `adapter_config.json` + `adapter_model.safetensors`; the base backbone is
  read from its source (hub name, folder, `.gguf`, or rebuilt from its config and seed) at load time.
  `head` (head-only finetuning): just the head.
- `hf` (`merge=True`, or a fully finetuned backbone, where a stock transformers class computes what our model does):
  `AutoModelForSequenceClassification` for a decoder with last-token pooling (causal, or bidirectional through
  `is_causal: false` in config.json; `score` = our head), `AutoModelForTokenClassification` for token tasks with the
  causal or bidirectional mask, or an encoder. `id2label`/`label2id`/`pad_token_id` are set.
- `remote_code` (`merge=True` or full finetuning otherwise: mean/max/first/logit-max/attention pooling,
  `BidirectionalFromLayer`, encoders' sequence classification): config.json of our `LSLlamaConfig` with `auto_map`,
  `model.safetensors` and the code that computes it (`modeling_ls_llama.py` + `ls_llama_portable.py`, copied from this
  package), which `AutoModelFor*Classification.from_pretrained(folder, trust_remote_code=True)` and
  `pipeline(..., trust_remote_code=True)` load. Positions are counted over real tokens, as ours.
- `merged` (a pooling or mask of your own, which the shipped code cannot express; also older exports): the merged
  backbone (`backbone/`, `save_pretrained`) + the head, loaded by `from_pretrained` here only.

Which class computes which model, and why: `label_supervised.transformers_export`. A damaged folder (a file of its
format missing, a head of another shape) fails to load with one line naming the folder and what it should hold.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel, load_peft_weights, set_peft_model_state_dict
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.initialization import no_init_weights

from core.hub import load_tokenizer
from lightning_modules.label_supervised.head import upgrade_head_keys
from lightning_modules.label_supervised.transformers_export import (
    REMOTE_CODE_FILES,
    save_remote_code,
    save_stock_classifier,
    transformers_format,
)

log = logging.getLogger(__name__)

CONFIG_FILE = "ls_llama.json"
HEAD_FILE = "head.safetensors"
NOT_EXPORTED = ("optimizer", "scheduler", "warmup_ratio", "_instantiator", "_class_path", "tokenizer")
WEIGHTS, WEIGHTS_INDEX = "model.safetensors", "model.safetensors.index.json"
# what a folder of each format holds besides ls_llama.json and head.safetensors (weights: WEIGHTS or WEIGHTS_INDEX)
FORMAT_FILES = {
    "adapter": ("adapter_config.json", "adapter_model.safetensors"),
    "head": (),
    "hf": ("config.json", WEIGHTS),
    "remote_code": ("config.json", WEIGHTS, *REMOTE_CODE_FILES),
    "merged": ("backbone/config.json", f"backbone/{WEIGHTS}"),
}
BACKBONE_PREFIX = "backbone."  # the backbone's weights in a remote_code folder (LSLlamaPreTrainedModel)


def save_folder(
    module: nn.Module,
    output_dir: str | Path,
    tokenizer: str | PreTrainedTokenizerBase | None = None,
    merge: bool = False,
    in_place: bool = False,
) -> Path:
    """Write `module` (a `LabelSupervisedModule`) to `output_dir` (formats: the module docstring); returns it.

    Args:
        module: the trained model.
        output_dir: the folder (created; existing files of the same names are replaced).
        tokenizer: the tokenizer (object or source) to save beside the weights; None = none.
        merge: merge LoRA into the backbone and write a transformers folder (stock class or shipped code).
        in_place: merge into `module`'s own backbone (saves the memory of a copy; `module` then holds plain
            merged weights); False merges a copy.
    """
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if module.finetuning == "lora" and not merge:
        save_adapter(module, folder)
        kind = "adapter"
    elif module.finetuning == "head" and not merge:
        kind = "head"
    else:
        backbone = merged_backbone(module, in_place)
        kind = transformers_format(module)
        if kind == "hf":
            save_stock_classifier(module, backbone, folder)
        elif kind == "remote_code":
            save_remote_code(module, backbone, folder)
        else:
            log.warning(
                "%s: the mask %r or pooling %r is your own, which neither transformers nor the shipped modeling code "
                "computes: wrote the merged backbone to backbone/ (LabelSupervisedModule.from_pretrained loads it; "
                "pipeline() cannot)",
                folder,
                module.mask,
                module.pooling,
            )
            backbone.save_pretrained(folder / "backbone")
    save_file({k: v.detach().contiguous().cpu() for k, v in module.head.state_dict().items()}, folder / HEAD_FILE)
    if tokenizer is not None:
        (load_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer).save_pretrained(folder)
    (folder / CONFIG_FILE).write_text(json.dumps(exported_config(module, kind), indent=2) + "\n")
    return folder


def save_adapter(module: nn.Module, folder: Path) -> None:
    """Write peft's `adapter_config.json` + `adapter_model.safetensors`. peft also writes README.md, a blank model-card
    template (`base_model: ''`, every field '[More Information Needed]'): it is dropped (a README that was there
    before is kept); `app.model_card` writes the card."""
    readme = folder / "README.md"
    before = readme.read_bytes() if readme.is_file() else None
    module.backbone.save_pretrained(folder)
    if before is None:
        readme.unlink(missing_ok=True)
    else:
        readme.write_bytes(before)


def merged_backbone(module: nn.Module, in_place: bool = False) -> PreTrainedModel:
    """The backbone with LoRA merged into its weights (a plain transformers model)."""
    backbone = module.backbone
    if not isinstance(backbone, PeftModel):
        return backbone
    return (backbone if in_place else copy.deepcopy(backbone)).merge_and_unload()


def exported_config(module: nn.Module, kind: str) -> dict[str, Any]:
    """The contents of `ls_llama.json`: the format, the model's arguments (without training-only ones) and, as
    `origin`, the backbone and finetuning it was trained with (a merged folder loads as its own frozen backbone)."""
    model = {k: v for k, v in dict(module.hparams).items() if k not in NOT_EXPORTED}
    origin = {key: model.get(key) for key in ("backbone", "backbone_config", "finetuning")}
    if kind in ("hf", "merged", "remote_code"):
        # the weights are in the folder: load them as a frozen backbone (pass finetuning= to train further)
        model.update(backbone=None, backbone_config=None, finetuning="head")
    backbone_folder = {"hf": ".", "merged": "backbone"}.get(kind)
    return {"format": kind, "backbone_folder": backbone_folder, "model": model, "origin": origin}


# ------------------------------------------------------------------------------------------------------ loading
def read_export_config(folder: Path) -> dict[str, Any]:
    """`ls_llama.json` of `folder`, checked: a known format and the files it needs present (one-line errors)."""
    config_file = folder / CONFIG_FILE
    if not config_file.is_file():
        what = "a folder" if folder.is_dir() else "no folder"
        raise FileNotFoundError(
            f"{config_file} not found ({folder} is {what}): a folder written by save_pretrained or "
            f"python -m app.export holds {CONFIG_FILE}, {HEAD_FILE} and its format's files"
        )
    try:
        config = json.loads(config_file.read_text())
        kind, _ = config["format"], config["model"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{config_file}: not an export config (JSON with 'format' and 'model'): {error}") from None
    if kind not in FORMAT_FILES:
        raise ValueError(f"{config_file}: unknown format {kind!r}, expected one of {sorted(FORMAT_FILES)}")
    expected = [CONFIG_FILE, HEAD_FILE, *FORMAT_FILES[kind]]
    missing = [name for name in expected if not _present(folder, name)]
    if missing:
        raise FileNotFoundError(
            f"{folder}: damaged {kind!r} export, {', '.join(missing)} missing (expected {', '.join(expected)})"
        )
    return config


def _present(folder: Path, name: str) -> bool:
    if Path(name).name == WEIGHTS:  # or sharded, as save_pretrained writes large models
        return (folder / name).is_file() or (folder / name).with_name(WEIGHTS_INDEX).is_file()
    return (folder / name).is_file()


def remote_code_backbone_config(folder: Path) -> dict[str, Any]:
    """The backbone's config stored in a `remote_code` folder's config.json (`LSLlamaConfig.backbone`)."""
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path}: not JSON ({error})") from None
    backbone = config.get("backbone")
    if config.get("model_type") != "ls_llama" or not isinstance(backbone, dict) or "model_type" not in backbone:
        raise ValueError(
            f"{path}: expected model_type 'ls_llama' with the backbone's config under 'backbone' (a dict with its "
            f"model_type), got model_type {config.get('model_type')!r}"
        )
    return backbone


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of `model.safetensors`, or of the shards its index lists."""
    index = folder / WEIGHTS_INDEX
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.is_file() else [WEIGHTS]
    state: dict[str, torch.Tensor] = {}
    for name in files:
        state.update(load_file(folder / name))
    return state


def load_backbone_weights(module: nn.Module, folder: Path) -> None:
    """Load a `remote_code` folder's backbone weights into `module.backbone` (plain, or wrapped by a fresh LoRA when
    `finetuning="lora"` is asked for: its base layers get them)."""
    weights = {k[len(BACKBONE_PREFIX) :]: v for k, v in read_weights(folder).items() if k.startswith(BACKBONE_PREFIX)}
    target = module.backbone.get_base_model() if isinstance(module.backbone, PeftModel) else module.backbone
    own = target.state_dict()
    renamed = {key if key in own else _base_layer_key(key): value for key, value in weights.items()}
    result = target.load_state_dict(renamed, strict=False)
    missing = [key for key in result.missing_keys if "lora_" not in key]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{folder / WEIGHTS}: the backbone's weights do not fit its config.json: {len(missing)} missing "
            f"(e.g. {missing[:3]}), {len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[:3]})"
        )


def _base_layer_key(key: str) -> str:
    """A plain weight name as peft names it inside a LoRA layer (`q_proj.weight` -> `q_proj.base_layer.weight`)."""
    module, _, name = key.rpartition(".")
    return f"{module}.base_layer.{name}"


def load_head(module: nn.Module, folder: Path) -> None:
    """Load `head.safetensors` into `module.head`; a head of other names or shapes fails with one line."""
    path = folder / HEAD_FILE
    state = upgrade_head_keys(load_file(path))  # 2026-11 exports named the linear layer's weights alone
    expected = {key: tuple(value.shape) for key, value in module.head.state_dict().items()}
    found = {key: tuple(value.shape) for key, value in state.items()}
    if found != expected:
        pooling = f", pooling {module.pooling.label}" if module.task == "sequence" else ""
        raise ValueError(
            f"{path}: the head holds {found}, but this model ({module.num_labels} labels, hidden size "
            f"{module.head.score.in_features}{pooling}) expects {expected}"
        )
    module.head.load_state_dict(state)


def load_folder(cls: type, folder: str | Path, **overrides: Any) -> nn.Module:
    """Rebuild a `cls` (`LabelSupervisedModule`) from a folder of `save_folder` (`overrides`: arguments to change)."""
    folder = Path(folder)
    config = read_export_config(folder)
    kind = config["format"]
    kwargs = dict(config["model"])
    kwargs.pop("tokenizer", None)  # written by older versions
    if kind == "remote_code":
        kwargs.update(backbone=None, backbone_config=remote_code_backbone_config(folder))
    elif config["backbone_folder"] is not None:
        kwargs["backbone"] = str(folder / config["backbone_folder"])
    arguments = {**kwargs, **overrides}
    if kind == "remote_code" and arguments.get("finetuning") != "lora":
        with no_init_weights():  # every weight is loaded below: skip the random initialisation (minutes for 7B)
            module = cls(**arguments)
        load_backbone_weights(module, folder)
    else:
        module = cls(**arguments)
        if kind == "remote_code":
            load_backbone_weights(module, folder)
    if kind == "adapter":
        result = set_peft_model_state_dict(module.backbone, load_peft_weights(str(folder), device="cpu"))
        if result.unexpected_keys:
            raise ValueError(f"{folder}: adapter weights the model does not have: {result.unexpected_keys[:3]}")
    load_head(module, folder)  # the whole head, pooling included
    return module.eval()


class PretrainedMixin:
    """HF-style `save_pretrained` / `from_pretrained` for `LabelSupervisedModule` (see the module docstring)."""

    def save_pretrained(
        self, folder: str | Path, tokenizer: str | PreTrainedTokenizerBase | None = None, merge: bool = False
    ) -> Path:
        """Write the model (and `tokenizer`, a source or object, when given) to `folder`; returns it.

        Args:
            folder: the output folder.
            tokenizer: the tokenizer to save beside the model (as HF folders hold theirs).
            merge: merge LoRA into the backbone (a transformers folder: a stock class, or the shipped code).
        """
        return save_folder(self, folder, tokenizer, merge=merge)

    @classmethod
    def from_pretrained(cls, folder: str | Path, **overrides: Any) -> Any:
        """Load a folder written by `save_pretrained` or `python -m app.export`.

        Args:
            folder: the saved folder.
            **overrides: model arguments to change (e.g. `dtype="bfloat16"`, `finetuning="lora"`).
        """
        return load_folder(cls, folder, **overrides)
