"""Padding-free packed batches: all sequences of a batch in one row, each attending only to itself.

A packed batch holds `packed_input_ids (1, S)` with `S` = the batch's real tokens, `packed_position_ids (1, S)`
restarting at 0 for every sequence, and `packed_sequence_ids (1, S)` (which sequence a token belongs to). The
backbone runs on the packed row with a block-diagonal attention mask (also lower-triangular when the model is
causal), built here for eager and sdpa attention; flash attention gets no mask and finds the sequences from the
restarting position ids (transformers' varlen path). The hidden states are then unpacked to the usual `(B, T, H)`
padded layout, so pooling, heads, losses and metrics are exactly those of unpacked batches.
"""

from __future__ import annotations

import torch

PACKED_KEYS = ("packed_input_ids", "packed_position_ids", "packed_sequence_ids")


def pack(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Packed fields of a RIGHT-padded batch `input_ids (B, T)`, `attention_mask (B, T)`."""
    real = attention_mask.bool()  # (B, T)
    positions = attention_mask.long().cumsum(1) - 1  # (B, T), restarts per sequence
    sequence_ids = torch.arange(len(input_ids)).unsqueeze(1).expand_as(input_ids)  # (B, T)
    return {
        "packed_input_ids": input_ids[real].unsqueeze(0),  # (1, S), sequences one after the other
        "packed_position_ids": positions[real].unsqueeze(0),  # (1, S)
        "packed_sequence_ids": sequence_ids[real].unsqueeze(0),  # (1, S)
    }


def packed_attention_mask(
    sequence_ids: torch.Tensor, causal: bool, attn_implementation: str, dtype: torch.dtype
) -> torch.Tensor | None:
    """The 4D mask `(1, 1, S, S)` that keeps each packed sequence to itself (None for flash attention).

    Args:
        sequence_ids: `(1, S)` sequence index of every packed token.
        causal: also forbid attending to later tokens of the same sequence.
        attn_implementation: the backbone's attention implementation.
        dtype: dtype of the additive mask that eager attention needs.
    """
    if attn_implementation.startswith("flash"):
        return None  # transformers detects the packed sequences from the restarting position ids
    if attn_implementation not in ("sdpa", "eager"):
        raise ValueError(f"packed batches support eager, sdpa and flash attention, not {attn_implementation!r}")
    allowed = sequence_ids[:, :, None] == sequence_ids[:, None, :]  # (1, S, S) same sequence
    if causal:
        allowed = allowed.tril()
    allowed = allowed.unsqueeze(1)  # (1, 1, S, S)
    if attn_implementation == "sdpa":
        return allowed  # True = attend
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed, torch.finfo(dtype).min)


def unpack(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Hidden states `(1, S, H)` of a packed row back to the right-padded layout `(B, T, H)` of `attention_mask`."""
    batch, width = attention_mask.shape
    out = hidden.new_zeros(batch, width, hidden.shape[-1])  # (B, T, H)
    out[attention_mask.bool()] = hidden[0]
    return out
