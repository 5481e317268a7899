"""`torch.compile` of the backbone, switched by `model.compile`.

Regional compilation: each transformer block is compiled in place (`nn.Module.compile`, so parameter names and
checkpoints do not change), which is how PyTorch recommends compiling a stack of identical blocks: the block is
compiled once and reused by every layer, cutting the compile time by about the number of layers compared with
compiling the whole model, for the same steady-state speed. Mask creation, embeddings, pooling and the head stay
eager. Batches of varying length recompile once and then run with a dynamic sequence dimension.

The attention probe runs on the compiled model, so a strategy that compilation broke is caught before training.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from lightning_modules.backbone.masks import decoder_layers

# `torch.compile` options used by `model.compile: true` (the defaults: inductor, dynamic shapes after a recompile).
COMPILE_OPTIONS: dict[str, Any] = {}


def compile_blocks(backbone: nn.Module, **options: Any) -> int:
    """Compile every transformer block of `backbone` (possibly peft-wrapped) in place; returns how many.

    Args:
        backbone: the backbone, bare or wrapped by peft.
        **options: `torch.compile` options (`mode`, `dynamic`, `fullgraph`, `backend`); default `COMPILE_OPTIONS`.
    """
    _, layers = decoder_layers(backbone)
    for block in layers:
        block.compile(**(options or COMPILE_OPTIONS))
    return len(layers)
