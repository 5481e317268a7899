"""Builders of the model's parts, plain functions with explicit arguments (`LabelSupervisedModule.__init__` calls
them once): the backbone, its finetuning (LoRA, full, head-only), and the default mask and pooling of a backbone.

The default mask and pooling are decided here and only here: `default_mask(config)` / `default_pooling(config)` read
the backbone's transformers config (an encoder such as BERT: its own bidirectional attention and the first token,
[CLS]; a decoder: causal and the last real token). The CLI calls the same functions at parse time, so run names and
`--print_config` show what the model will use.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from core.hub import load_backbone
from lightning_modules.attention_masks import AttentionMaskStrategy, BidirectionalMask, CausalMask, is_encoder_config
from lightning_modules.pooling import FirstTokenPooling, LastTokenPooling, Pooling

log = logging.getLogger(__name__)

Finetuning = Literal["lora", "full", "head"]


def build_backbone(
    source: str | None,
    config: dict[str, Any] | None = None,
    *,
    dtype: str = "float32",
    attn_implementation: str | None = None,
    seed: int = 0,
    pad_token_id: int | None = None,
    vocab_size: int | None = None,
    gradient_checkpointing: bool = False,
) -> PreTrainedModel:
    """The bare transformer (no LM or classification head), ready to be wrapped by a head.

    Args:
        source: hub name, folder, `.gguf` file or `pkg://package/file`; None = a random backbone from `config`.
        config: attributes overriding the loaded config, or (without `source`) the whole config with `model_type`.
        dtype: weights dtype (`float32`, `bfloat16`, `float16`, `auto`).
        attn_implementation: `sdpa`, `eager`, `flash_attention_2`, `flex_attention`, or None (transformers' default).
        seed: seed of a random backbone's initialisation (so a checkpoint can rebuild its frozen weights).
        pad_token_id: the tokenizer's pad id, written to the config (and sizing nothing).
        vocab_size: the tokenizer's vocabulary size: sizes a random backbone; checked against a pretrained one.
        gradient_checkpointing: recompute activations in the backward pass to save memory.
    """
    config = dict(config or {})
    if source is None:
        if vocab_size:
            config["vocab_size"] = vocab_size
        if pad_token_id is not None:
            config["pad_token_id"] = pad_token_id
    model = load_backbone(source, config=config, dtype=dtype, attn_implementation=attn_implementation, seed=seed)
    embeddings = model.get_input_embeddings().num_embeddings
    if vocab_size and vocab_size > embeddings:
        raise ValueError(f"the tokenizer has {vocab_size} tokens but the backbone {source!r} embeds only {embeddings}")
    if pad_token_id is not None:
        model.config.pad_token_id = pad_token_id
    if getattr(model, "pooler", None) is not None:
        model.pooler = None  # BERT's NSP pooler: unused by our poolings, and untrained weights under DDP
    if gradient_checkpointing:
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


def default_pooling(config: PretrainedConfig) -> Pooling:
    """An encoder's first token ([CLS]); a decoder's last real token (LS-LLaMA)."""
    return FirstTokenPooling() if is_encoder_config(config) else LastTokenPooling()


def log_trainable(module: nn.Module) -> None:
    """Log how many parameters train."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    total = sum(p.numel() for p in module.parameters())
    log.info("trainable parameters: %d of %d (%.3f%%)", trainable, total, 100 * trainable / max(total, 1))
