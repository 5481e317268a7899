"""Tiny random configs of every backbone family we ship a config for (no download), shared by the architecture,
config and distributed tests: `FAMILIES`, `tiny_config`, `module`."""

from __future__ import annotations

from lightning_modules import LabelSupervisedModule

VOCAB = 60
ATTENTION = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2}
# One tiny config per family, shaped like the real checkpoints in configs/backbone/ (attention types, windows,
# soft-capping, fused projections): `config` for `AutoConfig.for_model`, the attention implementations the family
# runs, and LoRA targets where peft has no default.
FAMILIES: dict[str, dict] = {
    "llama": {"config": {"model_type": "llama", **ATTENTION}},
    "mistral": {"config": {"model_type": "mistral", **ATTENTION, "sliding_window": 4096}},
    "qwen2": {"config": {"model_type": "qwen2", **ATTENTION}},
    "qwen3": {"config": {"model_type": "qwen3", **ATTENTION, "head_dim": 8}},
    "gemma2": {  # alternating sliding/global layers, attention logit soft-capping: no sdpa in transformers
        "config": {"model_type": "gemma2", **ATTENTION, "head_dim": 8, "query_pre_attn_scalar": 8},
        "impls": ["eager"],
    },
    "gemma3": {  # 5 sliding : 1 global in the real model; here 2 : 1
        "config": {
            "model_type": "gemma3_text",
            **ATTENTION,
            "head_dim": 8,
            "query_pre_attn_scalar": 8,
            "layer_types": ["sliding_attention", "sliding_attention", "full_attention"],
        },
    },
    "phi3": {  # fused qkv projection, sliding window 2047 in Phi-3-mini-4k
        "config": {"model_type": "phi3", **ATTENTION, "sliding_window": 2047},
        "lora": ["qkv_proj", "o_proj"],
    },
    "modernbert": {  # encoder: alternating local (windowed) and global attention
        "config": {"model_type": "modernbert", "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4},
        "lora": ["Wqkv"],
        "encoder": True,
    },
    "deberta-v3": {  # encoder with disentangled relative attention: eager only in transformers
        "config": {
            "model_type": "deberta-v2",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_attention_heads": 4,
            "relative_attention": True,
            "position_buckets": 16,
            "pos_att_type": ["p2c", "c2p"],
            "position_biased_input": False,
        },
        "impls": ["eager"],
        "encoder": True,
    },
}
DECODERS = [name for name, family in FAMILIES.items() if not family.get("encoder")]
ENCODERS = [name for name, family in FAMILIES.items() if family.get("encoder")]


def impls(family: str) -> list[str]:
    return FAMILIES[family].get("impls", ["eager", "sdpa"])


def tiny_config(family: str, layers: int = 3, **overrides) -> dict:
    """The family's tiny backbone config (`model_type` + arguments), `layers` deep."""
    return {**FAMILIES[family]["config"], "num_hidden_layers": layers, **overrides}


def module(family: str, mask=None, impl=None, layers: int = 3, finetuning: str = "full", lora=None, **overrides):
    """A tiny `LabelSupervisedModule` of the family (fully finetuned: the backbone is the bare transformers model;
    `lora`: LoRA targets, default the family's); `overrides` go to the backbone config."""
    return LabelSupervisedModule(
        backbone_config=tiny_config(family, layers, **overrides),
        mask=mask,
        attn_implementation=impl or impls(family)[0],
        finetuning=finetuning,
        lora_target_modules=lora or FAMILIES[family].get("lora"),
        vocab_size=VOCAB,
        pad_token_id=0,
        num_labels=2,
        verify_mask=False,
    ).eval()


def family_of(source: str) -> str | None:
    """The test family of a configured hub name (None: LLaMA-2 / BERT / RoBERTa, handled by test_configs)."""
    source = source.lower()
    for key, family in (
        ("modernbert", "modernbert"),
        ("deberta", "deberta-v3"),
        ("qwen3", "qwen3"),
        ("qwen2", "qwen2"),
        ("gemma-2", "gemma2"),
        ("gemma-3", "gemma3"),
        ("phi-3", "phi3"),
        ("mistral", "mistral"),
        ("llama-3", "llama"),
    ):
        if key in source:
            return family
    return None
