"""Merged exports as transformers folders: a stock class where one computes what our model does, else our own
classes shipped in the folder (`modeling_ls_llama.py` + `ls_llama_portable.py`, named in config.json's `auto_map`,
loaded with `trust_remote_code=True`). `label_supervised.pretrained` decides when to write them and loads them back.

Which folder a model gets (`transformers_format`):

- `hf`: the stock `AutoModelForSequenceClassification` for a decoder with last-token pooling (causal, or
  bidirectional through `is_causal: false` in config.json), `AutoModelForTokenClassification` for token tasks with the
  causal or bidirectional mask or an encoder. Stock classes number positions 0..T-1 where ours count real tokens:
  the same logits with rotary positions (every decoder family here), whichever side pads; the sequence classifier
  finds the last real token by comparing with `pad_token_id` (we never append eos, so eos-as-pad is safe).
- `remote_code`: everything else our components express (`LSLlamaForSequenceClassification` /
  `LSLlamaForTokenClassification`): mean/max/first/logit-max/attention pooling, `BidirectionalFromLayer`, encoders'
  sequence classification (BERT's stock classifier adds a pooler layer we never train).
- `merged`: a pooling or mask of your own, which the shipped code cannot express: the merged backbone (`backbone/`)
  and the head, loaded by `LabelSupervisedModule.from_pretrained` only.
"""

from __future__ import annotations

import copy
import logging
import shutil
from pathlib import Path
from typing import Any

from huggingface_hub import save_torch_state_dict
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, PreTrainedModel

from lightning_modules.backbone.masks import BidirectionalFromLayer, BidirectionalMask, CausalMask
from lightning_modules.label_supervised.ls_llama_portable import POOLS
from lightning_modules.label_supervised.modeling_ls_llama import (
    LSLlamaConfig,
    LSLlamaForSequenceClassification,
    LSLlamaForTokenClassification,
)
from lightning_modules.label_supervised.pooling import POOLINGS, LastTokenPooling

log = logging.getLogger(__name__)

HF_HEADS = ("score", "classifier")  # transformers' names of the classification layer
MODELING_FILE = "modeling_ls_llama.py"
REMOTE_CODE_FILES = (MODELING_FILE, "ls_llama_portable.py")  # copied verbatim from this package
REMOTE_CLASSES = {"sequence": LSLlamaForSequenceClassification, "token": LSLlamaForTokenClassification}
AUTO_CLASSES = {"sequence": "AutoModelForSequenceClassification", "token": "AutoModelForTokenClassification"}
# backbone config keys that describe a saved file or a loading step, not the architecture
VOLATILE_CONFIG_KEYS = ("_name_or_path", "architectures", "transformers_version", "quantization_config", "auto_map")


def mask_settings(mask: Any) -> dict[str, Any] | None:
    """`LSLlamaConfig`'s `mask` (and `first_bidirectional_layer`) for a mask strategy, or None when the shipped
    code cannot express it (a strategy of your own; a subclass of ours that keeps our `apply` is fine)."""
    for ours, name in ((CausalMask, "causal"), (BidirectionalMask, "bidirectional")):
        if isinstance(mask, ours) and type(mask).apply is ours.apply:
            return {"mask": name, "first_bidirectional_layer": None}
    if isinstance(mask, BidirectionalFromLayer) and type(mask).apply is BidirectionalFromLayer.apply:
        return {"mask": "bidir_from", "first_bidirectional_layer": mask.layer}
    return None


def pooling_name(module: nn.Module) -> str | None:
    """The portable name of the head's pooling (`ls_llama_portable.POOLS`), `last` for token tasks (unused there),
    or None for a pooling of your own."""
    if module.task == "token":
        return "last"
    pooling = module.pooling
    is_builtin = pooling.name in POOLS and POOLINGS.get(pooling.name) is type(pooling)
    return pooling.name if is_builtin else None


def stock_class(module: nn.Module) -> type | None:
    """The transformers auto class that computes exactly our logits, or None."""
    mask = mask_settings(module.mask)
    if mask is None or mask["mask"] == "bidir_from":
        return None  # BidirectionalFromLayer: hooks that transformers cannot express
    if module.task == "token":
        return AutoModelForTokenClassification
    if type(module.pooling) is LastTokenPooling and not module.is_encoder:
        return AutoModelForSequenceClassification
    return None  # BERT's sequence classifier adds a pooler layer; mean/max pooling has no transformers class


