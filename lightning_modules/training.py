"""What the modules share: the backbone arguments (`BackboneModule`: every module) and the training arguments
(`FinetunedModule`: label supervision, instruction tuning, MNTP), each defined and documented once; checkpoints that
hold only the trained weights, the default optimizer and schedule, the attention probe before the first step, and
the checks of the label names the data module hands over.

A module adds its own arguments and hands the rest on (`def __init__(self, mask=..., **kwargs): super().__init__(
**kwargs)`); jsonargparse follows `**kwargs` to these classes, so configs stay flat (`model.init_args.lora_r`) and
`--model.help` lists every argument once, with its documentation.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any, ClassVar, Literal

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from transformers import AutoModel, PreTrainedModel, get_linear_schedule_with_warmup
from typing_extensions import override

from core.class_paths import restrict_imports
from lightning_modules.backbone.builders import Finetuning, apply_finetuning, build_backbone
from lightning_modules.backbone.probe import probe_length, verify_attention
from lightning_modules.backbone.quantization import Quantization

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


def _labels(hparams: Any) -> tuple[str, list[str]]:
    names = list(hparams.get("label_names") or [str(i) for i in range(hparams.get("num_labels") or 0)])
    return str(hparams.get("task")), names


def check_same_labels(stored: Any, current: Any) -> None:
    """Refuse a checkpoint trained for another task or label set than the data it is now given: its head answers
    other questions (a checkpoint of SST-2 tested on CoNLL-2003 would otherwise fail on a missing weight).

    Raises:
        ValueError: naming both tasks and label sets.
    """
    if not stored.get("task"):
        return
    (task, names), (now_task, now_names) = _labels(stored), _labels(current)
    if (task, names) != (now_task, now_names):
        shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        now_shown = ", ".join(now_names[:6]) + (", ..." if len(now_names) > 6 else "")
        raise ValueError(
            f"the checkpoint was trained for {task} classification with {len(names)} labels ({shown}); the data given "
            f"now is {now_task} classification with {len(now_names)} labels ({now_shown}): give it data of its own "
            "task and labels (its data module, or data.init_args.label_names in the checkpoint's order)"
        )


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

    checks_labels: ClassVar[bool] = True  # False where labels are not used (MNTP)

    @override
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.checks_labels:
            check_same_labels(checkpoint.get("hyper_parameters") or {}, self.hparams)
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


class BackboneModule(LightningModule):
    """Base of every model here: a transformer backbone from a source (or random) and the data module's ids.

    Args:
        backbone: hub name, local folder, `.gguf` file or `pkg://package/file` of the pretrained backbone;
            None to build a randomly initialised one from `backbone_config`.
        backbone_config: with `backbone`, config attributes to override; without it, the whole config of a
            random backbone (`model_type` plus its arguments, e.g. a 2-layer `llama`).
        attn_implementation: `sdpa`, `eager`, `flash_attention_2`, `flex_attention`; None = transformers' default.
        dtype: dtype of the backbone weights: `float32`, `bfloat16` (e.g. a 7B model on a 24 GB card; LoRA
            weights and heads stay float32), `float16` or `auto`.
        gradient_checkpointing: recompute activations in the backward pass to save memory.
        backbone_seed: seed of a randomly initialised backbone, so a checkpoint can rebuild its frozen weights.
        task: `sequence` or `token` classification (linked from the data module).
        num_labels: number of labels (linked from the data module).
        label_names: label names by id (linked from the data module).
        pad_token_id: the tokenizer's pad id (linked from the data module).
        vocab_size: the tokenizer's vocabulary size (linked; sizes random backbones, checked against others).
    """

    def __init__(
        self,
        backbone: str | None = None,
        backbone_config: dict[str, Any] | None = None,
        attn_implementation: str | None = None,
        dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32",
        gradient_checkpointing: bool = False,
        backbone_seed: int = 0,
        task: Literal["sequence", "token"] = "sequence",
        num_labels: int = 2,
        label_names: list[str] | None = None,
        pad_token_id: int | None = None,
        vocab_size: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # every argument of the calling subclasses too
        self.label_names, self.outside_label = checked_label_names(label_names, num_labels, task)
        self.task, self.num_labels, self.pad_token_id = task, num_labels, pad_token_id

    def load_backbone(self, auto_class: type = AutoModel, quantization: Quantization | None = None) -> PreTrainedModel:
        """The backbone as the arguments describe it (`builders.build_backbone`): the bare transformer, or with
        `auto_class=AutoModelForCausalLM` the decoder with its language-model head."""
        hp = self.hparams
        settings = {name: hp[name] for name in ("dtype", "attn_implementation", "pad_token_id", "vocab_size")}
        settings.update(seed=hp.backbone_seed, gradient_checkpointing=hp.gradient_checkpointing)
        return build_backbone(
            hp.backbone, hp.backbone_config, auto_class=auto_class, quantization=quantization, **settings
        )


class FinetunedModule(TrainedWeightsCheckpoints, BackboneModule):
    """A `BackboneModule` that trains: how (LoRA, full, head-only), and with which optimizer and schedule.

    Args:
        finetuning: `lora` (adapters on the backbone), `full` (every backbone weight), or `head` (frozen backbone).
        lora_r: LoRA rank (paper: 12).
        lora_alpha: LoRA scaling alpha (paper: 32).
        lora_dropout: dropout on the LoRA input (paper: 0.1).
        lora_target_modules: module names to adapt; None = peft's default for the architecture (`q_proj`,
            `v_proj` for LLaMA, as the paper's authors used).
        optimizer: optimizer over the trainable parameters; None = AdamW at the module's `default_lr` (label
            supervision: 8e-5, the paper's), no weight decay.
        scheduler: learning-rate scheduler (stepped every optimizer step); None = linear decay to zero after
            `warmup_ratio` of linear warm-up (transformers Trainer's default, which the paper used).
        warmup_ratio: fraction of the training steps spent warming up (default scheduler only).
    """

    default_lr: ClassVar[float] = 8e-5

    def __init__(
        self,
        finetuning: Finetuning = "lora",
        lora_r: int = 12,
        lora_alpha: int = 32,
        lora_dropout: float = 0.1,
        lora_target_modules: list[str] | None = None,
        optimizer: OptimizerCallable | None = None,
        scheduler: LRSchedulerCallable | None = None,
        warmup_ratio: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.finetuning, self.warmup_ratio = finetuning, warmup_ratio
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        for key in ("optimizer", "scheduler"):
            if callable(self.hparams.get(key)):
                self.hparams[key] = None  # a Python callable (not from a config) cannot be stored as data
        self.strict_loading = False  # checkpoints hold only the trained weights; see on_load_checkpoint

    def finetune(self, model: nn.Module) -> nn.Module:
        """`model` set up for the configured finetuning (`builders.apply_finetuning`: LoRA adapters, or all weights
        trainable, or frozen)."""
        hp = self.hparams
        lora = {"r": hp.lora_r, "alpha": hp.lora_alpha, "dropout": hp.lora_dropout}
        return apply_finetuning(model, self.finetuning, target_modules=hp.lora_target_modules, **lora)

    @override
    def configure_optimizers(self) -> Any:
        return optimizers_with_warmup(
            self, self.optimizer_factory, self.scheduler_factory, self.warmup_ratio, self.default_lr
        )
