"""Builders of the backbone, plain functions with explicit arguments (the modules call them once in `__init__`):
the backbone, its finetuning (LoRA, full, head-only), the default mask of a backbone, and the merge of an earlier
stage's LoRA adapter into a backbone (`merge_adapter`, e.g. after the MNTP adaptation).

The default mask is decided here and only here: `default_mask(config)` reads the backbone's transformers config (an
encoder such as BERT: its own bidirectional attention; a decoder: causal). The CLI calls it at parse time, so run
names and `--print_config` show what the model will use (the default pooling: `label_supervised.pooling`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

import torch
from peft import LoraConfig, PeftModel, get_peft_model, load_peft_weights, set_peft_model_state_dict
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from core.hub import DTYPES, load_backbone
from lightning_modules.backbone.masks import AttentionMaskStrategy, BidirectionalMask, CausalMask, is_encoder_config
from lightning_modules.backbone.quantization import (
    Quantization,
    bnb_config,
    prepare_for_kbit_training,
    quantized_device_map,
)

log = logging.getLogger(__name__)

Finetuning = Literal["lora", "full", "head"]


def build_backbone(
    source: str | None,
    config: dict[str, Any] | None = None,
    *,
    pad_token_id: int | None = None,
    vocab_size: int | None = None,
    gradient_checkpointing: bool = False,
    quantization: Quantization | None = None,
    **load: Any,
) -> PreTrainedModel:
    """The bare transformer (no LM or classification head), ready to be wrapped by a head; with
    `auto_class=AutoModelForCausalLM` the decoder with its language-model head (prompting, instruction tuning, MNTP).

    Args:
        source: hub name, folder, `.gguf` file or `pkg://package/file`; None = a random backbone from `config`.
        config: attributes overriding the loaded config, or (without `source`) the whole config with `model_type`.
        pad_token_id: the tokenizer's pad id, written to the config (and sizing nothing).
        vocab_size: the tokenizer's vocabulary size: sizes a random backbone; checked against a pretrained one.
        gradient_checkpointing: recompute activations in the backward pass to save memory.
        quantization: `nf4`, `fp4` or `int8` to load the backbone's linear layers in k-bit (QLoRA,
            `lightning_modules.backbone.quantization`), prepared for k-bit training; None = not quantized.
        **load: `core.hub.load_backbone`'s arguments: `dtype` (`float32`, `bfloat16`, `float16`, `auto`),
            `attn_implementation`, `seed` (of a random backbone's initialisation), `auto_class` (`AutoModel`).
    """
    config = dict(config or {})
    if source is None:
        if vocab_size:
            config["vocab_size"] = vocab_size
        if pad_token_id is not None:
            config["pad_token_id"] = pad_token_id
    if quantization is not None:
        compute_dtype = DTYPES.get(load.get("dtype", "float32"), torch.float32)
        load.update(quantization_config=bnb_config(quantization, compute_dtype), device_map=quantized_device_map())
    model = load_backbone(source, config=config, **load)
    embeddings = model.get_input_embeddings().num_embeddings
    if vocab_size and vocab_size > embeddings:
        raise ValueError(f"the tokenizer has {vocab_size} tokens but the backbone {source!r} embeds only {embeddings}")
    if pad_token_id is not None:
        model.config.pad_token_id = pad_token_id
    if getattr(model, "pooler", None) is not None:
        model.pooler = None  # BERT's NSP pooler: unused by our poolings, and untrained weights under DDP
    if quantization is not None:  # frozen, the rest in float32, input gradients for checkpointing
        model = prepare_for_kbit_training(model, gradient_checkpointing)
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    return model


def apply_lora(
    backbone: PreTrainedModel, r: int, alpha: int, dropout: float, target_modules: list[str] | None = None
) -> PeftModel:
    """Wrap `backbone` with LoRA adapters (peft); only the adapters train.

    Args:
        backbone: the loaded backbone.
        r: LoRA rank (paper: 12).
        alpha: LoRA scaling alpha (paper: 32).
        dropout: dropout on the LoRA input (paper: 0.1).
        target_modules: module names to adapt; None = peft's default for the architecture (`q_proj`, `v_proj` for
            LLaMA, as the paper's authors used).
    """
    lora = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules, bias="none")
    return get_peft_model(backbone, lora)


def apply_finetuning(backbone: PreTrainedModel, finetuning: Finetuning, **lora: Any) -> nn.Module:
    """`lora`: adapters (`apply_lora(**lora)`); `full`: every weight trains; `head`: the backbone is frozen."""
    if finetuning == "lora":
        return apply_lora(backbone, **lora)
    if finetuning == "head":
        backbone.requires_grad_(False)
    elif finetuning != "full":
        raise ValueError(f"model.finetuning must be lora, full or head, got {finetuning!r}")
    return backbone


def default_mask(config: PretrainedConfig) -> AttentionMaskStrategy:
    """An encoder's own bidirectional attention; a decoder's causal mask (LS-LLaMA)."""
    return BidirectionalMask() if is_encoder_config(config) else CausalMask()


def log_trainable(module: nn.Module) -> None:
    """Log how many parameters train."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    total = sum(p.numel() for p in module.parameters())
    log.info("trainable parameters: %d of %d (%.3f%%)", trainable, total, 100 * trainable / max(total, 1))


# ------------------------------------------------------------------------------------------ adapters
ADAPTER_INFO = "adapter_info.json"  # beside peft's files: what the adapter was trained on (written by MNTP)
PEFT_PREFIX = "base_model.model."  # where peft puts the wrapped model in its weight names


def backbone_fingerprint(model: nn.Module) -> list[float]:
    """A few input-embedding values: tells the frozen weights an adapter was trained on from others of the same
    shape (another checkpoint, another random seed), and survives a bfloat16 cast."""
    weights = model.get_input_embeddings().weight  # (V, H)
    rows = [len(weights) // 3, 2 * len(weights) // 3]  # not row 0, which is often a zeroed pad embedding
    return [round(float(v), 6) for v in weights[rows, :8].detach().float().flatten().cpu()]


def _check_fingerprint(backbone: nn.Module, folder: Path) -> None:
    info = folder / ADAPTER_INFO
    recorded = json.loads(info.read_text()).get("backbone_fingerprint") if info.is_file() else None
    if recorded is None:
        return
    found = torch.tensor(backbone_fingerprint(backbone))
    if found.shape != torch.Size([len(recorded)]) or not torch.allclose(found, torch.tensor(recorded), 1e-2, 1e-3):
        raise ValueError(
            f"model.init_adapter {folder} was trained on another backbone (input embeddings differ: {ADAPTER_INFO} "
            f"records {recorded[:3]}..., this backbone has {found[:3].tolist()}...): use the same model.backbone "
            "(and backbone_config/backbone_seed for a random one) as the adapter's run"
        )


def _backbone_keys(weights: dict[str, Any], backbone: PreTrainedModel, folder: Path) -> dict[str, Any]:
    """Adapter weight names as peft names them on the bare `backbone`: an adapter trained inside a model with a
    language-model head (`*ForCausalLM`: `base_model.model.model.layers...`) loses the head model's prefix
    (`backbone.base_model_prefix`, `model` for LLaMA); one trained on the bare model (`base_model.model.layers...`,
    LLM2Vec's layout) is kept as it is."""
    nested = f"{PEFT_PREFIX}{backbone.base_model_prefix}."
    inside = [key for key in weights if key.startswith(nested)]
    if not inside:
        return weights
    outside = sorted(set(weights) - set(inside))
    if outside:
        raise ValueError(
            f"model.init_adapter {folder}: {len(outside)} adapter weights lie outside the backbone "
            f"({backbone.base_model_prefix!r}), e.g. {outside[:3]}: LoRA on the language-model head cannot be merged "
            "into a bare backbone"
        )
    return {PEFT_PREFIX + key[len(nested) :]: value for key, value in weights.items()}


def merge_adapter(backbone: PreTrainedModel, folder: str | Path) -> PreTrainedModel:
    """Merge a LoRA adapter folder (peft's `save_pretrained`; e.g. the adaptation stage's, `MaskedNextTokenModule`)
    into the weights of a bare backbone; returns the plain backbone (every weight trainable again, as loaded), whose
    `config.merged_adapters` lists the folder (a backbone whose config lists it already is returned unchanged).

    Args:
        backbone: the loaded bare backbone (`AutoModel`), before any finetuning wrapper.
        folder: the adapter folder (`adapter_config.json`, `adapter_model.safetensors`).

    Raises:
        ValueError: the folder is no LoRA adapter, trains modules the backbone lacks (`modules_to_save`, the LM
            head), has weights that land nowhere or leaves a LoRA layer without weights (a few keys named), or
            `adapter_info.json` says it was trained on another backbone.
    """
    done = list(getattr(backbone.config, "merged_adapters", None) or [])
    if str(folder) in done:  # e.g. a merged export (`save_pretrained(merge=True)`) of a model that merged it
        log.info("the backbone's config says the adapter %s is merged into it already: not merged again", folder)
        return backbone
    name, folder = str(folder), Path(folder)
    config_file = folder / "adapter_config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"model.init_adapter: {config_file} not found (expected a peft adapter folder)")
    raw = json.loads(config_file.read_text())
    if raw.get("peft_type") != "LORA" or raw.get("modules_to_save"):
        raise ValueError(
            f"model.init_adapter {folder}: a LoRA adapter without modules_to_save is needed, got peft_type "
            f"{raw.get('peft_type')!r} with modules_to_save {raw.get('modules_to_save')}"
        )
    _check_fingerprint(backbone, folder)
    weights = _backbone_keys(load_peft_weights(str(folder), device="cpu"), backbone, folder)
    model = PeftModel(backbone, LoraConfig.from_pretrained(str(folder)))
    result = set_peft_model_state_dict(model, weights)
    missing = sorted(key for key in result.missing_keys if "lora_" in key)
    if result.unexpected_keys or missing:
        raise ValueError(
            f"model.init_adapter {folder}: {len(result.unexpected_keys)} adapter weights land nowhere in the "
            f"backbone (e.g. {sorted(result.unexpected_keys)[:3]}) and {len(missing)} LoRA weights get no value "
            f"(e.g. {missing[:3]})"
        )
    merged = model.merge_and_unload()
    merged.requires_grad_(True)  # peft froze the base weights; what trains is decided by apply_finetuning
    merged.config.merged_adapters = [*done, name]  # saved with the config: a saved merged backbone is not merged twice
    log.info("merged the LoRA adapter %s into the backbone (%d weights)", folder, len(weights))
    return merged
