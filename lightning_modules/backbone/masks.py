"""Attention-mask strategies: who may attend to whom inside the backbone, and their registry `MASKS`.

A strategy is applied once to a loaded backbone (`apply`) and states what it promises (`sees_right_context`), so
that `verify_attention` can check the promise with a probe on the real model. Padding is always masked: the
strategies only decide whether a real token may look at real tokens to its right.

- `CausalMask`: LS-LLaMA. A decoder attends to the left only.
- `BidirectionalMask`: LS-unLLaMA. Every token attends to every non-pad token.
- `BidirectionalFromLayer`: causal in layers `0..k-1`, bidirectional from layer `k` on.

Decoders are switched with `config.is_causal` (transformers >= 5.2, `masking_utils`): the model builds a
bidirectional padding mask and hands `is_causal=False` to every attention call, so sdpa and flash attention stay
bidirectional even when the mask is skipped (no padding, batch of one). The same switch works for every decoder
family tested (`tests/model/test_architectures.py`: Llama, Mistral, Qwen2, Qwen3, Gemma-2, Gemma-3, Phi-3).

What "bidirectional" means where a family restricts attention further:
- Sliding-window layers (Mistral, Gemma-2/3, Phi-3, Qwen with `use_sliding_window`): a symmetric window, the one
  transformers builds when `is_causal=False`: a token sees the real tokens at distance <= `sliding_window` on both
  sides (the causal layer sees `sliding_window - 1` to its left and itself). Flash attention 2 applies
  `window_size=(w - 1, w - 1)`, one token less on each side. The windows of the shipped backbones (512 to 4096) are
  longer than our sequences (64 to 128 tokens), so there the window never binds. `BidirectionalFromLayer` keeps the
  window in its causal layers.
- Attention logit soft-capping (Gemma-2: `tanh` capping of the scores at 50): applied to the scores before the mask,
  so it is unchanged; only the mask changes. transformers runs it on eager, flex and flash attention, not on sdpa
  (loading Gemma-2 with `attn_implementation: sdpa` fails at start-up).
- Gemma-3's own `use_bidirectional_attention=True` (e.g. embedding checkpoints) builds a bidirectional model with a
  halved window; it cannot be made causal after loading, so `CausalMask` and `BidirectionalFromLayer` refuse it at
  start-up (load it with `use_bidirectional_attention: false` in `model.backbone_config`).

Add a strategy: subclass `AttentionMaskStrategy` (anywhere: this file, or your own module) with a `name`, `apply` and
`sees_right_context`; defining the class registers its name (`model.mask: <name>` then works, as does
`model.mask: {class_path: your.module.Class}`), and the attention probe checks its promise before training.
"""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedModel

from core.registry import Component
from lightning_modules.label_supervised.ls_llama_portable import CausalLowerLayers
from lightning_modules.label_supervised.ls_llama_portable import decoder_layers as decoder_layers  # re-exported


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


def refuse_built_bidirectional(model: PreTrainedModel, strategy: str) -> None:
    """Raise if the decoder was built bidirectional by its own config (Gemma-3 `use_bidirectional_attention`):
    its attention modules and sliding window are fixed at construction, so no strategy can make it causal again."""
    if getattr(model.config, "use_bidirectional_attention", False):
        raise ValueError(
            f"{strategy} needs causal attention, but this {model.config.model_type!r} backbone was built "
            "bidirectional by its config (use_bidirectional_attention=True, with a halved sliding window). Set "
            "model.backbone_config: {use_bidirectional_attention: false} to load it causal, or use BidirectionalMask."
        )


MASKS: dict[str, type[AttentionMaskStrategy]] = {}


class AttentionMaskStrategy(Component):
    """Base class: how real tokens attend to each other. Subclass it to add a strategy.

    A subclass sets `name` (registered in `MASKS`; its `label`, the name with any parameters, names runs and tags),
    implements `apply` (configure a loaded backbone) and `sees_right_context(layer)` (its promise, checked by the
    probe in `verify_attention`).
    """

    registry = MASKS
    kind = "mask strategy"

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
        refuse_built_bidirectional(model, "CausalMask")
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
    make the mask the model hands each of those layers causal, together with `is_causal=True` (which sdpa and flash
    read when the mask is skipped). A 4D mask (eager, sdpa; padding already in it) loses its upper triangle and, in
    a sliding-window layer, the keys outside the causal window; a 2D padding mask or none stays as it is for sdpa and
    flash, which read `is_causal`; anything else (eager without padding, flex attention's block mask) is rebuilt by
    transformers' own `create_causal_mask` / `create_sliding_window_causal_mask` for the layer's attention type.
    The hooks are `label_supervised.ls_llama_portable.CausalLowerLayers`, which exported models ship.

    Args:
        layer: index of the first bidirectional layer (0 = fully bidirectional, `num_hidden_layers` = causal).
    """

    name = "bidir_from"

    def __init__(self, layer: int) -> None:
        if layer < 0:
            raise ValueError(f"BidirectionalFromLayer.layer must be >= 0, got {layer}")
        self.layer = layer
        self._hooks = CausalLowerLayers(layer)

    def __repr__(self) -> str:
        return f"BidirectionalFromLayer(layer={self.layer})"

    @property
    def label(self) -> str:
        """`bidir@<layer>`: the first bidirectional layer names the setting."""
        return f"bidir@{self.layer}"

    def __getstate__(self) -> dict[str, Any]:
        # Hooks belong to the model this instance was applied to: copies (deepcopy, pickling) start unapplied.
        return {"layer": self.layer}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)

    def apply(self, model: PreTrainedModel) -> None:
        """Make the model bidirectional and register the hooks that keep the lower layers causal."""
        if is_encoder(model):
            raise ValueError("BidirectionalFromLayer needs a decoder backbone; encoders are bidirectional already")
        refuse_built_bidirectional(model, "BidirectionalFromLayer")
        num_layers = model.config.num_hidden_layers
        if self.layer > num_layers:
            raise ValueError(f"BidirectionalFromLayer.layer={self.layer} but the model has {num_layers} layers")
        self._hooks.layer = self.layer  # a subclass may set the layer once the depth is known
        self._hooks.attach(model)

    def sees_right_context(self, layer: int) -> bool:
        """From layer `self.layer` on."""
        return layer >= self.layer
