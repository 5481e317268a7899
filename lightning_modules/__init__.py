"""Models: the LabelSupervisedModule, its attention-mask strategies, pooling heads and builders."""

from lightning_modules.attention_masks import (
    MASKS,
    AttentionMaskStrategy,
    BidirectionalFromLayer,
    BidirectionalMask,
    CausalMask,
)
from lightning_modules.attention_probe import AttentionProbeError, verify_attention
from lightning_modules.label_supervised import LabelSupervisedModule
from lightning_modules.pooling import (
    POOLINGS,
    FirstTokenPooling,
    LastTokenPooling,
    MaxPooling,
    MeanPooling,
    Pooling,
)

__all__ = [
    "MASKS",
    "POOLINGS",
    "AttentionMaskStrategy",
    "AttentionProbeError",
    "BidirectionalFromLayer",
    "BidirectionalMask",
    "CausalMask",
    "FirstTokenPooling",
    "LabelSupervisedModule",
    "LastTokenPooling",
    "MaxPooling",
    "MeanPooling",
    "Pooling",
    "verify_attention",
]
