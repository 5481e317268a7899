"""A cheap probe that checks, on the real model, that an attention-mask strategy took effect.

Change the last real token of a sequence and watch the first real token's hidden state in every layer: it must
move exactly in the layers where the strategy promises right context, and stay put elsewhere. Change a pad token
and no real token may move at all (padding is always masked). The probe runs for a batch of one without padding
(where transformers skips building a mask), a right-padded and a left-padded batch, so that a strategy that only
works through the mask tensor is caught.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from lightning_modules.backbone.masks import AttentionMaskStrategy

# Relative change ||h - h'|| / ||h|| above which a hidden state counts as "moved". An unchanged causal prefix is
# bit-identical (masked scores are exactly zero after softmax); a real dependence moves it by far more.
MOVE_TOLERANCE = {torch.float32: 1e-6, torch.float64: 1e-9}
HALF_PRECISION_TOLERANCE = 1e-4


def probe_length(config: Any, longest: int = 9) -> int:
    """The probe's sequence length: `longest`, or the model's sliding window where that is shorter (at least 3), so
    that the last token lies within every layer's reach of the first."""
    window = getattr(config, "sliding_window", None)
    return max(3, min(longest, window)) if isinstance(window, int) and window > 0 else longest


class AttentionProbeError(RuntimeError):
    """The model does not attend the way its mask strategy promises."""


def _relative_change(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float(), b.float()
    return ((a - b).norm() / a.norm().clamp_min(1e-12)).item()


def _another_id(token: int, vocab_size: int, pad_token_id: int) -> int:
    for candidate in (token + 1, token - 1, token + 2, token - 2):
        if 0 <= candidate < vocab_size and candidate != pad_token_id:
            return candidate
    raise ValueError(f"vocabulary of {vocab_size} is too small to probe")


ProbeCase = tuple[str, torch.Tensor, torch.Tensor, int, int, int, int | None]


def _probe_batches(
    vocab_size: int, pad_token_id: int, length: int, generator: torch.Generator, left_padding: bool
) -> Iterator[ProbeCase]:
    """Yield (case name, input_ids (B, T), attention_mask (B, T), row, first real, last real, pad position)."""
    low = min(10, vocab_size - 2)
    ids = torch.randint(low, vocab_size, (2, length), generator=generator)
    ids[ids == pad_token_id] = low + 1
    n_pad = length // 3
    yield "batch of 1 without padding", ids[:1], torch.ones(1, length, dtype=torch.long), 0, 0, length - 1, None
    right = ids.clone()
    right_mask = torch.ones(2, length, dtype=torch.long)
    right[1, -n_pad:], right_mask[1, -n_pad:] = pad_token_id, 0
    yield "right-padded batch of 2", right, right_mask, 1, 0, length - n_pad - 1, length - 1
    left = ids.clone()
    left_mask = torch.ones(2, length, dtype=torch.long)
    left[1, :n_pad], left_mask[1, :n_pad] = pad_token_id, 0
    if left_padding:
        yield "left-padded batch of 2", left, left_mask, 1, n_pad, length - 1, 0


@torch.no_grad()
def verify_attention(
    forward: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]],
    strategy: AttentionMaskStrategy,
    *,
    module: nn.Module,
    vocab_size: int,
    pad_token_id: int,
    device: torch.device | str = "cpu",
    length: int = 9,
    attn_implementation: str = "?",
    left_padding: bool = True,
) -> dict[str, list[float]]:
    """Check that `forward` attends the way `strategy` promises; raise `AttentionProbeError` otherwise.

    Args:
        forward: `(input_ids, attention_mask) -> hidden states of every layer`, a tuple of `(B, T, H)` tensors
            whose entry `l + 1` is the output of transformer layer `l` (transformers' `output_hidden_states`).
        strategy: the strategy whose promise (`sees_right_context`) is checked.
        module: the module to put in eval mode while probing (restored afterwards).
        vocab_size: ids are drawn below this.
        pad_token_id: id written at padded positions.
        device: where the probe tensors go.
        length: probe sequence length.
        attn_implementation: named in the error message.
        left_padding: also probe a left-padded batch. Off for encoders, which pad on the right and may number
            positions from the ids (RoBERTa), so that a changed pad id would shift the real tokens' positions.

    Returns:
        For each case, the relative change of the first real token's state per layer.
    """
    was_training = module.training
    module.eval()
    generator = torch.Generator().manual_seed(0)
    report: dict[str, list[float]] = {}
    try:
        for case, ids, mask, row, first, last, pad_pos in _probe_batches(
            vocab_size, pad_token_id, length, generator, left_padding
        ):
            ids, mask = ids.to(device), mask.to(device)
            base = forward(ids, mask)
            tol = MOVE_TOLERANCE.get(base[-1].dtype, HALF_PRECISION_TOLERANCE)
            changed = ids.clone()
            changed[row, last] = _another_id(int(ids[row, last]), vocab_size, pad_token_id)
            moved = forward(changed, mask)
            changes = [
                _relative_change(base[i + 1][row, first], moved[i + 1][row, first]) for i in range(len(base) - 1)
            ]
            report[case] = changes
            for layer, change in enumerate(changes):
                expected = strategy.sees_right_context(layer)
                if expected != (change > tol):
                    raise AttentionProbeError(
                        f"{strategy!r} did not take effect ({attn_implementation} attention, {case}): changing "
                        f"token {last} {'did not move' if expected else 'moved'} token {first}'s hidden state in "
                        f"layer {layer} (relative change {change:.2e}, tolerance {tol:.0e}); expected it "
                        f"{'to move (right context visible)' if expected else 'to stay (no right context)'}."
                    )
            if pad_pos is not None:
                _check_padding_masked(
                    forward, ids, mask, row, pad_pos, base, tol, strategy, case, attn_implementation, vocab_size
                )
    finally:
        module.train(was_training)
    return report


def _check_padding_masked(
    forward: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]],
    ids: torch.Tensor,
    mask: torch.Tensor,
    row: int,
    pad_pos: int,
    base: tuple[torch.Tensor, ...],
    tol: float,
    strategy: AttentionMaskStrategy,
    case: str,
    attn_implementation: str,
    vocab_size: int,
) -> None:
    """Changing a pad token's id must not move any real token in any layer."""
    changed = ids.clone()
    changed[row, pad_pos] = (ids[row, pad_pos] + 7) % vocab_size
    moved = forward(changed, mask)
    real = mask[row].bool()
    for layer in range(len(base) - 1):
        change = _relative_change(base[layer + 1][row][real], moved[layer + 1][row][real])
        if change > tol:
            raise AttentionProbeError(
                f"{strategy!r} attends to padding ({attn_implementation} attention, {case}): changing the pad "
                f"token at position {pad_pos} moved real tokens in layer {layer} (relative change {change:.2e})."
            )
