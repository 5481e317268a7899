"""Poolings against hand-computed tensors, for left and right padding."""

from __future__ import annotations

import pytest
import torch

from core.class_paths import from_spec
from lightning_modules.label_supervised.pooling import (
    POOLINGS,
    FirstTokenPooling,
    LastTokenPooling,
    MaxPooling,
    MeanPooling,
    Pooling,
)

# Two sequences, hidden size 2. Row 0 has 3 real tokens, row 1 has 2; pads hold huge values that must never show.
REAL = [
    [[1.0, -4.0], [3.0, 2.0], [-2.0, 0.0]],
    [[5.0, 1.0], [-1.0, 7.0]],
]
PAD = [100.0, -100.0]


def padded(side: str) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in REAL)
    rows, masks = [], []
    for real in REAL:
        pads = [PAD] * (width - len(real))
        rows.append(pads + real if side == "left" else real + pads)
        masks.append([0] * len(pads) + [1] * len(real) if side == "left" else [1] * len(real) + [0] * len(pads))
    return torch.tensor(rows), torch.tensor(masks)


EXPECTED = {
    "last": [[-2.0, 0.0], [-1.0, 7.0]],
    "first": [[1.0, -4.0], [5.0, 1.0]],
    "mean": [[2.0 / 3.0, -2.0 / 3.0], [2.0, 4.0]],
    "max": [[3.0, 2.0], [5.0, 7.0]],
}


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("cls", [LastTokenPooling, FirstTokenPooling, MeanPooling, MaxPooling])
def test_pooling_ignores_padding(cls, side):
    hidden, mask = padded(side)
    torch.testing.assert_close(cls()(hidden, mask), torch.tensor(EXPECTED[cls.name]))


def test_max_pooling_of_all_negative_states_is_not_the_pad_value():
    hidden = torch.tensor([[[-5.0], [-3.0], [0.0]]])  # the pad (last) holds 0, larger than every real value
    assert MaxPooling()(hidden, torch.tensor([[1, 1, 0]])).item() == -3.0


def test_bf16_pooling_keeps_dtype():
    hidden, mask = padded("right")
    out = MaxPooling()(hidden.bfloat16(), mask)
    assert out.dtype == torch.bfloat16 and out[1, 1].item() == 7.0


def test_pooling_by_name_and_unknown_name():
    assert isinstance(from_spec("mean", Pooling, "model.pooling", POOLINGS), MeanPooling)
    with pytest.raises(ValueError, match="model.pooling: lightning_modules has no class 'median'"):
        from_spec("median", Pooling, "model.pooling", POOLINGS)
