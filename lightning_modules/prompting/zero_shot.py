"""Prompted causal LMs, the paper's LLM baselines: `PromptedLM` (evaluation by readings of the answer) and
`ZeroShotModule` (zero-shot prompting of an instruction/chat model; paper Tables 2-4, LLaMA-2-chat).

The data module's examples become prompts through the model's `PromptEncoder` (`example_encoder()`, see
`core.encoding`): the paper's prompt for classification, an entity-list prompt for NER (`prompting.prompts`), in
the tokenizer's chat template where it has one. Every validation/test batch is prefilled once, then read
(`lightning_modules.prompting.decoding`):
- `generate`: greedy decoding with the KV cache (batched, left padding, until a stop token or `max_new_tokens`;
  the stop tokens are the tokenizer's eos, the eos ids of the model's generation config and the special token that
  ends an assistant turn in the chat template, logged once); the text is parsed into a label
  (`answers.parse_label`; an answer naming no label or several is wrong and counted in `<split>/invalid_rate`) or
  into entities mapped to BIO tags (`answers.entities_to_tags`, scored by seqeval; unreadable answers counted in
  `invalid_rate`, entities not in the sentence in `unmatched_rate`);
- `likelihood` (classification only): each label's answer (its verbalization + the end of the assistant's turn:
  the chat template's end-of-turn token, else eos) scored by its summed token log-probabilities after the prompt;
  the best one is the prediction (never invalid). Sums favour short answers;
- `likelihood_mean` (classification only): the same scores divided by each answer's number of tokens (the mean
  log-probability per token, the end of turn included): computed from the summed scores, no second pass.
Logged like `LabelSupervisedModule`, so results tables collect these runs beside LS ones: `<split>/score` and
`<split>/acc`, `<split>/f1` (sequence) or seqeval's `f1`, `precision`, `recall`, `word_acc`, `f1_<TYPE>` (token)
of the `score_reading`; per reading `gen_acc`/`gen_f1`, `ll_acc`/`ll_f1` (summed likelihood), `lln_acc`/`lln_f1`
(length-normalised likelihood); speed `examples_per_s` (all readings), `gen_examples_per_s`, `ll_examples_per_s`,
`lln_examples_per_s` (prefill + that reading). The tables use `test/score` = generation (the default
`score_reading`); `ll_acc` and the length-normalised `lln_acc` are logged beside it. `test` writes
`test_examples.csv` (the scored reading, as label supervision does) and `test_answers.jsonl` (every generated
answer and how it was read, and each likelihood reading's label: `pred_likelihood`, `pred_likelihood_mean`).
"""

from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from torchmetrics import MeanMetric
from transformers import AutoModelForCausalLM
from typing_extensions import override

from core.class_paths import from_spec, to_spec
from lightning_modules.metrics import ClassificationMetrics, SeqevalMetrics
from lightning_modules.prompting.answer_metrics import AnswerMetrics
from lightning_modules.prompting.decoding import (
    causal_lm_parts,
    generation_eos_ids,
    greedy_generate,
    mean_per_token,
    prefill,
    score_answers,
)
from lightning_modules.prompting.prompt_encoder import PromptEncoder, right_pad
from lightning_modules.prompting.prompts import PROMPTS, ClassificationPrompt, EntityPrompt, PromptFormatter
from lightning_modules.training import BackboneModule

log = logging.getLogger(__name__)

Reading = Literal["generate", "likelihood", "likelihood_mean"]
# metric name prefixes of the readings: generated text, summed and length-normalised (mean per token) likelihood
SHORT = {"generate": "gen", "likelihood": "ll", "likelihood_mean": "lln"}
SCORED = ("likelihood", "likelihood_mean")  # the readings of the label scores (sequence tasks)
WORK = {"generate": "generate", "likelihood": "score", "likelihood_mean": "score"}  # the clock each reading runs on
HEADLINE = {"sequence": ("acc", "f1"), "token": ("f1",)}  # what is logged per reading


