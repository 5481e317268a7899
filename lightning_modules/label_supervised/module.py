"""LabelSupervisedModule: a transformer backbone + attention-mask strategy + pooling head, trained on labels.

LS-LLaMA is a decoder with `CausalMask` and `LastTokenPooling`; LS-unLLaMA the same decoder with
`BidirectionalMask` (the paper's best pooling there is `MaxPooling`); the BERT-family baselines go through the same
module with their native bidirectional attention. Token classification projects every token instead of pooling.
The parts are built by the plain functions of `lightning_modules.backbone.builders`, called once in `__init__`.
"""

from __future__ import annotations

import copy
import csv
import logging
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric
from typing_extensions import override

from core.class_paths import from_spec, to_spec
from core.packing import PACKED_KEYS, packed_attention_mask, unpack
from lightning_modules.backbone.builders import default_mask, log_trainable, merge_adapter
from lightning_modules.backbone.compile import compile_blocks
from lightning_modules.backbone.masks import MASKS, AttentionMaskStrategy, is_encoder
from lightning_modules.backbone.quantization import Quantization, check_finetuning
from lightning_modules.label_supervised.head import ClassificationHead, upgrade_head_keys
from lightning_modules.label_supervised.pooling import POOLINGS, Pooling, default_pooling
from lightning_modules.label_supervised.pretrained import PretrainedMixin
from lightning_modules.metrics import build_metrics
from lightning_modules.training import FinetunedModule, ProbedAttention

log = logging.getLogger(__name__)


