"""QLoRA: a k-bit (NF4 by default) frozen backbone with LoRA adapters on top, switched by `model.quantization`.

The backbone's linear layers are loaded through transformers' `BitsAndBytesConfig` (bitsandbytes `Linear4bit` /
`Linear8bitLt`); peft's `prepare_model_for_kbit_training` then freezes it, keeps the remaining weights (embeddings,
norms) in float32 and lets gradients reach the input of the first layer; LoRA adapters, the only trained weights
with the head, wrap the quantized layers (peft's `lora.bnb.Linear4bit`). Checkpoints hold adapters and head only,
and rebuilding re-quantizes the same pretrained weights the same way.

bitsandbytes is an optional extra (`pip install -e ".[qlora]"`, ~130 MB with its CUDA kernels). Its 4-bit layers
run on CUDA and, since bitsandbytes 0.46, on CPU (slowly: the tests use it there); 8-bit matmul needs CUDA.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Literal

import torch
from torch import nn
from transformers import BitsAndBytesConfig

Quantization = Literal["nf4", "fp4", "int8"]
QUANTIZATIONS = ("nf4", "fp4", "int8")


def require_bitsandbytes(quantization: str) -> None:
    """Raise a clear error when bitsandbytes is missing."""
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ImportError(
            f"model.quantization={quantization!r} needs bitsandbytes, an optional extra: pip install -e '.[qlora]'"
        )


def bnb_config(quantization: Quantization, compute_dtype: torch.dtype) -> BitsAndBytesConfig:
    """Transformers' `BitsAndBytesConfig` for `quantization`.

    Args:
        quantization: `nf4` (QLoRA: 4-bit NormalFloat with double quantization of the scales, Dettmers et al.
            2023), `fp4` (4-bit float) or `int8` (LLM.int8()).
        compute_dtype: dtype the 4-bit weights are de-quantized to for each matmul (bf16 on a GPU, fp32 on a CPU).
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"model.quantization must be one of {', '.join(QUANTIZATIONS)} or null, got {quantization!r}")
    require_bitsandbytes(quantization)
    if quantization == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quantization,
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def check_finetuning(quantization: str | None, finetuning: str) -> None:
    """Quantized weights cannot be trained: only LoRA (QLoRA) or a head on a frozen backbone."""
    if quantization is not None and finetuning == "full":
        raise ValueError(
            f"model.quantization={quantization!r} freezes the backbone in k-bit weights: use model.finetuning: lora "
            "(QLoRA) or head, not full"
        )


def quantized_device_map() -> dict[str, Any]:
    """Where bitsandbytes puts the quantized weights: this process's GPU (`LOCAL_RANK` under DDP/FSDP), else CPU."""
    if torch.cuda.is_available():
        return {"": torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))}
    return {"": "cpu"}


def prepare_for_kbit_training(model: nn.Module, gradient_checkpointing: bool) -> nn.Module:
    """Peft's `prepare_model_for_kbit_training`: frozen, non-quantized weights upcast to float32, gradients enabled
    on the input embeddings' output (needed by gradient checkpointing)."""
    from peft import prepare_model_for_kbit_training  # noqa: PLC0415

    for module in model.modules():
        # bitsandbytes (0.50) repacks 4-bit weights for AVX512-BF16 CPU inference after an eval-mode forward without
        # gradients (our attention probe is one); LoRA adapters on those layers then got no gradient. Keep the
        # trainable format.
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
    return prepare_model_for_kbit_training(
        model,
        use_gradient_checkpointing=gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
    )


def quantized_linears(model: nn.Module) -> int:
    """How many linear layers hold k-bit weights (bitsandbytes modules)."""
    return sum(1 for module in model.modules() if type(module).__module__.startswith("bitsandbytes"))
