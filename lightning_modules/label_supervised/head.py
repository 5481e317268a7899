"""The classification head: what maps the backbone's final hidden states to label logits, as one module.

Sequence tasks: pooling -> dropout -> linear (`score`); token tasks: dropout -> linear on every token. The pooling
is part of the head, so a pooling with weights (`AttentionPooling`) trains, is checkpointed, exported and loaded with
it; a pooling that pools label logits instead of states (`LogitMaxPooling`, `Pooling.pools_logits`) runs after the
linear layer. The head is built after the backbone (it needs the hidden size) and trains in full beside LoRA.

The linear layer is named and shaped like transformers' heads (`score`; no bias for sequences, a bias for tokens,
as `*ForSequenceClassification` / `*ForTokenClassification`), so merged exports can hand it to them.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from lightning_modules.label_supervised.pooling import Pooling


class ClassificationHead(nn.Module):
    """Pooling (sequence tasks) -> dropout -> linear, or dropout -> linear per token (token tasks).

    Args:
        hidden_size: the backbone's hidden size `H`.
        num_labels: the number of labels `C`.
        task: `sequence` (one label per example, pooled) or `token` (a label per token).
        pooling: how a sequence becomes one vector (built here for `hidden_size`); unused for tokens, may be None.
        dropout: dropout before the linear layer.
    """

    def __init__(
        self,
        hidden_size: int,
        num_labels: int,
        task: Literal["sequence", "token"],
        pooling: Pooling | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if task == "sequence" and pooling is None:
            raise ValueError("a sequence classification head needs a pooling")
        self.task = task
        self.pooling = pooling  # kept for token tasks too (it names the run's setting), but neither built nor used
        if task == "sequence":
            pooling.build(hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.score = nn.Linear(hidden_size, num_labels, bias=task == "token")

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits `(B, C)` (sequences) or `(B, T, C)` (tokens) from `hidden (B, T, H)`, `attention_mask (B, T)`."""
        hidden = hidden.to(self.score.weight.dtype)  # a bf16 backbone under a float32 head
        if self.task == "token":
            return self.score(self.dropout(hidden))  # (B, T, C)
        if self.pooling.pools_logits:
            return self.pooling(self.score(self.dropout(hidden)), attention_mask)  # (B, T, C) -> (B, C)
        return self.score(self.dropout(self.pooling(hidden, attention_mask)))  # (B, H) -> (B, C)


# head parameter names before the head was one module (checkpoints and exports of 2026-11): the linear layer alone
OLD_HEAD_KEYS = {"weight": "score.weight", "bias": "score.bias"}


def upgrade_head_keys(state: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """A state dict whose old head keys (`<prefix>weight`, `<prefix>bias`) are renamed to the head's
    (`<prefix>score.weight`, ...); other keys are kept."""
    renamed = {}
    for key, value in state.items():
        rest = key[len(prefix) :] if key.startswith(prefix) else None
        renamed[prefix + OLD_HEAD_KEYS[rest] if rest in OLD_HEAD_KEYS else key] = value
    return renamed