class PromptedLM(BackboneModule):
    """A causal LM evaluated on prompts made from a data module's examples (see the module docstring). The backbone
    (a causal LM, loaded with its LM head) and the ids linked from the data are `BackboneModule`'s arguments.

    Args:
        prompt: the prompt formatter (`classification`, `entities`, or a class_path); None = the paper's prompt
            (`ClassificationPrompt`) for sequence tasks, `EntityPrompt` for token tasks.
        chat_template: wrap prompts in the tokenizer's chat template; None = where the tokenizer has one.
        readings: how answers are read: `generate` (greedy text, parsed), `likelihood` (the label whose answer has
            the highest summed log-probability) and/or `likelihood_mean` (the highest mean log-probability per
            answer token); the likelihood readings are for sequence tasks only. None = all three.
        score_reading: the reading logged as `<split>/score` (and `acc`/`f1`): checkpoint selection, tables. The
            tables use `generate`; the likelihood readings are logged beside it (`ll_acc`, `lln_acc`).
        max_new_tokens: the most tokens generated per answer; None = 32 for classification, 96 for NER.
    """

    method: ClassVar[str] = "prompting"
    with_response: ClassVar[bool] = False  # whether batches also hold prompt + answer (training)

    def __init__(
        self,
        prompt: PromptFormatter | str | None = None,
        chat_template: bool | None = None,
        readings: list[Reading] | None = None,
        score_reading: Reading = "generate",
        max_new_tokens: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.prompt = self._build_prompt(prompt, self.task)
        self.readings, self.score_reading = self._check_readings(readings, score_reading, self.task)
        self.max_new_tokens = max_new_tokens or (32 if self.task == "sequence" else 96)
        self.lm = self.load_backbone(auto_class=AutoModelForCausalLM)
        self.encoder = PromptEncoder(self.prompt, chat_template, with_response=self.with_response)
        self.hparams["prompt"] = to_spec(self.prompt)  # rebuilt from data, like the LS module's mask and pooling
        self.eval_metrics = nn.ModuleDict({split: self._metrics() for split in ("val", "test")})
        self._clock: dict[str, float] = {}
        self._answers: list[dict[str, Any]] = []
        self._stop_ids: list[int] | None = None  # found once the tokenizer is bound (`generation_stop_ids`)
        self._logged_stops: list[int] | None = None

    @staticmethod
    def _build_prompt(prompt: PromptFormatter | str | None, task: str) -> PromptFormatter:
        formatter = from_spec(prompt, PromptFormatter, "model.prompt", PROMPTS) if prompt else None
        formatter = formatter or (ClassificationPrompt() if task == "sequence" else EntityPrompt())
        if formatter.task != task:
            raise ValueError(f"model.prompt {formatter!r} is for {formatter.task} tasks, the data is a {task} task")
        return formatter

    @staticmethod
    def _check_readings(readings: list[str] | None, score_reading: str, task: str) -> tuple[list[str], str]:
        readings = list(readings or SHORT)
        unknown = set(readings) - set(SHORT)
        if unknown or not readings:
            raise ValueError(f"model.readings must be a non-empty list of {'/'.join(SHORT)}, got {readings}")
        if task == "token" and set(readings) & set(SCORED):
            log.info("model.readings: the likelihood readings read labels of sequence tasks only; NER is generated")
            readings = [r for r in readings if r not in SCORED] or ["generate"]
            score_reading = "generate"
        if score_reading not in readings:
            raise ValueError(f"model.score_reading {score_reading!r} is not among model.readings {readings}")
        return readings, score_reading

    def _metrics(self) -> nn.ModuleDict:
        if self.task == "token":
            metrics: dict[str, nn.Module] = {"generate": SeqevalMetrics(self.label_names), "unmatched": MeanMetric()}
        else:
            metrics = {"generate": AnswerMetrics(self.num_labels)}
            metrics.update({reading: ClassificationMetrics(self.num_labels) for reading in SCORED})
        return nn.ModuleDict({**metrics, "invalid": MeanMetric()})

    def example_encoder(self) -> PromptEncoder:
        """How the data module encodes and batches the examples for this model (`core.encoding`)."""
        return self.encoder

    @override
    def setup(self, stage: str) -> None:
        tokenizer = getattr(getattr(self.trainer, "datamodule", None), "tokenizer", None)
        if tokenizer is not None:
            self.encoder.bind(tokenizer)  # the data's tokenizer decodes the answers
            self._stop_ids = None

    def generation_stop_ids(self) -> list[int]:
        """The token ids greedy generation stops at (`PromptEncoder.stop_ids` with the model's generation-config
        eos ids), logged once."""
        if self._stop_ids is None:
            sources = self.encoder.stop_ids(generation_eos_ids(self.lm))
            self._stop_ids = [i for ids in sources.values() for i in ids]
            if self._stop_ids != self._logged_stops:
                tokens = self.encoder._bound().convert_ids_to_tokens(self._stop_ids)
                found = "; ".join(f"{name} {ids}" for name, ids in sources.items() if ids)
                log.info("generation stops at token ids %s %s (%s)", self._stop_ids, tokens, found)
                self._logged_stops = self._stop_ids
        return self._stop_ids

    # ------------------------------------------------------------------------------------------ evaluation
    def _tick(self, key: str, start: float) -> float:
        now = time.perf_counter()
        self._clock[key] = self._clock.get(key, 0.0) + now - start
        return now

    def _eval_step(self, batch: dict[str, Any], split: str) -> None:
        metrics, start = self.eval_metrics[split], time.perf_counter()
        body, head = causal_lm_parts(self.lm)
        prefix = prefill(body, head, batch["input_ids"], batch["attention_mask"], batch.get("prefix_ids"))
        now = self._tick("prefill", start)
        records: list[dict[str, Any]] = [{"example_id": i} for i in batch["example_ids"].tolist()]
        scored = [reading for reading in SCORED if reading in self.readings]
        if scored:
            sums = score_answers(body, head, prefix, batch["answer_ids"], batch["answer_mask"])  # (B, C)
            scores = {"likelihood": sums, "likelihood_mean": mean_per_token(sums, batch["answer_mask"])}
            for reading in scored:
                preds = scores[reading].argmax(-1)  # (B,)
                metrics[reading].update(preds, batch["labels"], batch["example_ids"])
                for record, pred in zip(records, preds.tolist()):
                    record[f"pred_{reading}"] = pred
            now = self._tick("score", now)
        if "generate" in self.readings:
            ids = greedy_generate(body, head, prefix, self.max_new_tokens, self.generation_stop_ids())
            answers = self.encoder.decode(ids)
            now = self._tick("generate", now)
            read = self._read_labels if self.task == "sequence" else self._read_entities
            for record, extra in zip(records, read(answers, batch, metrics)):
                record.update(extra)
        self._clock["examples"] = self._clock.get("examples", 0) + len(records)
        if split == "test":
            self._answers += records

    def _read_labels(self, answers: list[str], batch: dict[str, Any], metrics: nn.ModuleDict) -> list[dict]:
        """Parse the answers into label ids (`num_labels` = invalid) and update the metrics."""
        parsed = [self.prompt.parse(answer, self.label_names) for answer in answers]
        preds = torch.tensor([label if label is not None else self.num_labels for label, _ in parsed])  # (B,)
        preds = preds.to(batch["labels"].device)
        metrics["generate"].update(preds, batch["labels"], batch["example_ids"])
        metrics["invalid"].update((preds == self.num_labels).float())
        outcomes = zip(answers, preds.tolist(), parsed)
        return [{"answer": answer, "pred_generate": pred, "read_as": why} for answer, pred, (_, why) in outcomes]

    def _read_entities(self, answers: list[str], batch: dict[str, Any], metrics: nn.ModuleDict) -> list[dict]:
        """Map the answers to word-level tags `(B, W)` (words beyond `num_words` are `O`) and update the metrics."""
        rows, records = [], []
        for answer, words, shown in zip(answers, batch["words"], batch["num_words"].tolist()):
            tags, parsed, unmatched = self.prompt.parse(answer, words[:shown], self.label_names)
            rows.append(tags + [self.outside_label] * (len(words) - shown))
            if parsed.entities:
                metrics["unmatched"].update(torch.tensor(unmatched / len(parsed.entities)), len(parsed.entities))
            records.append(
                {
                    "answer": answer,
                    "valid": parsed.valid,
                    "entities": len(parsed.entities),
                    "unmatched": unmatched,
                    "ignored_lines": parsed.ignored_lines,
                }
            )
        preds = right_pad(rows, self.outside_label).to(batch["word_labels"].device)  # (B, W)
        metrics["generate"].update(preds, batch["word_labels"], batch["example_ids"])
        metrics["invalid"].update(torch.tensor([not r["valid"] for r in records], dtype=torch.float))
        return records

    @override
    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    @override
    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    @override
    def on_validation_epoch_start(self) -> None:
        self._clock = {}

    @override
    def on_test_epoch_start(self) -> None:
        self._clock, self._answers = {}, []

    @override
    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    @override
    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def _log_metrics(self, split: str) -> None:
        metrics = self.eval_metrics[split]
        results = {reading: metrics[reading].compute() for reading in self.readings}
        values = {f"{split}/{name}": value for name, value in results[self.score_reading].items()}
        values[f"{split}/score"] = values[f"{split}/{HEADLINE[self.task][0]}"]
        for reading, result in results.items():
            values.update({f"{split}/{SHORT[reading]}_{name}": result[name] for name in HEADLINE[self.task]})
        for name in ("invalid", "unmatched"):
            if name in metrics and metrics[name].update_called:
                values[f"{split}/{name}_rate"] = metrics[name].compute()
        values.update(self._speeds(split))
        self.log_dict(values, sync_dist=False)
        if split == "test":
            self._write_outcomes(metrics[self.score_reading])
        for metric in metrics.values():
            metric.reset()

    def _speeds(self, split: str) -> dict[str, float]:
        """Examples per second of this process: all readings, and prefill + each reading on its own (the two
        likelihood readings share one scoring of the answers)."""
        clock, examples = self._clock, self._clock.get("examples", 0)
        work = {WORK[reading] for reading in self.readings}
        total = clock.get("prefill", 0.0) + sum(clock.get(name, 0.0) for name in work)
        speeds = {f"{split}/examples_per_s": examples / total} if total > 0 else {}
        for reading in self.readings:
            seconds = clock.get("prefill", 0.0) + clock.get(WORK[reading], 0.0)
            if seconds > 0:
                speeds[f"{split}/{SHORT[reading]}_examples_per_s"] = examples / seconds
        return speeds

    def _write_outcomes(self, metric: Any) -> None:
        """`test_examples.csv` (per example: outcome of the scored reading, as label supervision writes it) and
        `test_answers.jsonl` (per example: the generated answer, how it was read, each likelihood reading's label)."""
        with metric.sync_context():  # the whole test set under DDP
            rows = metric.example_rows()
        trainer = self._trainer
        logged = trainer is not None and trainer.loggers and not trainer.fast_dev_run
        log_dir = trainer.log_dir if logged else None
        if not rows or log_dir is None or not trainer.is_global_zero:
            return
        folder = Path(log_dir)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "test_examples.csv").open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        answers = sorted({r["example_id"]: r for r in self._answers}.values(), key=lambda r: r["example_id"])
        (folder / "test_answers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in answers))


class ZeroShotModule(PromptedLM):
    """Zero-shot prompting of an instruction/chat model (paper: LLaMA-2-chat 7B/13B): nothing trains, so `python
    main.py test` (or `validate`) runs it without `fit`. The arguments are `PromptedLM`'s."""

    method = "zero_shot"
