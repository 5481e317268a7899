"""Pooling: one vector per sequence from the final hidden states, always ignoring padding; the registry `POOLINGS`.

Every pooling maps `hidden (B, T, H)` and `attention_mask (B, T)` (1 = real token, 0 = pad) to `(B, H)`, for left
and right padding alike. Add a pooling by subclassing `Pooling` with a `name` (defining the class registers it):
`model.pooling: <name>` or `model.pooling: {class_path: my_package.MyPooling}` in a config. A pooling with weights
creates them in `build(hidden_size)`, which the head (`label_supervised.head`) calls once the backbone is known; they
then train, checkpoint and export with the head (`AttentionPooling`). A pooling with `pools_logits = True` is applied
to the per-token label logits instead of the states (`LogitMaxPooling`).

The built-in poolings' math is in `label_supervised.ls_llama_portable` (`POOLS`), which exported models ship
(`label_supervised.pretrained`); a pooling of your own exports as an adapter or to our `from_pretrained` only.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PretrainedConfig
from typing_extensions import override

from core.registry import Component
from lightning_modules.backbone.masks import is_encoder_config
from lightning_modules.label_supervised.ls_llama_portable import (
    pool_attention,
    pool_first,
    pool_last,
    pool_max,
    pool_mean,
)

POOLINGS: dict[str, type[Pooling]] = {}


class Pooling(Component, nn.Module):
    """Base class of poolings; `name` registers it in `POOLINGS`, its `label` names runs and tags."""

    registry = POOLINGS
    kind = "pooling"
    pools_logits = False  # True: pool the per-token logits (B, T, C) after the linear layer, not the states

    def build(self, hidden_size: int) -> None:
        """Create this pooling's weights for the backbone's hidden size (called once by the head); none by default."""

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pool `hidden (B, T, H)` over the real tokens of `attention_mask (B, T)` to `(B, H)`."""
        raise NotImplementedError

    @override
    def extra_repr(self) -> str:
        return self.name


class LastTokenPooling(Pooling):
    """The hidden state of the last (rightmost) non-pad token: LS-LLaMA's pooling, what a causal decoder needs."""

    name = "last"

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pool `(B, T, H)` to `(B, H)` at the rightmost position whose mask is 1 (left or right padding)."""
        return pool_last(hidden, attention_mask)


class FirstTokenPooling(Pooling):
    """The hidden state of the first (leftmost) non-pad token: the [CLS] position of BERT-family encoders."""

    name = "first"

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pool `(B, T, H)` to `(B, H)` at the leftmost position whose mask is 1."""
        return pool_first(hidden, attention_mask)


class MeanPooling(Pooling):
    """The mean of the hidden states of the non-pad tokens."""

    name = "mean"

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Average `(B, T, H)` over the real tokens to `(B, H)`."""
        return pool_mean(hidden, attention_mask)


class MaxPooling(Pooling):
    """The element-wise maximum over the non-pad tokens: LS-unLLaMA's best pooling in the paper."""

    name = "max"

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Max of `(B, T, H)` over the real tokens, to `(B, H)`."""
        return pool_max(hidden, attention_mask)


class LogitMaxPooling(MaxPooling):
    """The authors' max pooling: every token is projected to label logits first, then the maximum of each label's
    logit is taken over the real tokens, `(B, T, C)` to `(B, C)` (their code also took the pad positions; this one
    never does). `MaxPooling` takes the maximum of the hidden states before the projection, as the paper describes."""

    name = "logit_max"
    pools_logits = True


class AttentionPooling(Pooling):
    """A learned query attends over the real tokens: `softmax(hidden @ q / sqrt(H))` over the real tokens weights
    their states. The query starts at zero, i.e. as mean pooling, and trains with the head.
    """

    name = "attention"

    @override
    def build(self, hidden_size: int) -> None:
        self.query = nn.Parameter(torch.zeros(hidden_size))  # (H,)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """A weighted mean of `(B, T, H)` over the real tokens, to `(B, H)`."""
        if not hasattr(self, "query"):
            raise RuntimeError("AttentionPooling has no query yet: build(hidden_size) creates it (the head does)")
        return pool_attention(hidden, attention_mask, self.query)


def default_pooling(config: PretrainedConfig) -> Pooling:
    """An encoder's first token ([CLS]); a decoder's last real token (LS-LLaMA). The CLI calls it at parse time too,
    so run names and `--print_config` show the pooling the model will use."""
    return FirstTokenPooling() if is_encoder_config(config) else LastTokenPooling()
