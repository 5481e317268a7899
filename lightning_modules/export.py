"""Export a trained model to a folder that `from_pretrained` loads: ours, peft's, or (merged) transformers' own.

    python -m lightning_modules.export --ckpt_path best.ckpt --output_dir exported/            # adapter + head
    python -m lightning_modules.export --ckpt_path best.ckpt --output_dir exported/ --merge    # LoRA merged

Every folder holds the tokenizer, `head.safetensors` (our `nn.Linear`) and `ls_llama.json` (format, task, label
names, mask, pooling, backbone source: what `LabelSupervisedModule.from_pretrained(folder)` needs). Formats:

- `adapter` (LoRA, default): peft's `adapter_config.json` + `adapter_model.safetensors`; the base backbone is
  read from its source (hub name, folder, `.gguf`, or rebuilt from its config and seed) at load time.
  `head` (head-only finetuning): just the head.
- `hf` (`--merge`, or a fully finetuned backbone, when a transformers class computes exactly what our model does):
  a standard `AutoModelForSequenceClassification` folder for a decoder with last-token pooling (causal, or
  bidirectional through `is_causal: false` in config.json; `score` = our head, no bias), or an
  `AutoModelForTokenClassification` folder for token tasks (any backbone). `id2label`/`label2id`/`pad_token_id`
  are set. Caveat: transformers' sequence classifier takes the last token that differs from `pad_token_id`, and
  both classes number positions 0..T-1, so their logits equal ours for right-padded (or unpadded) inputs; with
  left padding ours, which count positions over real tokens, differ.
- `merged` (`--merge` otherwise: mean/max/first pooling, `BidirectionalFromLayer`): the merged backbone
  (`backbone/`, `save_pretrained`) + the head, loaded by `LabelSupervisedModule.from_pretrained`.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

from peft import PeftModel, load_peft_weights, set_peft_model_state_dict
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, PreTrainedModel

from lightning_modules.attention_masks import BidirectionalMask, CausalMask
from lightning_modules.hub import load_tokenizer
from lightning_modules.label_supervised import LabelSupervisedModule
from lightning_modules.pooling import LastTokenPooling

CONFIG_FILE = "ls_llama.json"
HEAD_FILE = "head.safetensors"
NOT_EXPORTED = ("optimizer", "scheduler", "warmup_ratio", "_instantiator", "_class_path")
HF_HEADS = ("score", "classifier")  # transformers' names of the classification layer


def export(module: LabelSupervisedModule, output_dir: str | Path, merge: bool = False, in_place: bool = False) -> Path:
    """Write `module` to `output_dir` (see the module docstring for the formats) and return the folder.

    Args:
        module: the trained model.
        output_dir: the folder (created; existing files of the same names are replaced).
        merge: merge LoRA into the backbone and write a standard transformers folder where one reproduces the model.
        in_place: merge into `module`'s own backbone (saves the memory of a copy; `module` then holds plain
            merged weights); False merges a copy.
    """
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    finetuning = module.hparams.finetuning
    if finetuning == "lora" and not merge:
        module.backbone.save_pretrained(folder)  # adapter_config.json + adapter_model.safetensors
        kind = "adapter"
    elif finetuning == "head" and not merge:
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
    if module.hparams.tokenizer is not None:
        load_tokenizer(module.hparams.tokenizer).save_pretrained(folder)
    (folder / CONFIG_FILE).write_text(json.dumps(exported_config(module, kind), indent=2) + "\n")
    return folder


def merged_backbone(module: LabelSupervisedModule, in_place: bool = False) -> PreTrainedModel:
    """The backbone with LoRA merged into its weights (a plain transformers model)."""
    backbone = module.backbone
    if not isinstance(backbone, PeftModel):
        return backbone
    return (backbone if in_place else copy.deepcopy(backbone)).merge_and_unload()


def hf_class_for(module: LabelSupervisedModule) -> type | None:
    """The transformers auto class that computes exactly our logits, or None."""
    if not isinstance(module.mask, (CausalMask, BidirectionalMask)):
        return None  # BidirectionalFromLayer: hooks that transformers cannot express
    if module.task == "token":
        return AutoModelForTokenClassification
    if isinstance(module.pooling, LastTokenPooling) and not module.is_encoder:
        return AutoModelForSequenceClassification
    return None  # BERT's sequence classifier adds a pooler layer; mean/max pooling has no transformers class


def save_hf_classifier(module: LabelSupervisedModule, backbone: PreTrainedModel, hf_class: type, folder: Path) -> None:
    """Write a transformers `*ForSequenceClassification` / `*ForTokenClassification` folder with our weights."""
    config = copy.deepcopy(backbone.config)
    config.num_labels = module.hparams.num_labels
    config.id2label = dict(enumerate(module.label_names))
    config.label2id = {name: i for i, name in enumerate(module.label_names)}
    config.pad_token_id = module.hparams.pad_token_id
    config.use_cache = False
    model = hf_class.from_config(config, dtype=backbone.dtype)
    getattr(model, model.base_model_prefix).load_state_dict(backbone.state_dict())
    head = next((getattr(model, name) for name in HF_HEADS if hasattr(model, name)), None)
    same_shape = head is not None and head.weight.shape == module.head.weight.shape
    if not same_shape or (head.bias is None) != (module.head.bias is None):
        raise ValueError(f"{type(model).__name__} has no classification layer shaped like ours ({module.head})")
    head.load_state_dict(module.head.state_dict())
    model.save_pretrained(folder)


def exported_config(module: LabelSupervisedModule, kind: str) -> dict[str, Any]:
    """The contents of `ls_llama.json`: the format and the model's arguments (without training-only ones)."""
    model = {k: v for k, v in dict(module.hparams).items() if k not in NOT_EXPORTED}
    model["tokenizer"] = None  # the folder's own copy
    if kind in ("hf", "merged"):
        # the weights are in the folder: load them as a frozen backbone (pass finetuning= to train further)
        model.update(backbone=None, backbone_config=None, finetuning="head")
    return {"format": kind, "backbone_folder": {"hf": ".", "merged": "backbone"}.get(kind), "model": model}


