"""Attention-mask strategies: who may attend to whom inside the backbone, and their registry `MASKS`.

A strategy is applied once to a loaded backbone (`apply`) and states what it promises (`sees_right_context`), so
that `verify_attention` can check the promise with a probe on the real model. Padding is always masked: the
strategies only decide whether a real token may look at real tokens to its right.

- `CausalMask`: LS-LLaMA. A decoder attends to the left only.
- `BidirectionalMask`: LS-unLLaMA. Every token attends to every non-pad token.
- `BidirectionalFromLayer`: causal in layers `0..k-1`, bidirectional from layer `k` on.

Decoders are switched with `config.is_causal` (transformers >= 5.2, `masking_utils`): the model builds a
bidirectional padding mask and hands `is_causal=False` to every attention call, so sdpa and flash attention stay
bidirectional even when the mask is skipped (no padding, batch of one).

Add a strategy: subclass `AttentionMaskStrategy` (anywhere: this file, or your own module) with a `name`, `apply` and
`sees_right_context`; defining the class registers its name (`model.mask: <name>` then works, as does
`model.mask: {class_path: your.module.Class}`), and the attention probe checks its promise before training.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.masking_utils import create_causal_mask


def is_encoder_config(config: Any) -> bool:
    """Whether a transformers config describes a bidirectional encoder (BERT family) rather than a decoder."""
    return not getattr(config, "is_decoder", False) and config.model_type in ENCODER_MODEL_TYPES


def is_encoder(model: PreTrainedModel) -> bool:
    """Whether the backbone is a bidirectional encoder (BERT family) rather than a decoder."""
    return is_encoder_config(model.config)


ENCODER_MODEL_TYPES = {
    "bert",
    "roberta",
    "xlm-roberta",
    "distilbert",
    "electra",
    "deberta",
    "deberta-v2",
    "albert",
    "camembert",
    "modernbert",
    "mpnet",
}


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


def register(registry: dict[str, type], cls: type, kind: str) -> None:
    """Add `cls` to `registry` under `cls.name`; a different class may not take a registered name."""
    known = registry.get(cls.name)
    if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"{kind} name {cls.name!r} is taken by {known.__module__}.{known.__qualname__}")
    registry[cls.name] = cls


MASKS: dict[str, type[AttentionMaskStrategy]] = {}


class AttentionMaskStrategy:
    """Base class: how real tokens attend to each other. Subclass it to add a strategy.

    A subclass sets `name` (registered in `MASKS`, used in run names and tags), implements `apply` (configure a
    loaded backbone) and `sees_right_context(layer)` (its promise, checked by the probe in `verify_attention`).
    """

    name = "base"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            register(MASKS, cls, "mask strategy")

    def apply(self, model: PreTrainedModel) -> None:
        """Configure `model` in place so that its attention follows this strategy."""
        raise NotImplementedError

    def sees_right_context(self, layer: int) -> bool:
        """Whether the output of transformer layer `layer` (0-based) may depend on tokens to the right."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class CausalMask(AttentionMaskStrategy):
    """LS-LLaMA: the decoder's own causal mask, each token attends to itself and the tokens on its left."""

    name = "causal"

    def apply(self, model: PreTrainedModel) -> None:
        """Set `config.is_causal = True` (the default of decoders); encoders cannot be made causal here."""
        if is_encoder(model):
            raise ValueError(
                f"CausalMask needs a decoder backbone; {model.config.model_type!r} is a bidirectional encoder. "
                "Use BidirectionalMask for BERT-family models."
            )
        model.config.is_causal = True

    def sees_right_context(self, layer: int) -> bool:
        """Never: a causal decoder sees only the left context."""
        return False


class BidirectionalMask(AttentionMaskStrategy):
    """LS-unLLaMA: the causal mask is removed, every token attends to every non-pad token."""

    name = "bidirectional"

    def apply(self, model: PreTrainedModel) -> None:
        """Set `config.is_causal = False` on decoders; encoders are bidirectional already."""
        if not is_encoder(model):
            model.config.is_causal = False

    def sees_right_context(self, layer: int) -> bool:
        """Always: every layer sees both sides."""
        return True


