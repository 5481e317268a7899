"""Save a trained model to a folder that `from_pretrained` loads: ours, peft's, or (merged) transformers' own.

    module.save_pretrained("exported/", tokenizer="meta-llama/Llama-2-7b-hf")            # adapter + head
    module.save_pretrained("exported/", tokenizer=..., merge=True)                        # LoRA merged
    LabelSupervisedModule.from_pretrained("exported/")
    python -m app.export --ckpt_path best.ckpt --output_dir exported/ [--merge]          # from a checkpoint

Every folder holds `head.safetensors` (the whole head: the linear layer and a pooling's weights), `ls_llama.json`
(format, task, label names, mask, pooling, backbone source: what `from_pretrained` needs) and, when given, the
tokenizer. Formats:

- `adapter` (LoRA, default): peft's `adapter_config.json` + `adapter_model.safetensors`; the base backbone is
  read from its source (hub name, folder, `.gguf`, or rebuilt from its config and seed) at load time.
  `head` (head-only finetuning): just the head.
- `hf` (`merge=True`, or a fully finetuned backbone, when a transformers class computes exactly what our model does):
  a standard `AutoModelForSequenceClassification` folder for a decoder with last-token pooling (causal, or
  bidirectional through `is_causal: false` in config.json; `score` = our head, no bias), or an
  `AutoModelForTokenClassification` folder for token tasks (any backbone). `id2label`/`label2id`/`pad_token_id`
  are set. Caveat: transformers' sequence classifier takes the last token that differs from `pad_token_id`, and
  both classes number positions 0..T-1, so their logits equal ours for right-padded (or unpadded) inputs; with
  left padding ours, which count positions over real tokens, differ.
- `merged` (`merge=True` otherwise: mean/max/first pooling, `BidirectionalFromLayer`): the merged backbone
  (`backbone/`, `save_pretrained`) + the head, loaded by `from_pretrained`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from peft import PeftModel, load_peft_weights, set_peft_model_state_dict
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from core.hub import load_tokenizer
from lightning_modules.backbone.masks import BidirectionalMask, CausalMask
from lightning_modules.label_supervised.head import upgrade_head_keys
from lightning_modules.label_supervised.pooling import LastTokenPooling

CONFIG_FILE = "ls_llama.json"
HEAD_FILE = "head.safetensors"
NOT_EXPORTED = ("optimizer", "scheduler", "warmup_ratio", "_instantiator", "_class_path", "tokenizer")
HF_HEADS = ("score", "classifier")  # transformers' names of the classification layer


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
        merge: merge LoRA into the backbone and write a standard transformers folder where one reproduces the model.
        in_place: merge into `module`'s own backbone (saves the memory of a copy; `module` then holds plain
            merged weights); False merges a copy.
    """
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if module.finetuning == "lora" and not merge:
        module.backbone.save_pretrained(folder)  # adapter_config.json + adapter_model.safetensors
        kind = "adapter"
    elif module.finetuning == "head" and not merge:
        kind = "head"
    else:
        backbone = merged_backbone(module, in_place)
        hf_class = hf_class_for(module)
        kind = "hf" if hf_class is not None else "merged"
        if hf_class is not None:
            save_hf_classifier(module, backbone, hf_class, folder)
        else:
            backbone.save_pretrained(folder / "backbone")
    save_file({k: v.detach().contiguous().cpu() for k, v in module.head.state_dict().items()}, folder / HEAD_FILE)
    if tokenizer is not None:
        (load_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer).save_pretrained(folder)
    (folder / CONFIG_FILE).write_text(json.dumps(exported_config(module, kind), indent=2) + "\n")
    return folder


def merged_backbone(module: nn.Module, in_place: bool = False) -> PreTrainedModel:
    """The backbone with LoRA merged into its weights (a plain transformers model)."""
    backbone = module.backbone
    if not isinstance(backbone, PeftModel):
        return backbone
    return (backbone if in_place else copy.deepcopy(backbone)).merge_and_unload()


def hf_class_for(module: nn.Module) -> type | None:
    """The transformers auto class that computes exactly our logits, or None."""
    if not isinstance(module.mask, (CausalMask, BidirectionalMask)):
        return None  # BidirectionalFromLayer: hooks that transformers cannot express
    if module.task == "token":
        return AutoModelForTokenClassification
    if isinstance(module.pooling, LastTokenPooling) and not module.is_encoder:
        return AutoModelForSequenceClassification
    return None  # BERT's sequence classifier adds a pooler layer; mean/max pooling has no transformers class


def save_hf_classifier(module: nn.Module, backbone: PreTrainedModel, hf_class: type, folder: Path) -> None:
    """Write a transformers `*ForSequenceClassification` / `*ForTokenClassification` folder with our weights."""
    config = copy.deepcopy(backbone.config)
    config.num_labels = module.num_labels
    config.id2label = dict(enumerate(module.label_names))
    config.label2id = {name: i for i, name in enumerate(module.label_names)}
    config.pad_token_id = module.pad_token_id
    config.use_cache = False
    model = hf_class.from_config(config, dtype=backbone.dtype)
    getattr(model, model.base_model_prefix).load_state_dict(backbone.state_dict())
    head, ours = next((getattr(model, name) for name in HF_HEADS if hasattr(model, name)), None), module.head.score
    same_shape = head is not None and head.weight.shape == ours.weight.shape
    if not same_shape or (head.bias is None) != (ours.bias is None):
        raise ValueError(f"{type(model).__name__} has no classification layer shaped like ours ({ours})")
    head.load_state_dict(ours.state_dict())
    model.save_pretrained(folder)


def exported_config(module: nn.Module, kind: str) -> dict[str, Any]:
    """The contents of `ls_llama.json`: the format and the model's arguments (without training-only ones)."""
    model = {k: v for k, v in dict(module.hparams).items() if k not in NOT_EXPORTED}
    if kind in ("hf", "merged"):
        # the weights are in the folder: load them as a frozen backbone (pass finetuning= to train further)
        model.update(backbone=None, backbone_config=None, finetuning="head")
    return {"format": kind, "backbone_folder": {"hf": ".", "merged": "backbone"}.get(kind), "model": model}


def load_folder(cls: type, folder: str | Path, **overrides: Any) -> nn.Module:
    """Rebuild a `cls` (`LabelSupervisedModule`) from a folder of `save_folder` (`overrides`: arguments to change)."""
    folder = Path(folder)
    config_file = folder / CONFIG_FILE
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} not found: is {folder} a folder written by save_pretrained?")
    config = json.loads(config_file.read_text())
    kwargs = dict(config["model"])
    kwargs.pop("tokenizer", None)  # written by older versions
    if config["backbone_folder"] is not None:
        kwargs["backbone"] = str(folder / config["backbone_folder"])
    module = cls(**{**kwargs, **overrides})
    if config["format"] == "adapter":
        result = set_peft_model_state_dict(module.backbone, load_peft_weights(str(folder), device="cpu"))
        if result.unexpected_keys:
            raise ValueError(f"{folder}: adapter weights the model does not have: {result.unexpected_keys[:3]}")
    module.head.load_state_dict(upgrade_head_keys(load_file(folder / HEAD_FILE)))  # the whole head, pooling included
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
            merge: merge LoRA into the backbone (a standard transformers folder where one reproduces the model).
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