def load_exported(folder: str | Path, **overrides: Any) -> LabelSupervisedModule:
    """Rebuild a `LabelSupervisedModule` from an exported folder (`overrides`: model arguments to change)."""
    folder = Path(folder)
    config_file = folder / CONFIG_FILE
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} not found: is {folder} a folder written by lightning_modules.export?")
    config = json.loads(config_file.read_text())
    kwargs = dict(config["model"])
    has_tokenizer = (folder / "tokenizer_config.json").is_file()
    kwargs["tokenizer"] = str(folder) if has_tokenizer else kwargs.get("tokenizer")
    if config["backbone_folder"] is not None:
        kwargs["backbone"] = str(folder / config["backbone_folder"])
    module = LabelSupervisedModule(**{**kwargs, **overrides})
    if config["format"] == "adapter":
        result = set_peft_model_state_dict(module.backbone, load_peft_weights(str(folder), device="cpu"))
        if result.unexpected_keys:
            raise ValueError(f"{folder}: adapter weights the model does not have: {result.unexpected_keys[:3]}")
    module.head.load_state_dict(load_file(folder / HEAD_FILE))
    return module.eval()


def export_checkpoint(ckpt_path: str | Path, output_dir: str | Path, merge: bool = False) -> Path:
    """Export a Lightning checkpoint of a `LabelSupervisedModule` (see `export`)."""
    module = LabelSupervisedModule.load_from_checkpoint(ckpt_path, map_location="cpu")
    return export(module, output_dir, merge=merge, in_place=True)


def main(argv: list[str] | None = None) -> Path:
    """`python -m lightning_modules.export --ckpt_path X --output_dir Y [--merge]`."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt_path", required=True, help="Lightning checkpoint of a LabelSupervisedModule")
    parser.add_argument("--output_dir", required=True, help="folder to write")
    parser.add_argument("--merge", action="store_true", help="merge LoRA into the backbone (standard HF folder)")
    args = parser.parse_args(argv)
    folder = export_checkpoint(args.ckpt_path, args.output_dir, merge=args.merge)
    print(f"exported {args.ckpt_path} as {json.loads((folder / CONFIG_FILE).read_text())['format']!r} to {folder}")
    return folder


if __name__ == "__main__":
    main()
