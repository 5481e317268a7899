"""Pooling: one vector per sequence from the final hidden states, always ignoring padding; the registry `POOLINGS`.

Every pooling maps `hidden (B, T, H)` and `attention_mask (B, T)` (1 = real token, 0 = pad) to `(B, H)`, for left
and right padding alike. Add a pooling by subclassing `Pooling` with a `name` (defining the class registers it):
`model.pooling: <name>` or `model.pooling: {class_path: my_package.MyPooling}` in a config.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from typing_extensions import override

from lightning_modules.attention_masks import register

POOLINGS: dict[str, type[Pooling]] = {}


class Pooling(nn.Module):
    """Base class of poolings; `name` appears in run names and tags."""

    name = "base"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            register(POOLINGS, cls, "pooling")

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
        positions = torch.arange(hidden.shape[1], device=hidden.device)  # (T,)
        last = (positions * attention_mask.bool()).argmax(dim=1)  # (B,)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # (B, H)


class FirstTokenPooling(Pooling):
    """The hidden state of the first (leftmost) non-pad token: the [CLS] position of BERT-family encoders."""

    name = "first"

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pool `(B, T, H)` to `(B, H)` at the leftmost position whose mask is 1."""
        first = attention_mask.bool().int().argmax(dim=1)  # (B,) first 1 in each row
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), first]  # (B, H)


class MeanPooling(Pooling):
    """The mean of the hidden states of the non-pad tokens."""

    name = "mean"

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Average `(B, T, H)` over the real tokens to `(B, H)`."""
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)  # (B, H)


class MaxPooling(Pooling):
    """The element-wise maximum over the non-pad tokens: LS-unLLaMA's best pooling in the paper."""

    name = "max"

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Max of `(B, T, H)` over the real tokens, to `(B, H)`."""
        pad = ~attention_mask.bool().unsqueeze(-1)  # (B, T, 1)
        return hidden.masked_fill(pad, torch.finfo(hidden.dtype).min).amax(dim=1)  # (B, H)


def build_pooling(pooling: Pooling | str) -> Pooling:
    """A pooling from an instance or one of the names `last`, `first`, `mean`, `max`."""
    if isinstance(pooling, Pooling):
        return pooling
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}: expected one of {sorted(POOLINGS)} or a Pooling instance")
    return POOLINGS[pooling]()
