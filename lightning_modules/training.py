"""What the trainable modules share (label supervision, instruction tuning, MNTP): checkpoints that hold only the
trained weights, the default optimizer and schedule, the attention probe before the first step, and the checks of the
label names the data module hands over."""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from transformers import get_linear_schedule_with_warmup
from typing_extensions import override

from core.class_paths import restrict_imports
from lightning_modules.backbone.probe import probe_length, verify_attention

log = logging.getLogger(__name__)


def checked_label_names(label_names: list[str] | None, num_labels: int, task: str) -> tuple[list[str], int | None]:
    """The label names (`"0"`, `"1"`, ... when none are given) and, for token tasks, the id of the `O` tag.

    Raises:
        ValueError: names and `num_labels` disagree, or a token task has no `O` tag.
    """
    names = list(label_names) if label_names else [str(i) for i in range(num_labels)]
    if len(names) != num_labels:
        raise ValueError(f"model.label_names has {len(names)} names but num_labels={num_labels}")
    outside = names.index("O") if task == "token" and "O" in names else None
    if task == "token" and outside is None:
        raise ValueError(f"token classification needs an 'O' tag in label_names, got {names}")
    return names, outside


def optimizers_with_warmup(
    module: LightningModule,
    optimizer: OptimizerCallable | None,
    scheduler: LRSchedulerCallable | None,
    warmup_ratio: float,
    default_lr: float,
) -> dict[str, Any]:
    """`configure_optimizers`' result over the trainable parameters only: `optimizer` (default AdamW at `default_lr`,
    no weight decay) and `scheduler` stepped every optimizer step (default: linear warm-up over `warmup_ratio` of
    the steps, then linear decay to zero, transformers Trainer's default)."""
    params = [p for p in module.parameters() if p.requires_grad]
    built = optimizer(params) if optimizer is not None else torch.optim.AdamW(params, lr=default_lr, weight_decay=0.0)
    if scheduler is not None:
        schedule = scheduler(built)
    else:
        total = module.trainer.estimated_stepping_batches
        total = int(total) if math.isfinite(total) else 10**9
        schedule = get_linear_schedule_with_warmup(built, int(warmup_ratio * total), total)
    return {"optimizer": built, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class TrainedWeightsCheckpoints(LightningModule):
    """Checkpoints that hold only what training changes (LoRA adapters, heads, or every weight when fully
    finetuned), not the frozen backbone, and that load only classes of the allowed packages (`core.class_paths`).

    A checkpoint is loaded into a model built from its hyper-parameters (the frozen weights come from the backbone
    source again); `on_load_checkpoint` refuses one that lacks a trained weight this model needs.
    """

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Only what training changes."""
        trainable = {name for name, p in self.named_parameters() if p.requires_grad}
        return {k: v for k, v in self.state_dict().items() if k in trainable}

    @override
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # filter what the strategy gathered (under FSDP: full tensors on rank 0; `self.state_dict()` holds shards)
        trainable = {name for name, p in self.named_parameters() if p.requires_grad}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in trainable}

    @override
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        missing = set(self.trainable_state_dict()) - set(checkpoint["state_dict"])
        if missing:
            raise KeyError(
                f"checkpoint lacks {len(missing)} trained weights this model needs, e.g. {sorted(missing)[:3]}: "
                "was it written with another finetuning or LoRA setting (finetuning, lora_r, lora_target_modules)?"
            )

    @classmethod
    @override
    def load_from_checkpoint(cls, checkpoint_path: Any, *args: Any, **kwargs: Any) -> Any:
        """Lightning's `load_from_checkpoint`, with jsonargparse limited to classes of the allowed packages
        (`core.class_paths`) while it parses the stored hyper-parameters."""
        restrict_imports()
        with warnings.catch_warnings():  # the frozen weights are missing by design; on_load_checkpoint checks
            warnings.filterwarnings("ignore", message="Found keys that are in the model state dict but not in the")
            return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)


class ProbedAttention(LightningModule):
    """Runs the attention probe (`verify_attention`) on the real model, once per device, before the first
    fit / validation / test / predict step, so a mask strategy that did not take effect stops the run.

    A subclass sets `self.mask` (its `AttentionMaskStrategy`), `self.pad_token_id`, `self.verify_mask_enabled`,
    implements `hidden_states(input_ids, attention_mask, **kwargs)` and `probed_model()` (the transformers model
    whose config and embeddings the probe reads), and may set `probe_left_padding` (False for encoders that number
    positions from the ids).
    """

    probe_left_padding = True

    def probed_model(self) -> nn.Module:
        """The transformers model that the strategy was applied to."""
        raise NotImplementedError

    def verify_mask(self) -> dict[str, list[float]]:
        """Probe the model on its current device: raises `AttentionProbeError` if the strategy did not take effect."""
        model = self.probed_model()
        device = next(model.parameters()).device
        report = verify_attention(
            lambda ids, mask: self.hidden_states(ids, mask, output_hidden_states=True).hidden_states,
            self.mask,
            module=self,
            vocab_size=model.get_input_embeddings().num_embeddings,
            pad_token_id=self.pad_token_id if self.pad_token_id is not None else 0,
            device=device,
            attn_implementation=model.config._attn_implementation,
            left_padding=self.probe_left_padding,
            length=probe_length(model.config),
        )
        self._verified_on = {*getattr(self, "_verified_on", set()), str(device)}
        log.info("attention probe passed for %r on %s", self.mask, device)
        return report

    def _verify_once(self) -> None:
        if self.verify_mask_enabled and str(self.device) not in getattr(self, "_verified_on", set()):
            self.verify_mask()

    @override
    def on_fit_start(self) -> None:
        # `from_pretrained` returns a model in eval mode and Lightning keeps modules' modes: train with dropout
        self.train()
        self._verify_once()

    @override
    def on_validation_start(self) -> None:
        self._verify_once()

    @override
    def on_test_start(self) -> None:
        self._verify_once()

    @override
    def on_predict_start(self) -> None:
        self._verify_once()