class LabelSupervisedModule(ProbedAttention, FinetunedModule, PretrainedMixin):
    """Label-supervised finetuning of a transformer backbone for sequence or token classification.

    The backbone and training arguments (`backbone`, `finetuning`, `lora_r`, `optimizer`, ..., and the ids linked
    from the data module) are those of `lightning_modules.training.BackboneModule` / `FinetunedModule`.

    Args:
        mask: attention-mask strategy (`CausalMask` = LS-LLaMA, `BidirectionalMask` = LS-unLLaMA,
            `BidirectionalFromLayer`, or a registered name such as `bidirectional`); None = causal for decoders,
            the encoder's own bidirectional attention for encoders (`builders.default_mask`).
        pooling: how a sequence becomes one vector (`LastTokenPooling`, `MeanPooling`, `MaxPooling`,
            `LogitMaxPooling`, `AttentionPooling`, `FirstTokenPooling`, or a registered name such as `max`); None =
            last token for decoders, first ([CLS]) for encoders. Not used for token classification, which projects
            every token.
        head_dropout: dropout before the classification layer; None = 0.1 for token and 0.0 for sequence
            classification, like transformers' `*ForTokenClassification` / `*ForSequenceClassification`.
        quantization: `nf4` (QLoRA: the backbone's linear layers in 4-bit NormalFloat, LoRA on top), `fp4` or
            `int8`, through transformers' `BitsAndBytesConfig` (`lightning_modules.backbone.quantization`; needs the
            `qlora` extra); None = the weights in `dtype`. Needs `finetuning: lora` (or `head`).
        compile: `torch.compile` each transformer block (`lightning_modules.backbone.compile`); the probe checks the
            compiled model.
        seqeval_mode: None (seqeval default, conlleval-compatible) or `strict` (IOB2 chunks only).
        verify_mask: run the attention probe on the training/evaluation device before the first step.
        init_adapter: a LoRA adapter folder of an earlier stage (e.g. the MNTP adaptation, configs/adapt/mntp.yaml)
            merged into the backbone before finetuning; a fresh LoRA and head then train on the labels
            (`builders.merge_adapter`). Kept as a path: checkpoints and adapter exports merge it again when loaded.
        method: the method this configuration implements, as results and W&B name it (`ls_llama`, `ls_unllama`,
            `finetune`): declared by the method overlays (configs/method/*.yaml), never inferred from the mask.
    """

    def __init__(
        self,
        mask: AttentionMaskStrategy | str | None = None,
        pooling: Pooling | str | None = None,
        head_dropout: float | None = None,
        quantization: Quantization | None = None,
        compile: bool = False,
        seqeval_mode: Literal["strict"] | None = None,
        verify_mask: bool = True,
        init_adapter: str | None = None,
        method: str = "label_supervised",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.method, self.verify_mask_enabled = method, verify_mask
        # the injected parts first: a bad name or class path fails before any weight is loaded
        mask_strategy = from_spec(mask, AttentionMaskStrategy, "model.mask", MASKS) if mask else None
        if pooling is not None and self.task == "token":
            log.info("model.pooling is not used: token classification projects every token")
        pooling_module = from_spec(pooling, Pooling, "model.pooling", POOLINGS) if pooling else None
        check_finetuning(quantization, self.finetuning)
        backbone_model = self.load_backbone(quantization=quantization)
        if init_adapter is not None:  # merged, not continued: the adapter's LoRA settings need not match ours
            backbone_model = merge_adapter(backbone_model, init_adapter)
        self.is_encoder = is_encoder(backbone_model)
        self.probe_left_padding = not self.is_encoder  # RoBERTa numbers positions from the ids: no left padding
        # a private copy: a strategy may hold hooks on the model it is applied to
        self.mask = copy.deepcopy(mask_strategy) if mask_strategy else default_mask(backbone_model.config)
        self.mask.apply(backbone_model)
        pooling_module = copy.deepcopy(pooling_module) or default_pooling(backbone_model.config)
        dropout = head_dropout if head_dropout is not None else (0.1 if self.task == "token" else 0.0)
        # after the backbone (the hidden size) and before LoRA: the random state that initialises them is unchanged
        hidden_size = backbone_model.config.hidden_size
        self.head = ClassificationHead(hidden_size, self.num_labels, self.task, pooling_module, dropout)
        self.backbone = self.finetune(backbone_model)
        if compile:
            compile_blocks(self.backbone)
        log_trainable(self)
        # the injected objects as class_path specs in hparams, so checkpoints rebuild them from data
        self.hparams.update(mask=to_spec(self.mask), pooling=to_spec(pooling_module))
        metrics = build_metrics(self.task, self.label_names, seqeval_mode)
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        # torchmetrics means sync float sums across processes; Lightning's `sync_dist` mean of a logged value
        # averages integer example counts, which is off when processes hold unequal shares of the set
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()

    @override
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["state_dict"] = upgrade_head_keys(checkpoint["state_dict"], prefix="head.")  # 2026-11 checkpoints
        super().on_load_checkpoint(checkpoint)

    @property
    def pooling(self) -> Pooling | None:
        """The head's pooling (unused by token tasks)."""
        return self.head.pooling

    # ------------------------------------------------------------------------------------------------ forward
    def position_ids(self, attention_mask: torch.Tensor) -> torch.Tensor | None:
        """Positions counted over real tokens, so left and right padding give the same states (decoders only)."""
        if self.is_encoder:
            return None
        return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)  # (B, T)

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: Any) -> Any:
        """Run the backbone; returns transformers' output (`last_hidden_state (B, T, H)`, ...)."""
        return self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=self.position_ids(attention_mask),
            **kwargs,
        )

    def packed_hidden_states(self, packed: dict[str, torch.Tensor], attention_mask: torch.Tensor) -> torch.Tensor:
        """Run the backbone on a packed row (see `core.packing`); returns `(B, T, H)` unpacked."""
        if self.is_encoder:
            raise ValueError("packed batches (data.pack_sequences) support decoder backbones only")
        config = self.backbone.config
        mask = packed_attention_mask(
            packed["packed_sequence_ids"],
            causal=getattr(config, "is_causal", True),
            attn_implementation=config._attn_implementation,
            dtype=self.backbone.get_input_embeddings().weight.dtype,
        )
        out = self.backbone(
            input_ids=packed["packed_input_ids"], attention_mask=mask, position_ids=packed["packed_position_ids"]
        )
        return unpack(out.last_hidden_state, attention_mask)  # (1, S, H) -> (B, T, H)

    @override
    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, packed: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Logits `(B, num_labels)` for sequences, `(B, T, num_labels)` for tokens.

        Args:
            input_ids: `(B, T)` token ids.
            attention_mask: `(B, T)`, 1 = real token, 0 = pad.
            packed: the same batch packed in one row (`PACKED_KEYS`, right padding); computed padding-free.
        """
        if packed is not None:
            hidden = self.packed_hidden_states(packed, attention_mask)  # (B, T, H)
        else:
            hidden = self.hidden_states(input_ids, attention_mask).last_hidden_state  # (B, T, H)
        return self.head(hidden, attention_mask)  # (B, C) or (B, T, C)

    @override
    def probed_model(self) -> nn.Module:
        return self.backbone

    # ---------------------------------------------------------------------------------------------- steps
    def _logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        packed = {key: batch[key] for key in PACKED_KEYS} if PACKED_KEYS[0] in batch else None
        return self(batch["input_ids"], batch["attention_mask"], packed)  # (B, C) or (B, T, C)

    def _step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean cross-entropy over the batch's labelled positions (examples for sequences, first subwords of words
        for tokens) and the logits."""
        logits = self._logits(batch)
        labels = batch["labels"]
        if labels.numel() and (labels.max() >= self.num_labels or labels.min() < -100):
            raise ValueError(
                f"label ids must lie in [0, {self.num_labels}) (or be -100); batch has "
                f"{labels.min().item()}..{labels.max().item()}"
            )
        loss = F.cross_entropy(logits.float().flatten(0, -2), labels.flatten(), ignore_index=-100)
        return loss, logits

    @override
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, _ = self._step(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"training loss is {loss.item()} at global step {self.global_step} (epoch {self.current_epoch}, "
                f"batch {batch_idx}, examples {batch['example_ids'].tolist()})"
            )
        # `self.log` costs ~1 ms of CPU per call; call it only on the steps the loggers will write (log_every_n_steps)
        if getattr(self.trainer._logger_connector, "should_update_logs", True):
            self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=len(batch["labels"]))
        return loss

    def _eval_step(self, batch: dict[str, torch.Tensor], split: str, metrics: Any) -> None:
        loss, logits = self._step(batch)
        count = int((batch["labels"] != -100).sum())  # labelled positions: examples, or words for token tasks
        losses = self.val_loss if split == "val" else self.test_loss
        if count:  # weighted by labelled positions: the split's loss is the mean over all of them, not of batches
            losses.update(loss.detach(), weight=count)
        if self.task == "sequence":
            metrics.update(logits.argmax(-1), batch["labels"], batch["example_ids"])
        else:
            metrics.update(self.word_predictions(logits, batch), batch["word_labels"], batch["example_ids"])

    def word_predictions(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Tag ids per word `(B, W)`: each word's first subword's prediction; words with no subword (cut by
        `max_length`) are predicted `O`, so their entities count as missed."""
        starts = batch["word_starts"]  # (B, W), -1 where the word has no subword
        preds = logits.argmax(-1).gather(1, starts.clamp_min(0))  # (B, W)
        return preds.masked_fill(starts < 0, self.outside_label)

    @override
    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val", self.val_metrics)

    @override
    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test", self.test_metrics)

    def _log_metrics(self, split: str, metrics: Any) -> None:
        # the loss is logged here, once per epoch, not in every step: `self.log` costs 0.3-0.5 ms of CPU per call
        # (Lightning moves its whole record to the device each time), about a fifth of the framework's cost per
        # evaluation step (benchmarks.md section 12); the logged value is the same MeanMetric's compute()
        losses = self.val_loss if split == "val" else self.test_loss
        self.log(f"{split}/loss", losses.compute())
        losses.reset()
        values = metrics.compute()
        primary = values[f"{split}/acc" if self.task == "sequence" else f"{split}/f1"]
        self.log_dict(values, sync_dist=False)
        self.log(f"{split}/score", primary, prog_bar=True)  # the task's headline metric: accuracy or entity F1
        if split == "test":
            self._write_example_rows(metrics)
        metrics.reset()

    def _write_example_rows(self, metrics: Any) -> None:
        """`test_examples.csv` in the log folder: per test example its outcome (label/prediction, or entity counts),
        so that paired bootstrap intervals over test examples can be computed from the committed run files."""
        (metric,) = metrics.values()
        with metric.sync_context():  # the whole test set under DDP
            rows = metric.example_rows()
        trainer = self._trainer
        logged = trainer is not None and trainer.loggers and not trainer.fast_dev_run
        log_dir = trainer.log_dir if logged else None  # no logger: no log folder to write into (not the cwd)
        if not rows or log_dir is None or not trainer.is_global_zero:
            return
        path = Path(log_dir) / "test_examples.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    @override
    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val", self.val_metrics)

    @override
    def on_test_epoch_end(self) -> None:
        self._log_metrics("test", self.test_metrics)

    @override
    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, Any]:
        """Predicted label ids and probabilities (sequences) or word-level tag ids (tokens), with example ids."""
        logits = self._logits(batch)
        out: dict[str, Any] = {"example_ids": batch["example_ids"]}
        if self.task == "sequence":
            probs = logits.float().softmax(-1)  # (B, C)
            out.update(preds=probs.argmax(-1), probs=probs)
        else:
            out.update(preds=self.word_predictions(logits, batch), num_words=batch["num_words"])
        return out
