"""The base of every data module: tokenization, BIO alignment, dynamic padding, length-grouped batches.

A dataset subclass only says what its examples are: `load_split(split)` returns a `datasets.Dataset` with
- sequence tasks: `text` (str) and `label` (int id into `label_names`);
- token tasks: `tokens` (list of words) and `tags` (list of int ids into `label_names`, BIO/IOB2).
Everything after that (tokenize once with `datasets.map`, align labels to subwords, count truncation, pad per batch)
is shared, so real data and the synthetic task go through the same path.
"""

from __future__ import annotations

import logging
from functools import cached_property, partial
from typing import Any, ClassVar, Literal

import datasets
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from datamodules.alignment import IGNORE_INDEX, encode_words
from datamodules.samplers import LengthGroupedBatchSampler, SortedBatchSampler
from lightning_modules.hub import load_tokenizer

log = logging.getLogger(__name__)

Split = Literal["train", "validation", "test"]


class LabelDataModule(LightningDataModule):
    """Base data module; subclasses implement `load_split` and set `task` and `default_label_names`.

    Args:
        tokenizer: tokenizer source (hub name, folder, `.gguf` file, `pkg://package/file`); the CLI fills it from
            `model.backbone` when left out.
        label_names: label names by id; None = the dataset's own.
        max_length: longest token sequence; longer texts are cut (counted in the log; for token tasks the cut
            words are predicted `O`, so their entities count as missed).
        batch_size: training batch size (paper: 8).
        eval_batch_size: evaluation batch size; None = `batch_size`.
        group_by_length: put examples of similar length in the same training batch (less padding, same
            examples per epoch); False = plain random batches.
        padding_side: `right` or `left`; None = the tokenizer's own. Results do not depend on it.
        num_workers: data loader worker processes.
        seed: seed of shuffling and of training subsets.
        max_train_examples: use a seeded random subset of this many training examples (None = all).
        max_eval_examples: use the first this-many validation/test examples (None = all).
    """

    task: ClassVar[Literal["sequence", "token"]] = "sequence"
    default_label_names: ClassVar[list[str]] = []
    name: ClassVar[str] = "data"

    def __init__(
        self,
        tokenizer: str | None = None,
        label_names: list[str] | None = None,
        max_length: int = 128,
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        group_by_length: bool = True,
        padding_side: Literal["right", "left"] | None = None,
        num_workers: int = 0,
        seed: int = 42,
        max_train_examples: int | None = None,
        max_eval_examples: int | None = None,
    ) -> None:
        super().__init__()
        self.tokenizer_source = tokenizer
        self._label_names = list(label_names) if label_names else list(self.default_label_names)
        if not self._label_names:
            raise ValueError(f"{type(self).__name__}: data.label_names must be given (no default label set)")
        if len(set(self._label_names)) != len(self._label_names):
            raise ValueError(f"data.label_names has duplicates: {self._label_names}")
        self.max_length = max_length
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.group_by_length = group_by_length
        self.padding_side = padding_side
        self.num_workers = num_workers
        self.seed = seed
        self.max_train_examples = max_train_examples
        self.max_eval_examples = max_eval_examples
        self.datasets: dict[str, datasets.Dataset] = {}
        self._train_sampler: LengthGroupedBatchSampler | None = None

    # ----------------------------------------------------------------------------- what the model links to
    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The loaded tokenizer (pads with eos/unk when it has no pad token; see `load_tokenizer`)."""
        if self.tokenizer_source is None:
            raise ValueError(f"{type(self).__name__}: set data.tokenizer (or model.backbone, which the CLI copies)")
        return load_tokenizer(self.tokenizer_source, self.padding_side)

    @property
    def label_names(self) -> list[str]:
        """Label names by id."""
        return self._label_names

    @property
    def num_labels(self) -> int:
        """Number of labels."""
        return len(self._label_names)

    @property
    def pad_token_id(self) -> int:
        """The tokenizer's pad id."""
        return self.tokenizer.pad_token_id

    @property
    def vocab_size(self) -> int:
        """Number of token ids the tokenizer can produce."""
        return len(self.tokenizer)

    # ------------------------------------------------------------------------------------- to implement
    def load_split(self, split: Split) -> datasets.Dataset:
        """Raw examples of a split (columns: see the module docstring)."""
        raise NotImplementedError

    # ---------------------------------------------------------------------------------------- set-up
    def setup(self, stage: str | None = None) -> None:
        """Load and tokenize the splits a stage needs (each once)."""
        wanted = {"fit": ["train", "validation"], "validate": ["validation"], "test": ["test"]}
        for split in wanted.get(stage or "", ["train", "validation", "test"]):
            if split not in self.datasets:
                self.datasets[split] = self.encode(self._limit(self.load_split(split), split), split)

    def _limit(self, dataset: datasets.Dataset, split: str) -> datasets.Dataset:
        if split == "train" and self.max_train_examples and self.max_train_examples < len(dataset):
            log.info("train: using a random subset of %d of %d examples", self.max_train_examples, len(dataset))
            return dataset.shuffle(seed=self.seed).select(range(self.max_train_examples))
        if split != "train" and self.max_eval_examples and self.max_eval_examples < len(dataset):
            log.info("%s: using the first %d of %d examples", split, self.max_eval_examples, len(dataset))
            return dataset.select(range(self.max_eval_examples))
        return dataset

    def encode(self, dataset: datasets.Dataset, split: str) -> datasets.Dataset:
        """Tokenize (batched `datasets.map`, cached for file-backed datasets) and check labels."""
        encode = self._encode_tokens if self.task == "token" else self._encode_texts
        encoded = dataset.map(
            partial(encode, split=split),
            batched=True,
            with_indices=True,
            remove_columns=dataset.column_names,
            desc=f"tokenizing {self.name}/{split}",
        )
        self._log_truncation(encoded, split)
        return encoded

    def _check_label(self, label: int, split: str, index: int) -> None:
        if not 0 <= label < self.num_labels:
            raise ValueError(
                f"{self.name}/{split} example {index}: label {label} outside label_names "
                f"(ids 0..{self.num_labels - 1}: {self.label_names})"
            )

    def _encode_texts(self, batch: dict[str, list], indices: list[int], split: str) -> dict[str, list]:
        for text, index in zip(batch["text"], indices):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{self.name}/{split} example {index}: empty text")
        full = self.tokenizer(batch["text"])["input_ids"]
        cut = self.tokenizer(batch["text"], truncation=True, max_length=self.max_length)["input_ids"]
        labels = batch.get("label") or [IGNORE_INDEX] * len(indices)
        for label, index in zip(labels, indices):
            if label != IGNORE_INDEX:
                self._check_label(label, split, index)
        return {
            "input_ids": cut,
            "labels": labels,
            "length": [len(ids) for ids in cut],
            "truncated": [len(f) > len(c) for f, c in zip(full, cut)],
            "example_ids": indices,
        }

    def _encode_tokens(self, batch: dict[str, list], indices: list[int], split: str) -> dict[str, list]:
        texts = [" ".join(words) for words in batch["tokens"]]
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length, return_offsets_mapping=True)
        full_lengths = [len(ids) for ids in self.tokenizer(texts)["input_ids"]]
        tags_batch = batch.get("tags") or [None] * len(indices)
        out: dict[str, list] = {k: [] for k in ("input_ids", "labels", "word_starts", "word_labels", "length")}
        out.update(truncated_words=[], empty_words=[], example_ids=indices)
        for i, (words, tags, index) in enumerate(zip(batch["tokens"], tags_batch, indices)):
            if not words:
                raise ValueError(f"{self.name}/{split} example {index}: sentence without words")
            for tag in tags or []:
                self._check_label(tag, split, index)
            ids = enc["input_ids"][i]
            try:
                aligned = encode_words(words, ids, enc["offset_mapping"][i], tags, full_lengths[i] > len(ids))
            except ValueError as error:
                raise ValueError(f"{self.name}/{split} example {index}: {error}") from error
            out["input_ids"].append(ids)
            out["labels"].append(aligned.labels or [IGNORE_INDEX] * len(ids))
            out["word_starts"].append(aligned.word_starts)
            out["word_labels"].append(list(tags) if tags is not None else [IGNORE_INDEX] * len(words))
            out["length"].append(len(ids))
            out["truncated_words"].append(aligned.truncated_words)
            out["empty_words"].append(aligned.empty_words)
        return out

    def _log_truncation(self, encoded: datasets.Dataset, split: str) -> None:
        if self.task == "sequence":
            cut = sum(encoded["truncated"])
            if cut:
                log.warning("%s/%s: %d of %d texts cut to max_length=%d tokens", self.name, split, cut,
                            len(encoded), self.max_length)  # fmt: skip
            return
        cut, empty = sum(encoded["truncated_words"]), sum(encoded["empty_words"])
        if cut:
            log.warning("%s/%s: %d words beyond max_length=%d tokens are predicted 'O' (entities there count as "
                        "missed)", self.name, split, cut, self.max_length)  # fmt: skip
        if empty:
            log.warning("%s/%s: %d words produce no token and are predicted 'O'", self.name, split, empty)

    # ------------------------------------------------------------------------------------------ loaders
    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Pad a batch to its longest sequence (dynamic padding)."""
        return collate(features, self.pad_token_id, self.tokenizer.padding_side, self.task)

    def _distributed(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def train_dataloader(self) -> DataLoader:  # noqa: D102
        dataset = self.datasets["train"]
        replicas, rank = self._distributed()
        self._train_sampler = LengthGroupedBatchSampler(
            dataset["length"],
            self.batch_size,
            seed=self.seed,
            mega_batch=50 if self.group_by_length else 1,
            num_replicas=replicas,
            rank=rank,
        )
        return self._loader(dataset, self._train_sampler)

    def _eval_loader(self, split: str) -> DataLoader:
        if split not in self.datasets:
            self.setup({"validation": "validate", "test": "test"}.get(split))
        dataset = self.datasets[split]
        replicas, rank = self._distributed()
        return self._loader(dataset, SortedBatchSampler(dataset["length"], self.eval_batch_size, replicas, rank))

    def _loader(self, dataset: datasets.Dataset, batch_sampler: Any) -> DataLoader:
        return DataLoader(
            dataset,
            batch_sampler=batch_sampler,
            collate_fn=self.collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:  # noqa: D102
        return self._eval_loader("validation")

    def test_dataloader(self) -> DataLoader:  # noqa: D102
        return self._eval_loader("test")


def _pad(rows: list[list[int]], value: int, left: bool) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([[value] * (width - len(r)) + r if left else r + [value] * (width - len(r)) for r in rows])


def collate(features: list[dict[str, Any]], pad_token_id: int, padding_side: str, task: str) -> dict[str, torch.Tensor]:
    """Pad `input_ids` (B, T), build `attention_mask` (B, T); labels are (B,) or (B, T); token tasks also get
    `word_starts` (B, W) (token index of each word's first subword, shifted by left padding; -1 = none),
    `word_labels` (B, W) (gold word tags, -100 after the sentence) and `num_words` (B,)."""
    left = padding_side == "left"
    ids = [f["input_ids"] for f in features]
    batch = {
        "input_ids": _pad(ids, pad_token_id, left),
        "attention_mask": _pad([[1] * len(r) for r in ids], 0, left),
        "example_ids": torch.tensor([f["example_ids"] for f in features]),
    }
    if task == "sequence":
        batch["labels"] = torch.tensor([f["labels"] for f in features])
        return batch
    batch["labels"] = _pad([f["labels"] for f in features], IGNORE_INDEX, left)
    width = batch["input_ids"].shape[1]
    starts = [[s + (width - len(f["input_ids"]) if left and s >= 0 else 0) for s in f["word_starts"]]
              for f in features]  # fmt: skip
    batch["word_starts"] = _pad(starts, -1, False)
    batch["word_labels"] = _pad([f["word_labels"] for f in features], IGNORE_INDEX, False)
    batch["num_words"] = torch.tensor([len(f["word_starts"]) for f in features])
    return batch
