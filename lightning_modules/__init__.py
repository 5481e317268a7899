"""Models: the LabelSupervisedModule, its attention-mask strategies, pooling heads and builders."""

from lightning_modules.attention_masks import (
    MASKS,
    AttentionMaskStrategy,
    BidirectionalFromLayer,
    BidirectionalMask,
    CausalMask,
)
from lightning_modules.attention_probe import AttentionProbeError, verify_attention
from lightning_modules.instruction_tuning import InstructionTuningModule
from lightning_modules.label_supervised import LabelSupervisedModule
from lightning_modules.mntp import MaskedNextTokenModule
from lightning_modules.pooling import (
    POOLINGS,
    FirstTokenPooling,
    LastTokenPooling,
    MaxPooling,
    MeanPooling,
    Pooling,
)
from lightning_modules.prompting import PromptedLM, ZeroShotModule
from lightning_modules.prompts import PROMPTS, ClassificationPrompt, EntityPrompt, PromptFormatter

__all__ = [
    "MASKS",
    "POOLINGS",
    "PROMPTS",
    "AttentionMaskStrategy",
    "AttentionProbeError",
    "BidirectionalFromLayer",
    "BidirectionalMask",
    "CausalMask",
    "ClassificationPrompt",
    "EntityPrompt",
    "FirstTokenPooling",
    "InstructionTuningModule",
    "LabelSupervisedModule",
    "LastTokenPooling",
    "MaskedNextTokenModule",
    "MaxPooling",
    "MeanPooling",
    "Pooling",
    "PromptFormatter",
    "PromptedLM",
    "ZeroShotModule",
    "verify_attention",
]