class BidirectionalFromLayer(AttentionMaskStrategy):
    """Causal in the first `layer` layers, bidirectional from that layer on (padding masked in all layers).

    The model is switched to bidirectional (`config.is_causal = False`); forward pre-hooks on layers `0..layer-1`
    hand those layers a causal padding mask built by transformers' own `create_causal_mask` for the model's
    attention implementation, together with `is_causal=True` (which sdpa and flash read when the mask is skipped).

    Args:
        layer: index of the first bidirectional layer (0 = fully bidirectional, `num_hidden_layers` = causal).
    """

    name = "bidir_from"

    def __init__(self, layer: int) -> None:
        if layer < 0:
            raise ValueError(f"BidirectionalFromLayer.layer must be >= 0, got {layer}")
        self.layer = layer
        self._padding_mask: torch.Tensor | None = None
        self._causal_mask: Any = None
        self._stack_config: Any = None
        self._handles: list[Any] = []

    def __repr__(self) -> str:
        return f"BidirectionalFromLayer(layer={self.layer})"

    def __getstate__(self) -> dict[str, Any]:
        # Hooks belong to the model this instance was applied to: copies (deepcopy, pickling) start unapplied.
        return {"layer": self.layer}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)

    def apply(self, model: PreTrainedModel) -> None:
        """Make the model bidirectional and register the hooks that keep the lower layers causal."""
        if is_encoder(model):
            raise ValueError("BidirectionalFromLayer needs a decoder backbone; encoders are bidirectional already")
        num_layers = model.config.num_hidden_layers
        if self.layer > num_layers:
            raise ValueError(f"BidirectionalFromLayer.layer={self.layer} but the model has {num_layers} layers")
        for handle in self._handles:
            handle.remove()
        model.config.is_causal = False
        stack, layers = decoder_layers(model)
        self._stack_config = stack.config
        self._handles = [stack.register_forward_pre_hook(self._capture_padding, with_kwargs=True)]
        for block in list(layers)[: self.layer]:
            self._handles.append(block.register_forward_pre_hook(self._make_causal, with_kwargs=True))

    def _capture_padding(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        # The stack is called as stack(input_ids=..., attention_mask=(B, T)); keep the 2D padding mask.
        self._padding_mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
        self._causal_mask = None

    def _make_causal(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        hidden = args[0] if args else kwargs["hidden_states"]  # (B, T, H)
        if self._causal_mask is None and self._padding_mask is not None and self._padding_mask.ndim == 4:
            self._causal_mask = _with_causality(self._padding_mask)  # a prepared mask (e.g. packed sequences)
        elif self._causal_mask is None:  # built once per forward, shared by the causal layers
            causal_config = copy.copy(self._stack_config)  # current attention implementation, is_causal forced
            causal_config.is_causal = True
            self._causal_mask = create_causal_mask(
                config=causal_config,
                inputs_embeds=hidden,
                attention_mask=self._padding_mask,
                cache=None,
                position_ids=kwargs.get("position_ids"),
            )
        kwargs["attention_mask"] = self._causal_mask
        kwargs["is_causal"] = True
        return args, kwargs

    def sees_right_context(self, layer: int) -> bool:
        """From layer `self.layer` on."""
        return layer >= self.layer


def _with_causality(mask: torch.Tensor) -> torch.Tensor:
    """A 4D mask `(B, 1, Q, K)` (boolean: True = attend; float: additive) that also forbids later keys."""
    later = torch.ones(mask.shape[-2:], dtype=torch.bool, device=mask.device).triu(1)  # (Q, K)
    if mask.dtype == torch.bool:
        return mask & ~later
    return mask.masked_fill(later, torch.finfo(mask.dtype).min)