def transformers_format(module: nn.Module) -> str:
    """`hf` (a stock class), `remote_code` (our shipped classes) or `merged` (our loader only): see the docstring."""
    if stock_class(module) is not None:
        return "hf"
    if mask_settings(module.mask) is not None and pooling_name(module) is not None:
        return "remote_code"
    return "merged"


def label_config(module: nn.Module) -> dict[str, Any]:
    """The label names and pad id as transformers configs hold them."""
    return {
        "id2label": dict(enumerate(module.label_names)),
        "label2id": {name: i for i, name in enumerate(module.label_names)},
        "pad_token_id": module.pad_token_id,
    }


def save_stock_classifier(module: nn.Module, backbone: PreTrainedModel, folder: Path) -> None:
    """Write a transformers `*ForSequenceClassification` / `*ForTokenClassification` folder with our weights."""
    hf_class = stock_class(module)
    config = copy.deepcopy(backbone.config)
    config.num_labels = module.num_labels
    for key, value in label_config(module).items():
        setattr(config, key, value)
    config.use_cache = False
    model = hf_class.from_config(config, dtype=backbone.dtype)
    getattr(model, model.base_model_prefix).load_state_dict(backbone.state_dict())
    head, ours = next((getattr(model, name) for name in HF_HEADS if hasattr(model, name)), None), module.head.score
    same_shape = head is not None and head.weight.shape == ours.weight.shape
    if not same_shape or (head.bias is None) != (ours.bias is None):
        raise ValueError(f"{type(model).__name__} has no classification layer shaped like ours ({ours})")
    head.load_state_dict(ours.state_dict())
    model.save_pretrained(folder)


def backbone_config_dict(backbone: PreTrainedModel) -> dict[str, Any]:
    """The backbone's whole transformers config as a dict (`model_type` included, `is_causal` as applied), without
    what describes a file rather than the architecture."""
    config = backbone.config.to_dict()
    for key in VOLATILE_CONFIG_KEYS:
        config.pop(key, None)
    return config


def remote_code_config(module: nn.Module, backbone: PreTrainedModel) -> LSLlamaConfig:
    """The `LSLlamaConfig` of a model (see `modeling_ls_llama`), with `auto_map` pointing at the shipped classes."""
    mask = mask_settings(module.mask)
    pooling = pooling_name(module)
    if mask is None or pooling is None:
        raise ValueError(
            f"the mask {module.mask!r} or pooling {module.pooling!r} is your own: the shipped modeling code "
            f"cannot express it (portable masks: causal, bidirectional, bidir_from; poolings: {sorted(POOLS)})"
        )
    model_class = REMOTE_CLASSES[module.task]
    config = LSLlamaConfig(
        backbone=backbone_config_dict(backbone),
        task=module.task,
        pooling=pooling,
        decoder=not module.is_encoder,
        head_dropout=module.head.dropout.p,
        backbone_attn_implementation=module.hparams.get("attn_implementation"),
        **mask,
        **label_config(module),
    )
    config.architectures = [model_class.__name__]
    config.auto_map = {
        "AutoConfig": f"{Path(MODELING_FILE).stem}.{LSLlamaConfig.__name__}",
        AUTO_CLASSES[module.task]: f"{Path(MODELING_FILE).stem}.{model_class.__name__}",
    }
    config.dtype = backbone.dtype
    return config


def save_remote_code(module: nn.Module, backbone: PreTrainedModel, folder: Path) -> None:
    """Write config.json (`LSLlamaConfig`), the weights as `LSLlamaFor*Classification` names them (`backbone.*` and
    the head's `score.*`, `pooling.*`; sharded like `save_pretrained` when large) and the two code files."""
    remote_code_config(module, backbone).save_pretrained(folder)
    state = {f"{LSLlamaForSequenceClassification.base_model_prefix}.{k}": v for k, v in backbone.state_dict().items()}
    head = module.head.state_dict()  # a token task's unbuilt pooling has no weights; its layer is `score`
    state.update({key: value for key, value in head.items() if module.task == "sequence" or key.startswith("score.")})
    state = {key: value.detach().cpu() for key, value in state.items()}
    save_torch_state_dict(state, folder, metadata={"format": "pt"})
    for name in REMOTE_CODE_FILES:
        shutil.copyfile(Path(__file__).with_name(name), folder / name)
