"""LS-LLaMA classifiers as transformers models, for the exports that no stock transformers class reproduces: pooling
other than the last token, `BidirectionalFromLayer`, BERT-family encoders with their first token pooled.

An export (`label_supervised.pretrained`) copies this file and `ls_llama_portable.py` verbatim into its folder and
points `auto_map` in config.json at the classes below, so that

    AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)
    pipeline("text-classification", model=folder, trust_remote_code=True)

load it with nothing installed but torch and transformers (>= 5.2, whose `config.is_causal` switches decoders to
bidirectional attention). The model wraps the backbone (`AutoModel.from_config` of the backbone's config, stored in
`LSLlamaConfig.backbone`), applies the mask, counts a decoder's positions over real tokens (so left and right padding
give the same logits), pools and projects with `score`, as `LabelSupervisedModule` does with the same weights.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput, TokenClassifierOutput

from .ls_llama_portable import POOLS, POOLS_LOGITS, CausalLowerLayers, real_token_positions

MASKS = ("causal", "bidirectional", "bidir_from")


class LSLlamaConfig(PretrainedConfig):
    """The configuration of an exported LS-LLaMA classifier: the backbone's own config and the head's settings.

    Args:
        backbone: the backbone's transformers config as a dict (`model_type` and its arguments, `is_causal` included).
        task: `sequence` (one label per text, pooled) or `token` (a label per token).
        pooling: the pooling's name (a key of `ls_llama_portable.POOLS`); unused by token tasks.
        mask: `causal`, `bidirectional` or `bidir_from` (causal below `first_bidirectional_layer`).
        first_bidirectional_layer: with `bidir_from`, the first bidirectional layer.
        decoder: whether the backbone is a decoder (positions are then counted over real tokens and the mask set with
            `is_causal`); False for BERT-family encoders, which number positions themselves.
        head_dropout: dropout before `score` (active in training mode only).
        backbone_attn_implementation: the attention implementation the model was trained with; used when
            `from_pretrained` is not given one (None = transformers' default).
        **kwargs: `PretrainedConfig`'s (`id2label`, `label2id`, `pad_token_id`, ...).
    """

    model_type = "ls_llama"

    def __init__(
        self,
        backbone: dict[str, Any] | None = None,
        task: str = "sequence",
        pooling: str = "last",
        mask: str = "causal",
        first_bidirectional_layer: int | None = None,
        decoder: bool = True,
        head_dropout: float = 0.0,
        backbone_attn_implementation: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.backbone, self.task, self.pooling = dict(backbone or {}), task, pooling
        self.mask, self.first_bidirectional_layer, self.decoder = mask, first_bidirectional_layer, decoder
        self.head_dropout, self.backbone_attn_implementation = head_dropout, backbone_attn_implementation
        super().__init__(**kwargs)


class LSLlamaPooling(nn.Module):
    """A pooling of `ls_llama_portable.POOLS` by name, holding the learned query of `attention` pooling.

    Args:
        name: the pooling's name.
        hidden_size: the backbone's hidden size `H`.
    """

    def __init__(self, name: str, hidden_size: int) -> None:
        super().__init__()
        if name not in POOLS:
            raise ValueError(f"LSLlamaConfig.pooling must be one of {sorted(POOLS)}, got {name!r}")
        self.name = name
        if name == "attention":
            self.query = nn.Parameter(torch.zeros(hidden_size))  # (H,)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pool `hidden (B, T, H)` (or logits `(B, T, C)`) over the real tokens of `attention_mask (B, T)`."""
        if self.name == "attention":
            return POOLS[self.name](hidden, attention_mask, self.query)
        return POOLS[self.name](hidden, attention_mask)


class LSLlamaPreTrainedModel(PreTrainedModel):
    """The backbone with the mask applied, the head's layers, and what both tasks share.

    Args:
        config: the `LSLlamaConfig`.
    """

    config_class = LSLlamaConfig
    base_model_prefix = "backbone"
    supports_gradient_checkpointing = True
    # the backbone decides what it supports (its own check runs when it is built)
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    task = "sequence"

    def __init__(self, config: LSLlamaConfig) -> None:
        requested = config._attn_implementation  # from_pretrained(..., attn_implementation=...), before the default
        super().__init__(config)
        if config.task != self.task:
            raise ValueError(f"{type(self).__name__} is for {self.task} tasks; this config's task is {config.task!r}")
        if config.mask not in MASKS:
            raise ValueError(f"LSLlamaConfig.mask must be one of {MASKS}, got {config.mask!r}")
        backbone_config = AutoConfig.for_model(**config.backbone)
        implementation = requested or config.backbone_attn_implementation
        kwargs = {"attn_implementation": implementation} if implementation else {}
        self.backbone = AutoModel.from_config(backbone_config, **kwargs)
        if getattr(self.backbone, "pooler", None) is not None:
            self.backbone.pooler = None  # BERT's NSP pooler: no pooling here uses it, the weights do not hold it
        self.config._attn_implementation_internal = self.backbone.config._attn_implementation
        if config.decoder and config.mask == "bidir_from":
            self.causal_lower_layers = CausalLowerLayers(config.first_bidirectional_layer)
            self.causal_lower_layers.attach(self.backbone)
        elif config.decoder:
            self.backbone.config.is_causal = config.mask == "causal"
        hidden_size = backbone_config.hidden_size
        if self.task == "sequence":
            self.pooling = LSLlamaPooling(config.pooling, hidden_size)
        self.dropout = nn.Dropout(config.head_dropout)
        self.score = nn.Linear(hidden_size, config.num_labels, bias=self.task == "token")
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, LSLlamaPooling) and hasattr(module, "query"):
            nn.init.zeros_(module.query)  # attention pooling starts as mean pooling
        else:
            super()._init_weights(module)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput | TokenClassifierOutput:
        """Label logits of `input_ids (B, T)` under `attention_mask (B, T)` (1 = real token; None = no padding):
        `(B, C)` for sequences, `(B, T, C)` for tokens; with `labels` (`(B,)` or `(B, T)`, -100 = none) also the mean
        cross-entropy. `token_type_ids` (BERT tokenizers) are accepted and not used: the model was trained without
        them, i.e. with all zeros, what a single text gets. The output is always a `ModelOutput` (`return_dict`)."""
        if attention_mask is None:
            shape = input_ids.shape if input_ids is not None else inputs_embeds.shape[:2]  # (B, T)
            device = input_ids.device if input_ids is not None else inputs_embeds.device
            attention_mask = torch.ones(shape, dtype=torch.long, device=device)
        out = self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=real_token_positions(attention_mask) if self.config.decoder else None,  # (B, T)
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )
        logits = self.head(out.last_hidden_state.to(self.score.weight.dtype), attention_mask)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float().flatten(0, -2), labels.flatten(), ignore_index=-100)
        output = SequenceClassifierOutput if self.task == "sequence" else TokenClassifierOutput
        return output(loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)

    def head(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Label logits from the final states `hidden (B, T, H)`."""
        raise NotImplementedError


class LSLlamaForSequenceClassification(LSLlamaPreTrainedModel):
    """Sequence classification: pooling -> dropout -> `score`, or dropout -> `score` -> pooling for a pooling of
    logits (`logit_max`), as `label_supervised.head.ClassificationHead`."""

    task = "sequence"

    def head(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """`(B, T, H)` -> `(B, C)`."""
        if self.pooling.name in POOLS_LOGITS:
            return self.pooling(self.score(self.dropout(hidden)), attention_mask)  # (B, T, C) -> (B, C)
        return self.score(self.dropout(self.pooling(hidden, attention_mask)))  # (B, H) -> (B, C)


class LSLlamaForTokenClassification(LSLlamaPreTrainedModel):
    """Token classification: dropout -> `score` on every token."""

    task = "token"

    def head(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """`(B, T, H)` -> `(B, T, C)`."""
        return self.score(self.dropout(hidden))
