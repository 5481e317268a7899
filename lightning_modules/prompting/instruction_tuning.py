"""`InstructionTuningModule`: the paper's instruction-tuning baseline (Table 2, LLaMA-2-7B, section 3.2).

The causal LM is finetuned (LoRA, the LS configs' settings) to answer the paper's prompt with the label's name:
each training example is prompt + answer (verbalization + eos, `PromptEncoder(with_response=True)`), and the loss
is the causal-LM cross-entropy of the answer tokens only: prompt and padding tokens are no targets
(`decoding.response_cross_entropy`). Evaluation is `PromptedLM`'s: generation parsed into a label, and the
likelihood of each label's answer. The paper's recipe (batch 16, lr 2e-4, 10k steps under 50k training examples,
50k above) is in configs/method/instruction_tuning.yaml. NER works the same way, the answer listing the entities.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from typing_extensions import override

from lightning_modules.backbone.builders import Finetuning, apply_finetuning, log_trainable
from lightning_modules.prompting.decoding import causal_lm_parts, forward_hidden, response_cross_entropy
from lightning_modules.prompting.prompts import PromptFormatter
from lightning_modules.prompting.zero_shot import PromptedLM, Reading
from lightning_modules.training import TrainedWeightsCheckpoints, optimizers_with_warmup


class InstructionTuningModule(TrainedWeightsCheckpoints, PromptedLM):
    """Instruction tuning of a causal LM on prompt -> label-name answers; evaluated like `ZeroShotModule`.

    Args:
        backbone: hub name, folder, `.gguf` file or `pkg://package/file` of the causal LM.
        backbone_config: config overrides, or (without `backbone`) the whole config of a random LM.
        prompt: the prompt formatter; None = the paper's prompt (sequence tasks) or `EntityPrompt` (token tasks).
        chat_template: wrap prompts (and answers) in the tokenizer's chat template; None = where it has one.
        readings: `generate` and/or `likelihood` (see `PromptedLM`).
        score_reading: the reading logged as `<split>/score` (checkpoint selection, tables).
        max_new_tokens: the most tokens generated per answer; None = 32 (classification) or 96 (NER).
        finetuning: `lora` (adapters) or `full` (every weight).
        lora_r: LoRA rank (paper: 12).
        lora_alpha: LoRA scaling alpha (paper: 32).
        lora_dropout: dropout on the LoRA input (paper: 0.1).
        lora_target_modules: module names to adapt; None = peft's default (`q_proj`, `v_proj` for LLaMA).
        attn_implementation: `sdpa`, `eager`, `flash_attention_2`, ...; None = transformers' default.
        dtype: weights dtype: `float32`, `bfloat16`, `float16` or `auto`.
        gradient_checkpointing: recompute activations in the backward pass to save memory.
        backbone_seed: seed of a randomly initialised LM.
        optimizer: optimizer over the trainable parameters; None = AdamW(lr=2e-4), the paper's instruction tuning.
        scheduler: learning-rate scheduler (stepped every step); None = linear decay after `warmup_ratio` warm-up.
        warmup_ratio: fraction of the training steps spent warming up (default scheduler only).
        task: `sequence` or `token` (linked from the data module).
        num_labels: number of labels (linked).
        label_names: label names by id (linked).
        pad_token_id: the tokenizer's pad id (linked).
        vocab_size: the tokenizer's vocabulary size (linked).
    """

    method: ClassVar[str] = "instruction_tuning"
    with_response: ClassVar[bool] = True

    def __init__(
        self,
        backbone: str | None = None,
        backbone_config: dict[str, Any] | None = None,
        prompt: PromptFormatter | str | None = None,
        chat_template: bool | None = None,
        readings: list[Reading] | None = None,
        score_reading: Reading = "generate",
        max_new_tokens: int | None = None,
        finetuning: Finetuning = "lora",
        lora_r: int = 12,
        lora_alpha: int = 32,
        lora_dropout: float = 0.1,
        lora_target_modules: list[str] | None = None,
        attn_implementation: str | None = None,
        dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32",
        gradient_checkpointing: bool = False,
        backbone_seed: int = 0,
        optimizer: OptimizerCallable | None = None,
        scheduler: LRSchedulerCallable | None = None,
        warmup_ratio: float = 0.0,
        task: Literal["sequence", "token"] = "sequence",
        num_labels: int = 2,
        label_names: list[str] | None = None,
        pad_token_id: int | None = None,
        vocab_size: int | None = None,
    ) -> None:
        super().__init__(
            backbone, backbone_config, prompt, chat_template, readings, score_reading, max_new_tokens,
            attn_implementation, dtype, gradient_checkpointing, backbone_seed, task, num_labels, label_names,
            pad_token_id, vocab_size,
        )  # fmt: skip
        if finetuning not in ("lora", "full"):
            raise ValueError(f"model.finetuning must be lora or full for instruction tuning, got {finetuning!r}")
        lora = {"r": lora_r, "alpha": lora_alpha, "dropout": lora_dropout, "target_modules": lora_target_modules}
        self.lm = apply_finetuning(self.lm, finetuning, **lora)
        log_trainable(self)
        self.optimizer_factory, self.scheduler_factory, self.warmup_ratio = optimizer, scheduler, warmup_ratio
        for key in ("optimizer", "scheduler"):
            if callable(self.hparams.get(key)):
                self.hparams[key] = None  # a Python callable (not from a config) cannot be stored as data
        self.strict_loading = False  # checkpoints hold only the trained weights; see on_load_checkpoint

    # ---------------------------------------------------------------------------------------------- training
    @override
    def on_fit_start(self) -> None:
        self.train()  # `from_pretrained` returns a model in eval mode and Lightning keeps modules' modes

    @override
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        body, head = causal_lm_parts(self.lm)
        hidden = forward_hidden(body, batch["lm_input_ids"], batch["lm_attention_mask"])  # (B, S, H)
        loss = response_cross_entropy(hidden, head, batch["lm_input_ids"], batch["response_mask"])
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"training loss is {loss.item()} at global step {self.global_step} (batch {batch_idx}, examples "
                f"{batch['example_ids'].tolist()})"
            )
        if getattr(self.trainer._logger_connector, "should_update_logs", True):  # `self.log` costs ~1 ms a call
            self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=len(hidden))
        return loss

    @override
    def configure_optimizers(self) -> Any:
        return optimizers_with_warmup(
            self, self.optimizer_factory, self.scheduler_factory, self.warmup_ratio, default_lr=2e-4
        )
