r"""MaskedNextTokenModule: a bidirectional adaptation stage (masked next-token prediction, MNTP) before label
supervision.

LS-unLLaMA removes a decoder's causal mask and trains on the labels at once, so the decoder has to learn to use
attention it never had while it learns the task; on small budgets that cost more than it gave (experiments/LOG.md).
LLM2Vec (BehnamGhader et al., 2024) first teaches the unmasked decoder on plain text: the causal mask removed, a part
of the tokens masked, each masked token predicted by the language-model head from the state one position to its left
(as the decoder was pretrained to predict), with LoRA. This module is that stage, run like any other:

    python main.py fit --config configs/recipe/cpu_small.yaml --config configs/data/conll2003.yaml \
        --config configs/backbone/smollm2-135m.yaml --config configs/adapt/mntp.yaml
    # writes <log dir>/adapter/ (or model.adapter_dir): peft's adapter files + adapter_info.json
    python main.py fit ... --config configs/method/ls_unllama.yaml --model.init_args.init_adapter=<that folder>

The text is the data module's own examples with their labels unused (or any text file: `datamodules.PlainText`);
masking, targets and the choice of mask token are in `lightning_modules.adaptation.mntp_data`. The mask strategy
(`BidirectionalMask` by default) is checked by the attention probe on the decoder before training, as in
`LabelSupervisedModule`. Validation and test report the masked tokens' loss and top-1 accuracy (`val/score`) on
masks that are the same at every evaluation. Checkpoints hold the LoRA weights only; `save_adapter(folder)` writes
the adapter of any loaded checkpoint (`MaskedNextTokenModule.load_from_checkpoint(path).save_adapter(folder)`), and
the end of `fit` writes the final weights' adapter by itself. Label supervision merges it into the backbone and
trains a fresh LoRA and head (`LabelSupervisedModule(init_adapter=...)`, `builders.merge_adapter`).
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchmetrics import MeanMetric
from transformers import AutoModelForCausalLM
from typing_extensions import override

from core.class_paths import from_spec, to_spec
from lightning_modules.adaptation.mntp_data import MaskedTextEncoder, mntp_loss
from lightning_modules.backbone.builders import (
    ADAPTER_INFO,
    backbone_fingerprint,
    log_trainable,
)
from lightning_modules.backbone.masks import MASKS, AttentionMaskStrategy, is_encoder
from lightning_modules.training import FinetunedModule, ProbedAttention

log = logging.getLogger(__name__)


class MaskedNextTokenModule(ProbedAttention, FinetunedModule):
    """Masked next-token prediction with LoRA on a decoder whose causal mask is removed (LLM2Vec's MNTP).

    The backbone (a decoder, loaded with its language-model head), the LoRA settings and the optimizer are
    `FinetunedModule`'s / `BackboneModule`'s arguments, with LLM2Vec's defaults here (`lora_r` 16, `lora_dropout`
    0.05; `optimizer`: None = AdamW(lr=5e-5), transformers' default, which LLM2Vec used; LLM2Vec adapts all seven
    projections of attention and MLP: `lora_target_modules`).

    Args:
        mask: attention-mask strategy (a registered name such as `bidirectional`, or a strategy object such as
            `BidirectionalFromLayer`); checked by the attention probe before training.
        mask_probability: chance of each maskable token to be masked (LLM2Vec: 0.2 for LLaMA-family models).
        mask_token: the token (e.g. `_`) or id that replaces masked tokens; None = the tokenizer's mask token, else a
            free special token (rule: `lightning_modules.adaptation.mntp_data.resolve_mask_token`).
        random_token_fraction: part of the masked tokens replaced by a random token instead (BERT, LLM2Vec's
            LLaMA configs: 0.1; 0 = always the mask token, LLM2Vec's Mistral config).
        keep_token_fraction: part of the masked tokens left unchanged, still predicted (BERT: 0.1).
        lora_r: LoRA rank (LLM2Vec: 16).
        lora_dropout: dropout on the LoRA input (LLM2Vec: 0.05).
        adapter_dir: where the end of `fit` writes the adapter; None = `<log dir>/adapter` (nothing without a
            logger or under `fast_dev_run`).
        verify_mask: run the attention probe on the training/evaluation device before the first step.
    """

    method = "mntp"
    default_lr = 5e-5
    checks_labels = False  # masked tokens, not labels: any data module's text adapts it

    def __init__(
        self,
        mask: AttentionMaskStrategy | str = "bidirectional",
        mask_probability: float = 0.2,
        mask_token: str | int | None = None,
        random_token_fraction: float = 0.1,
        keep_token_fraction: float = 0.1,
        lora_r: int = 16,
        lora_dropout: float = 0.05,
        adapter_dir: str | None = None,
        verify_mask: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(lora_r=lora_r, lora_dropout=lora_dropout, **kwargs)
        if self.finetuning != "lora":
            raise ValueError(
                f"model.finetuning must be lora for MNTP (its adapter is the output), got {self.finetuning!r}"
            )
        # settings and the injected strategy first: a bad value fails before any weight is loaded
        self.text_encoder = MaskedTextEncoder(mask_token, mask_probability, random_token_fraction, keep_token_fraction)
        strategy = from_spec(mask, AttentionMaskStrategy, "model.mask", MASKS)
        self.adapter_dir, self.verify_mask_enabled = adapter_dir, verify_mask
        lm = self.load_backbone(auto_class=AutoModelForCausalLM)
        if is_encoder(lm):
            raise ValueError(f"MNTP adapts decoders; {lm.config.model_type!r} is a bidirectional encoder already")
        self.mask = copy.deepcopy(strategy)  # a private copy: a strategy may hold hooks on its model
        self.mask.apply(lm)
        self.lm = self.finetune(lm)
        log_trainable(self)
        self.hparams["mask"] = to_spec(self.mask)
        self.val_loss, self.val_acc = MeanMetric(), MeanMetric()
        self.test_loss, self.test_acc = MeanMetric(), MeanMetric()

    def example_encoder(self) -> MaskedTextEncoder:
        """How the data module encodes and batches its examples for this model (`core.encoding`)."""
        return self.text_encoder

    # ------------------------------------------------------------------------------------------------ forward
    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: Any) -> Any:
        """Run the decoder stack without its head (LoRA active); returns transformers' output
        (`last_hidden_state (B, T, H)`, ...). Positions count real tokens, so left and right padding agree."""
        positions = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)  # (B, T)
        decoder = self.lm.get_base_model().get_decoder()
        return decoder(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, **kwargs)

    @override
    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`(mean loss, logits (N, V), targets (N,))` of the `N` masked tokens, each predicted from position i-1.

        Args:
            input_ids: `(B, T)` masked token ids.
            attention_mask: `(B, T)`, 1 = real token, 0 = pad.
            labels: `(B, T)` original ids at masked positions, -100 elsewhere.
        """
        hidden = self.hidden_states(input_ids, attention_mask).last_hidden_state  # (B, T, H)
        loss, logits, targets = mntp_loss(hidden, labels, self.lm.get_output_embeddings())
        if not len(targets):  # nothing maskable in the batch (one-token texts): a zero loss that still has a graph
            loss = logits.float().sum()
        return loss, logits, targets

    @override
    def probed_model(self) -> nn.Module:
        return self.lm

    # ---------------------------------------------------------------------------------------------- steps
    def _step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self(batch["input_ids"], batch["attention_mask"], batch["labels"])

    @override
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, _, targets = self._step(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"MNTP loss is {loss.item()} at global step {self.global_step} (batch {batch_idx}, examples "
                f"{batch['example_ids'].tolist()})"
            )
        if getattr(self.trainer._logger_connector, "should_update_logs", True):
            self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=max(len(targets), 1))
        return loss

    def _eval_step(self, batch: dict[str, torch.Tensor], losses: MeanMetric, accuracies: MeanMetric) -> None:
        loss, logits, targets = self._step(batch)
        if len(targets):  # weighted by masked tokens: the split's mean over all of them
            losses.update(loss.detach(), weight=len(targets))
            accuracies.update((logits.argmax(-1) == targets).float().mean(), weight=len(targets))

    @override
    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.val_loss, self.val_acc)

    @override
    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.test_loss, self.test_acc)

    def _log_split(self, split: str, losses: MeanMetric, accuracies: MeanMetric) -> None:
        if not accuracies.update_count:
            return
        accuracy = accuracies.compute()
        self.log_dict({f"{split}/loss": losses.compute(), f"{split}/acc": accuracy})
        self.log(f"{split}/score", accuracy, prog_bar=True)  # the headline: masked-token top-1 accuracy
        losses.reset()
        accuracies.reset()

    @override
    def on_validation_epoch_end(self) -> None:
        self._log_split("val", self.val_loss, self.val_acc)

    @override
    def on_test_epoch_end(self) -> None:
        self._log_split("test", self.test_loss, self.test_acc)

    # ----------------------------------------------------------------------------------------- optimisation
    def save_adapter(self, folder: str | Path) -> Path:
        """Write the LoRA adapter (peft's `adapter_config.json` + `adapter_model.safetensors`) and `adapter_info.json`
        (the backbone's fingerprint, checked when label supervision merges it; the masking settings; the step).

        Args:
            folder: the adapter folder (created; files of the same names are replaced).
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.lm.save_pretrained(str(folder))
        settings = ("backbone", "backbone_config", "backbone_seed", "mask_probability", "mask_token")
        info = {"method": self.method, **{key: self.hparams.get(key) for key in settings}}
        info.update(
            mask=to_spec(self.mask),
            random_token_fraction=self.text_encoder.random_fraction,
            keep_token_fraction=self.text_encoder.keep_fraction,
            mask_token_id=self.text_encoder.mask_token_id,
            global_step=self.global_step if self._trainer is not None else None,
            backbone_fingerprint=backbone_fingerprint(self.lm),
        )
        (folder / ADAPTER_INFO).write_text(json.dumps(info, indent=2, default=str) + "\n")
        log.info("MNTP adapter written to %s", folder)
        return folder

    @override
    def on_fit_end(self) -> None:
        trainer = self.trainer
        folder = self.adapter_dir
        if folder is None and trainer.loggers and not trainer.fast_dev_run and trainer.log_dir is not None:
            folder = str(Path(trainer.log_dir) / "adapter")
        if folder is None:
            log.info("no model.adapter_dir and no log folder: the adapter was not written (see save_adapter)")
        elif trainer.is_global_zero:
            self.save_adapter(folder)
