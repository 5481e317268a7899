"""What trains: a folder per method over a shared backbone folder; configs name the public classes as
`lightning_modules.<Class>`.

- `backbone/`: loading, LoRA/QLoRA, FSDP, compile, attention-mask strategies (`MASKS`) and the probe;
- `label_supervised/`: `LabelSupervisedModule` (LS-LLaMA, LS-unLLaMA, encoders), its head and poolings (`POOLINGS`);
- `prompting/`: `ZeroShotModule`, `InstructionTuningModule`, prompts (`PROMPTS`), decoding, answer parsing;
- `adaptation/`: `MaskedNextTokenModule` (MNTP);
- `training.py`, `metrics.py`: what the trainable modules share.
"""

import sys

from lightning_modules import adaptation, label_supervised, prompting
from lightning_modules.adaptation.mntp import MaskedNextTokenModule
from lightning_modules.backbone import masks, probe
from lightning_modules.backbone.masks import (
    MASKS,
    AttentionMaskStrategy,
    BidirectionalFromLayer,
    BidirectionalMask,
    CausalMask,
)
from lightning_modules.backbone.probe import AttentionProbeError, verify_attention
from lightning_modules.label_supervised.module import LabelSupervisedModule
from lightning_modules.label_supervised.pooling import (
    POOLINGS,
    AttentionPooling,
    FirstTokenPooling,
    LastTokenPooling,
    LogitMaxPooling,
    MaxPooling,
    MeanPooling,
    Pooling,
)
from lightning_modules.prompting.instruction_tuning import InstructionTuningModule
from lightning_modules.prompting.prompts import PROMPTS, ClassificationPrompt, EntityPrompt, PromptFormatter
from lightning_modules.prompting.zero_shot import PromptedLM, ZeroShotModule

__all__ = [
    "MASKS",
    "POOLINGS",
    "PROMPTS",
    "AttentionMaskStrategy",
    "AttentionPooling",
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
    "LogitMaxPooling",
    "MaskedNextTokenModule",
    "MaxPooling",
    "MeanPooling",
    "Pooling",
    "PromptFormatter",
    "PromptedLM",
    "ZeroShotModule",
    "verify_attention",
]

# Checkpoints and exports written before the folders per method (2026-12) name classes by their old modules
# (`lightning_modules.attention_masks.CausalMask` in their mask/pooling/prompt specs): those still resolve.
for _old, _new in {
    "attention_masks": masks,
    "attention_probe": probe,
    "pooling": label_supervised.pooling,
    "prompts": prompting.prompts,
    "instruction_tuning": prompting.instruction_tuning,
    "mntp": adaptation.mntp,
}.items():
    sys.modules.setdefault(f"{__name__}.{_old}", _new)
