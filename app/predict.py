"""Predictions with label names: a writer for `python main.py predict`, and `Predictor` for Python.

`python main.py predict --config run.yaml --ckpt_path best.ckpt --data.init_args.predict_file texts.txt
--prediction.output_file predictions.jsonl` writes one JSON object per input, in input order:
- sequence tasks: `{"id": 0, "line": 1, "text": "...", "label": "sports", "probs": {"music": 0.01, ...}}`;
- token tasks: `{"id": 0, "line": 1, "tokens": ["Peter", "lives"], "tags": ["B-PER", "O"]}` (words cut by
  `max_length` are tagged `O`; their count is in the log).
`id` is the input's position, `line` the line of the file it starts on (files only).

From Python: `Predictor.from_checkpoint("best.ckpt").predict(["a text", ...])` gives the same objects.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info
from typing_extensions import override

from app.checkpointing import load_trained
from datamodules.base import LabelDataModule
from lightning_modules.label_supervised.module import LabelSupervisedModule


def prediction_rows(output: dict[str, Any], source: datasets.Dataset, label_names: list[str]) -> list[dict]:
    """JSON-ready predictions of one batch, from `LabelSupervisedModule.predict_step`'s output and the raw inputs."""
    rows = []
    for i, example in enumerate(output["example_ids"].tolist()):
        row: dict[str, Any] = {"id": example}
        raw = source[example]
        if "line" in raw:
            row["line"] = raw["line"]
        if "probs" in output:  # sequence task
            probs = output["probs"][i].tolist()
            row.update(text=raw["text"], label=label_names[output["preds"][i].item()])
            row["probs"] = dict(zip(label_names, probs))
        else:
            tags = output["preds"][i, : output["num_words"][i]].tolist()
            row.update(tokens=raw["tokens"], tags=[label_names[t] for t in tags])
        rows.append(row)
    return rows


class PredictionWriter(BasePredictionWriter):
    """Write the predictions of `trainer.predict` as JSON lines (see the module docstring), gathered from all
    processes and sorted by input position; the file appears whole (temporary file + rename).

    Args:
        output_file: the JSON-lines file; None = `predictions.jsonl` in the trainer's log folder.
    """

    def __init__(self, output_file: str | None = None) -> None:
        super().__init__(write_interval="batch")
        self.output_file = output_file
        self._rows: list[dict] = []

    @override
    def on_predict_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._rows = []

    @override
    def write_on_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        data = trainer.datamodule
        if not isinstance(data, LabelDataModule) or data.predict_source is None:
            raise TypeError("PredictionWriter needs a LabelDataModule whose predict_file was read (data.predict_file)")
        self._rows += prediction_rows(prediction, data.predict_source, pl_module.label_names)

    def on_predict_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Gather the rows of all processes; the first one writes the file."""
        rows = self._rows
        if trainer.world_size > 1:
            gathered: list[list[dict]] = [[] for _ in range(trainer.world_size)]
            torch.distributed.all_gather_object(gathered, rows)
            rows = [row for part in gathered for row in part]
        path = self.path(trainer)  # on every rank: `trainer.log_dir` is a broadcast under DDP
        if trainer.is_global_zero:
            write_jsonl(sorted(rows, key=lambda row: row["id"]), path)
            rank_zero_info(f"wrote {len(rows)} predictions to {path}")
        self._rows = []

    def path(self, trainer: Trainer) -> Path:
        """The output file."""
        if self.output_file is not None:
            return Path(self.output_file)
        return Path(trainer.log_dir or trainer.default_root_dir) / "predictions.jsonl"


def write_jsonl(rows: list[dict], path: Path) -> None:
    """Write `rows` as JSON lines through a temporary file renamed over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as file:
        for row in rows:
            file.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


class _Inputs(LabelDataModule):
    """Prediction-only data: the task and labels come from the model, the examples from Python."""

    name = "inputs"

    def __init__(self, inputs: Sequence[str | Sequence[str]], task: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task = task  # type: ignore[misc]  (an instance's task, from the model)
        self.inputs = inputs

    def predict_inputs(self) -> datasets.Dataset:
        """Texts (sequence tasks) or words (token tasks; a string is split at whitespace)."""
        if isinstance(self.inputs, str):
            raise TypeError("Predictor.predict takes a list of inputs, got a single string")
        if self.task == "sequence":
            bad = [i for i, text in enumerate(self.inputs) if not isinstance(text, str)]
            if bad:
                raise TypeError(f"inputs {bad[:5]} are not strings (a sequence task predicts texts)")
            return datasets.Dataset.from_dict({"text": list(self.inputs)})
        words = [text.split() if isinstance(text, str) else list(text) for text in self.inputs]
        bad = [i for i, ws in enumerate(words) if not all(isinstance(w, str) for w in ws)]
        if bad:
            raise TypeError(f"inputs {bad[:5]} are neither strings nor lists of words")
        return datasets.Dataset.from_dict({"tokens": words})


class Predictor:
    """Label texts from Python with a trained model.

    >>> Predictor.from_checkpoint("best.ckpt").predict(["a text", "another"])  # doctest: +SKIP
    [{"id": 0, "text": "a text", "label": "positive", "probs": {...}}, ...]

    Args:
        module: the trained model.
        tokenizer: tokenizer source (hub name, folder, `.gguf`, `pkg://`), the one the model was trained with.
        max_length: longest token sequence; longer inputs are cut (counted in the log; cut words are tagged `O`).
        batch_size: inputs per forward pass.
    """

    def __init__(
        self, module: LabelSupervisedModule, tokenizer: str, max_length: int = 512, batch_size: int = 32
    ) -> None:
        if tokenizer is None:
            raise ValueError("Predictor needs the tokenizer the model was trained with: Predictor(..., tokenizer=...)")
        self.module = module.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, map_location: str = "cpu", tokenizer: str | None = None, **kwargs: Any
    ) -> Predictor:
        """A predictor for a Lightning checkpoint; the tokenizer defaults to the one its data module used."""
        module, trained_with = load_trained(path, map_location)
        return cls(module, tokenizer or trained_with, **kwargs)

    @classmethod
    def from_pretrained(cls, folder: str | Path, tokenizer: str | None = None, **kwargs: Any) -> Predictor:
        """A predictor for a folder written by `save_pretrained` / `python -m app.export` (its own tokenizer)."""
        has_tokenizer = (Path(folder) / "tokenizer_config.json").is_file()
        return cls(
            LabelSupervisedModule.from_pretrained(folder),
            tokenizer or (str(folder) if has_tokenizer else None),
            **kwargs,
        )

    @torch.inference_mode()
    def predict(self, inputs: Sequence[str] | Sequence[Sequence[str]]) -> list[dict]:
        """Predictions for `inputs` (texts; for token tasks also lists of words), in input order."""
        module = self.module
        data = _Inputs(
            inputs,
            module.task,
            tokenizer=self.tokenizer,
            label_names=module.label_names,
            max_length=self.max_length,
            batch_size=self.batch_size,
        )
        data.setup("predict")
        rows: list[dict] = []
        for batch in data.predict_dataloader():
            batch = {key: value.to(module.device) for key, value in batch.items()}
            rows += prediction_rows(module.predict_step(batch, 0), data.predict_source, module.label_names)
        return sorted(rows, key=lambda row: row["id"])
