"""The math of LS-LLaMA's heads and masks that exported models need, in one file that imports only torch and
transformers: the poolings, the positions counted over real tokens, and the hooks of the causal-then-bidirectional
mask (`CausalLowerLayers`).

This file is the single source of that math. In the repository, `label_supervised.pooling` (the `Pooling` classes),
`backbone.masks` (`BidirectionalFromLayer`) and `label_supervised.modeling_ls_llama` call it; an export that needs
custom code (`label_supervised.pretrained`) copies it verbatim beside `modeling_ls_llama.py`, which imports it
relatively (`from .ls_llama_portable import ...`), so `trust_remote_code=True` loads exactly this code. Keep it free
of imports from the repository: it must run where only torch and transformers are installed.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask


# ------------------------------------------------------------------------------------------------------ poolings
def pool_last(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The state of the last (rightmost) real token: `hidden (B, T, H)`, `attention_mask (B, T)` -> `(B, H)`; right
    for left or right padding."""
    positions = torch.arange(hidden.shape[1], device=hidden.device)  # (T,)
    last = (positions * attention_mask.bool()).argmax(dim=1)  # (B,)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # (B, H)


def pool_first(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The state of the first (leftmost) real token ([CLS] of BERT-family encoders): `(B, T, H)` -> `(B, H)`."""
    first = attention_mask.bool().int().argmax(dim=1)  # (B,) first 1 in each row
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), first]  # (B, H)


def pool_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of the real tokens' states: `(B, T, H)` -> `(B, H)`."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)  # (B, H)


def pool_max(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The element-wise maximum over the real tokens: `(B, T, H)` -> `(B, H)` (or label logits `(B, T, C)` ->
    `(B, C)`, the authors' logit max)."""
    pad = ~attention_mask.bool().unsqueeze(-1)  # (B, T, 1)
    return hidden.masked_fill(pad, torch.finfo(hidden.dtype).min).amax(dim=1)  # (B, H)


def pool_attention(hidden: torch.Tensor, attention_mask: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """A learned `query (H,)` attends over the real tokens: `softmax(hidden @ query / sqrt(H))` weights their states,
    `(B, T, H)` -> `(B, H)`."""
    scores = hidden @ query.to(hidden.dtype) / math.sqrt(hidden.shape[-1])  # (B, T)
    scores = scores.float().masked_fill(~attention_mask.bool(), float("-inf"))
    weights = scores.softmax(dim=-1).to(hidden.dtype)  # (B, T), zero on pads
    return (weights.unsqueeze(-1) * hidden).sum(dim=1)  # (B, H)


# The poolings by name (`Pooling.name`). `attention` takes its query as a third argument; those in `POOLS_LOGITS`
# pool the per-token label logits (after the linear layer) instead of the states.
POOLS: dict[str, Callable[..., torch.Tensor]] = {
    "last": pool_last,
    "first": pool_first,
    "mean": pool_mean,
    "max": pool_max,
    "logit_max": pool_max,
    "attention": pool_attention,
}
POOLS_LOGITS = frozenset({"logit_max"})


def real_token_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens, `attention_mask (B, T)` -> `(B, T)` (pads get 0), so a decoder gives the
    same states for left and right padding."""
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)


# ------------------------------------------------------------------------------------------------------- layers
def decoder_layers(model: nn.Module) -> tuple[nn.Module, nn.ModuleList]:
    """Find the transformer block stack: the module holding the `ModuleList` of layers, and that list.

    Args:
        model: a transformers model, possibly wrapped by peft.

    Returns:
        `(stack, layers)` where `stack` is the module whose forward builds the attention mask (e.g. `LlamaModel`).
    """
    num_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for module in model.modules():
        for child in module.children():
            if isinstance(child, nn.ModuleList) and len(child) == num_layers and num_layers:
                return module, child
    raise ValueError(f"could not find the {num_layers} transformer layers in {type(model).__name__}")


def is_sliding_layer(config: Any, index: int) -> bool:
    """Whether decoder layer `index` uses sliding-window attention (per `layer_types`, else `sliding_window`)."""
    layer_types = getattr(config, "layer_types", None)
    if layer_types:
        return layer_types[index] == "sliding_attention"
    return getattr(config, "sliding_window", None) is not None


class CausalLowerLayers:
    """Causal attention in layers `0..layer-1` of a decoder, bidirectional from layer `layer` on (padding masked in
    all layers): what `BidirectionalFromLayer` applies, as forward pre-hooks.

    `attach` switches the model to bidirectional (`config.is_causal = False`) and hooks layers `0..layer-1` so that
    the mask the model hands each of them is causal, together with `is_causal=True` (which sdpa and flash read when
    the mask is skipped). A 4D mask (eager, sdpa; padding already in it) loses its upper triangle and, in a
    sliding-window layer, the keys outside the causal window; a 2D padding mask or none stays as it is for sdpa and
    flash, which read `is_causal`; anything else (eager without padding, flex attention's block mask) is rebuilt by
    transformers' own `create_causal_mask` / `create_sliding_window_causal_mask` for the layer's attention type.

    Args:
        layer: index of the first bidirectional layer (0 = fully bidirectional, `num_hidden_layers` = causal).
    """

    def __init__(self, layer: int) -> None:
        self.layer = layer
        self._padding_mask: torch.Tensor | None = None
        self._causal_masks: dict[int, Any] = {}
        self._stack_config: Any = None
        self._handles: list[Any] = []

    def attach(self, model: nn.Module) -> None:
        """Make `model` (a transformers decoder, possibly wrapped) bidirectional and hook its lower layers; hooks of
        an earlier `attach` are removed first."""
        self.detach()
        model.config.is_causal = False
        stack, layers = decoder_layers(model)
        self._stack_config = stack.config
        self._handles = [stack.register_forward_pre_hook(self._capture_padding, with_kwargs=True)]
        for index, block in enumerate(list(layers)[: self.layer]):
            hook = functools.partial(self._make_causal, sliding=is_sliding_layer(stack.config, index))
            self._handles.append(block.register_forward_pre_hook(hook, with_kwargs=True))

    def detach(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _capture_padding(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        # The stack is called as stack(input_ids=..., attention_mask=(B, T)); keep the 2D padding mask.
        self._padding_mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
        self._causal_masks = {}  # built once per forward and per mask handed out, shared by the causal layers

    def _make_causal(self, module: nn.Module, args: tuple, kwargs: dict, sliding: bool) -> tuple[tuple, dict]:
        handed = kwargs.get("attention_mask")  # what the bidirectional model gives this layer
        if id(handed) not in self._causal_masks:
            self._causal_masks[id(handed)] = self._causal_version(handed, args, kwargs, sliding)
        kwargs["attention_mask"] = self._causal_masks[id(handed)]
        kwargs["is_causal"] = True
        return args, kwargs

    def _causal_version(self, handed: Any, args: tuple, kwargs: dict, sliding: bool) -> Any:
        if isinstance(handed, torch.Tensor) and handed.ndim == 4:  # (B, 1, T, T): padding already in it
            # the bidirectional window reaches w tokens to the left, the causal one w - 1: cut one more
            return with_causality(handed, self._stack_config.sliding_window if sliding else None)
        kernel_reads_is_causal = self._stack_config._attn_implementation == "sdpa" or "flash" in str(
            self._stack_config._attn_implementation
        )
        if kernel_reads_is_causal and (handed is None or (isinstance(handed, torch.Tensor) and handed.ndim == 2)):
            return handed  # no mask, or flash's 2D padding mask: `is_causal=True` makes the kernel causal
        causal_config = copy.copy(self._stack_config)  # current attention implementation, is_causal forced
        causal_config.is_causal = True
        build = create_sliding_window_causal_mask if sliding else create_causal_mask
        return build(
            config=causal_config,
            inputs_embeds=args[0] if args else kwargs["hidden_states"],  # (B, T, H)
            attention_mask=self._padding_mask,
            cache=None,
            position_ids=kwargs.get("position_ids"),
        )


def with_causality(mask: torch.Tensor, window: int | None = None) -> torch.Tensor:
    """A 4D mask `(B, 1, Q, K)` (boolean: True = attend; float: additive) that also forbids later keys and, given a
    sliding `window`, keys `window` or more positions to the left (transformers' causal window: `k > q - window`)."""
    later = torch.ones(mask.shape[-2:], dtype=torch.bool, device=mask.device).triu(1)  # (Q, K)
    if window is not None:
        later |= torch.ones_like(later).tril(-window)
    if mask.dtype == torch.bool:
        return mask & ~later
    return mask.masked_fill(later, torch.finfo(mask.dtype).min)
