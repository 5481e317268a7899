"""The base of every data module: tokenization, BIO alignment, dynamic padding, length-grouped batches.

A dataset subclass only says what its examples are: `load_split(split)` returns a `datasets.Dataset` with
- sequence tasks: `text` (str) and `label` (int id into `label_names`);
- token tasks: `tokens` (list of words) and `tags` (list of int ids into `label_names`, BIO/IOB2).
Everything after that (tokenize once with `datasets.map`, align labels to subwords, count truncation, pad per batch)
is shared, so real data and the synthetic task go through the same path.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from functools import cached_property, partial
from typing import Any, ClassVar, Literal

import datasets
import pyarrow as pa
import pyarrow.compute as pc
import torch
from datasets.fingerprint import Hasher
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase
from typing_extensions import override

from core.encoding import ExampleEncoder
from core.hub import load_tokenizer
from core.packing import pack
from datamodules import alignment
from datamodules.alignment import IGNORE_INDEX, encode_words
from datamodules.cache import code_digest
from datamodules.file_access import text_codec
from datamodules.predict_input import read_predict_file
from datamodules.samplers import LengthGroupedBatchSampler, SortedBatchSampler

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
        pack_sequences: also give each batch packed in one row without padding (`core.packing`);
            the model then computes padding-free (decoders; eager, sdpa or flash attention), same results.
        num_workers: data loader worker processes.
        seed: seed of shuffling and of training subsets.
        max_train_examples: use a seeded random subset of this many training examples (None = all).
        max_eval_examples: use the first this-many validation/test examples (None = all).
        predict_file: texts to label with `python main.py predict`: one text per line (`.txt`; token tasks split
            it at whitespace), JSON lines with a `text` field (`.jsonl`; token tasks may give `tokens`, a list of
            words, instead), or CoNLL columns with the words in the first one (`.conll`; token tasks); each may be
            compressed (`.gz`, `.bz2`, `.xz` after the suffix).
        encoding: text encoding of the files read from disk (a dataset's local files, `predict_file`): a Python
            codec name such as `utf-8` (a byte-order mark is dropped), `latin-1` or `cp1252`.
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
        pack_sequences: bool = False,
        num_workers: int = 0,
        seed: int = 42,
        max_train_examples: int | None = None,
        max_eval_examples: int | None = None,
        predict_file: str | None = None,
        encoding: str = "utf-8",
    ) -> None:
        super().__init__()
        # the tokenizer goes into checkpoints (`app.checkpointing.load_trained` finds it there); the other data
        # settings are in the run's config.yaml
        self.save_hyperparameters({"tokenizer": tokenizer})
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
        self.pack_sequences = pack_sequences
        self.num_workers = num_workers
        self.seed = seed
        self.max_train_examples = max_train_examples
        self.max_eval_examples = max_eval_examples
        self.predict_file = predict_file
        text_codec(encoding)  # an unknown encoding fails here, naming the option
        self.encoding = encoding
        self.datasets: dict[str, datasets.Dataset] = {}
        self.encoder: ExampleEncoder | None = None  # a model's own encoding (`core.encoding`), set in setup
        self.predict_source: datasets.Dataset | None = None  # the raw inputs of the predictions (text, line)
        self._train_sampler: LengthGroupedBatchSampler | None = None
        self._train_sampler_state: dict[str, Any] | None = None  # from a checkpoint, applied to the next sampler
        self._tokenizer_hash: tuple[PreTrainedTokenizerBase, str] | None = None  # see _tokenizer_fingerprint

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
        if stage == "predict":
            if "predict" not in self.datasets:
                self.predict_source = self.predict_inputs()
                self.datasets["predict"] = self.encode(self.predict_source, "predict")
            return
        for split in wanted.get(stage or "", ["train", "validation", "test"]):
            if split not in self.datasets:
                dataset = self._limit(self.load_split(split), split)
                if split == "train":
                    self._warn_unused_labels(dataset, split)
                self.datasets[split] = self.encode(dataset, split)

    def predict_inputs(self) -> datasets.Dataset:
        """The examples of `predict_file`: columns `text` (or `tokens` for token tasks) and `line`."""
        if self.predict_file is None:
            raise ValueError(f"{type(self).__name__}: set data.init_args.predict_file to the file of texts to predict")
        return read_predict_file(self.predict_file, self.task, self.encoding)

    def _warn_unused_labels(self, dataset: datasets.Dataset, split: str) -> None:
        """Warn, with counts, when some `label_names` never occur in a split's labels (`label`, or each sentence's
        `tags`). The model still gets a row of its head for each name: a rare class missing from a subset is
        legitimate, but three names on two-class data (SST-2) is usually a mistake."""
        field = "tags" if self.task == "token" else "label"
        if field not in dataset.column_names or not len(dataset):
            return
        values = dataset.select_columns([field]).with_format("arrow")[:][field]  # respects a select/shuffle
        if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
            values = pc.list_flatten(values)
        if not pa.types.is_integer(values.type):
            return
        used = set(pc.unique(values).to_pylist())
        unused = [i for i in range(self.num_labels) if i not in used]
        if not unused:
            return
        named = ", ".join(f"{self.label_names[i]!r} (id {i})" for i in unused[:10])
        named += f", ... ({len(unused) - 10} more)" if len(unused) > 10 else ""
        log.warning(
            "%s/%s: %d of the %d label_names never %s in its %d examples: %s; the model still gets a %d-way head. "
            "If the data has only %d labels, set data.init_args.label_names to them",
            self.name,
            split,
            len(unused),
            self.num_labels,
            "occurs" if len(unused) == 1 else "occur",
            len(dataset),
            named,
            self.num_labels,
            self.num_labels - len(unused),
        )

    def _limit(self, dataset: datasets.Dataset, split: str) -> datasets.Dataset:
        if split == "train" and self.max_train_examples and self.max_train_examples < len(dataset):
            log.info("train: using a random subset of %d of %d examples", self.max_train_examples, len(dataset))
            return dataset.shuffle(seed=self.seed).select(range(self.max_train_examples))
        if split != "train" and self.max_eval_examples and self.max_eval_examples < len(dataset):
            log.info("%s: using the first %d of %d examples", split, self.max_eval_examples, len(dataset))
            return dataset.select(range(self.max_eval_examples))
        return dataset

    def example_encoder(self) -> ExampleEncoder | None:
        """The attached model's own encoding of the examples (`core.encoding`), or None: label supervision."""
        module = self.trainer.lightning_module if self.trainer is not None else None
        factory = getattr(module, "example_encoder", None)
        encoder = factory() if callable(factory) else None
        if encoder is not None and not isinstance(encoder, ExampleEncoder):
            raise TypeError(f"{type(module).__name__}.example_encoder() returned {encoder!r}, not an ExampleEncoder")
        return encoder

    def encode(self, dataset: datasets.Dataset, split: str) -> datasets.Dataset:
        """Tokenize (batched `datasets.map`, cached for file-backed datasets) and check labels."""
        self.encoder = self.example_encoder()
        if self.encoder is not None:
            encode = partial(self.encoder.encode, split=split, data=self)
        else:
            encode = partial(self._encode_tokens if self.task == "token" else self._encode_texts, split=split)
        encoded = dataset.map(
            encode,
            batched=True,
            with_indices=True,
            remove_columns=dataset.column_names,
            new_fingerprint=self._encoding_fingerprint(dataset, split),
            desc=f"tokenizing {self.name}/{split}",
        )
        self._log_truncation(encoded, split)
        return encoded

    def _encoding_fingerprint(self, dataset: datasets.Dataset, split: str) -> str:
        """Cache key of a tokenized split: the raw split's fingerprint and everything the encoding depends on
        (tokenizer, max_length, labels, this code), not the data module object, whose trainer and other splits
        would give `datasets` a new hash on every run, so nothing would ever be reused."""
        code = code_digest(__file__, alignment.__file__, inspect.getfile(type(self)))  # a subclass may override
        settings = [self.task, self.max_length, self.label_names, self.name, split, code]
        if self.encoder is not None:
            settings += [
                type(self.encoder).__qualname__,
                self.encoder.cache_key(),
                code_digest(inspect.getfile(type(self.encoder))),
            ]
        return Hasher.hash([dataset._fingerprint, self._tokenizer_fingerprint(), settings])

    def _tokenizer_fingerprint(self) -> str:
        """`datasets`' hash of the tokenizer, computed once per tokenizer object: it dill-pickles the whole tokenizer
        (0.4 s of CPU for LLaMA-2's 32k vocabulary), which every split's set-up paid again (a test after a fit in
        the same process: the largest fixed cost of the test call, benchmarks.md section 12)."""
        tokenizer = self.tokenizer
        if self._tokenizer_hash is None or self._tokenizer_hash[0] is not tokenizer:
            self._tokenizer_hash = (tokenizer, Hasher.hash(tokenizer))
        return self._tokenizer_hash[1]

    def _check_label(self, label: int, split: str, index: int) -> None:
        if not 0 <= label < self.num_labels:
            raise ValueError(
                f"{self.name}/{split} example {index}: label {label} outside label_names "
                f"(ids 0..{self.num_labels - 1}: {self.label_names})"
            )

    def _tokenize(self, texts: list[str], offsets: bool = False) -> tuple[dict[str, list], list[int]]:
        """Encodings cut to `max_length`, and each text's full token count. Texts are tokenized once; only those
        longer than `max_length` (usually few) again with truncation, so special tokens stay as the tokenizer
        places them."""
        enc = {key: list(value) for key, value in self.tokenizer(texts, return_offsets_mapping=offsets).items()}
        full_lengths = [len(ids) for ids in enc["input_ids"]]
        long = [i for i, n in enumerate(full_lengths) if n > self.max_length]
        if long:
            cut = self.tokenizer(
                [texts[i] for i in long], truncation=True, max_length=self.max_length, return_offsets_mapping=offsets
            )
            for key, rows in enc.items():
                for j, i in enumerate(long):
                    rows[i] = cut[key][j]
        return enc, full_lengths

    def _encode_texts(self, batch: dict[str, list], indices: list[int], split: str) -> dict[str, list]:
        for text, index in zip(batch["text"], indices):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{self.name}/{split} example {index}: empty text")
        enc, full_lengths = self._tokenize(batch["text"])
        cut = enc["input_ids"]
        labels = batch.get("label") or [IGNORE_INDEX] * len(indices)
        for label, index in zip(labels, indices):
            if label != IGNORE_INDEX:
                self._check_label(label, split, index)
        return {
            "input_ids": cut,
            "labels": labels,
            "length": [len(ids) for ids in cut],
            "truncated": [full > len(c) for full, c in zip(full_lengths, cut)],
            "example_ids": indices,
        }

    def _encode_tokens(self, batch: dict[str, list], indices: list[int], split: str) -> dict[str, list]:
        texts = [" ".join(words) for words in batch["tokens"]]
        enc, full_lengths = self._tokenize(texts, offsets=True)
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
        if "truncated" not in encoded.column_names and "truncated_words" not in encoded.column_names:
            return  # a model's own encoding reports its own cuts
        if self.task == "sequence":
            cut = sum(column(encoded, "truncated"))
            if cut:
                log.warning(
                    "%s/%s: %d of %d texts cut to max_length=%d tokens",
                    self.name,
                    split,
                    cut,
                    len(encoded),
                    self.max_length,
                )
            return
        cut, empty = sum(column(encoded, "truncated_words")), sum(column(encoded, "empty_words"))
        if cut:
            log.warning(
                "%s/%s: %d words beyond max_length=%d tokens are predicted 'O' (entities there count as missed)",
                self.name,
                split,
                cut,
                self.max_length,
            )
        if empty:
            log.warning("%s/%s: %d words produce no token and are predicted 'O'", self.name, split, empty)

    # ------------------------------------------------------------------------------------------ loaders
    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Pad a batch to its longest sequence (dynamic padding); with `pack_sequences`, also pack it.

        The packed fields (`core.packing.pack`) are what transformers' `DataCollatorWithFlattening(return_seq_idx=
        True)` gives (same ids, restarting position ids and sequence index; tests/data/test_data_samplers.py), but
        that collator lacks what label supervision needs: it returns only those fields (no padded view, attention mask,
        `word_starts`, `word_labels` or `example_ids`, which pooling, unpacking and metrics use); it sets every
        sequence's first label to -100 for causal-LM shifting (with no BOS, as SmolLM2, the first word of every
        sentence loses its label: 3,453 of the 46,435 words of the CoNLL-2003 test set); and it fails on sequence
        labels (one int per example: `TypeError`).
        """
        if self.encoder is not None:
            return self.encoder.collate(features, self)
        if not self.pack_sequences:
            return collate(features, self.pad_token_id, self.tokenizer.padding_side, self.task)
        batch = collate(features, self.pad_token_id, "right", self.task)  # packing unpacks to right padding
        return {**batch, **pack(batch["input_ids"], batch["attention_mask"])}

    def _distributed(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 1, 0
        if trainer.world_size > 1 and trainer._accelerator_connector.use_distributed_sampler:
            raise ValueError(
                "set trainer.use_distributed_sampler=False (the CLI's default): these data loaders give each process "
                "its own batches, and Lightning's DistributedSampler injection would break their batch samplers"
            )
        return trainer.world_size, trainer.global_rank

    @override
    def train_dataloader(self) -> DataLoader:
        dataset = self.datasets["train"]
        replicas, rank = self._distributed()
        self._train_sampler = LengthGroupedBatchSampler(
            column(dataset, "length"),
            self.batch_size,
            seed=self.seed,
            mega_batch=50 if self.group_by_length else 1,
            num_replicas=replicas,
            rank=rank,
        )
        left_batches, left_examples = self._train_sampler.left_out()
        if left_batches:
            log.warning(
                "train: each epoch leaves out %d of its batches (%d examples in epoch %d, other ones in other "
                "epochs) so that the %d processes get %d batches each",
                left_batches,
                left_examples,
                self._train_sampler.epoch,
                replicas,
                len(self._train_sampler),
            )
        if self._train_sampler_state is not None:
            self._resume_train_sampler(self._train_sampler_state)
            self._train_sampler_state = None
        return self._loader(dataset, self._train_sampler)

    def _resume_train_sampler(self, state: dict[str, Any]) -> None:
        batches = len(self._train_sampler)
        if state.get("num_batches", batches) != batches:
            raise ValueError(
                f"cannot resume the training data mid-epoch: the checkpoint's epoch had {state['num_batches']} "
                f"batches per process, this run has {batches} (changed data, batch_size or number of devices?)"
            )
        self._train_sampler.load_state_dict(state)
        log.info("training data resumes in epoch %d after %d batches", state["epoch"], state["consumed"])

    def state_dict(self) -> dict[str, Any]:
        """Where the training sampler stands in its epoch; Lightning stores it in checkpoints (exact resume)."""
        if self._train_sampler is None or self.trainer is None:
            return {}
        state = self._train_sampler.state_dict()
        # the batches the training loop has finished, not those the loader fetched ahead (workers prefetch)
        state["consumed"] = self.trainer.fit_loop.epoch_loop.batch_progress.current.processed
        state["num_batches"] = len(self._train_sampler)
        return {"train_sampler": state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue the training batches of a checkpoint's epoch (applied when the training loader is built)."""
        self._train_sampler_state = state_dict.get("train_sampler")
        # Lightning warns that a mid-epoch resume is unreliable unless the DataLoader itself is stateful; here
        # the sampler state above makes it exact.
        warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch")

    def _eval_loader(self, split: str) -> DataLoader:
        if split not in self.datasets:
            self.setup({"validation": "validate", "test": "test", "predict": "predict"}.get(split))
        dataset = self.datasets[split]
        replicas, rank = self._distributed()
        sampler = SortedBatchSampler(column(dataset, "length"), self.eval_batch_size, replicas, rank)
        return self._loader(dataset, sampler)

    def _loader(self, dataset: datasets.Dataset, batch_sampler: Any) -> DataLoader:
        return DataLoader(
            dataset,
            batch_sampler=batch_sampler,
            collate_fn=self.collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            # its own generator: starting an epoch then draws nothing from the global RNG that dropout uses
            generator=torch.Generator().manual_seed(self.seed),
        )

    @override
    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("validation")

    @override
    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    @override
    def predict_dataloader(self) -> DataLoader:
        # Lightning cannot check that a custom batch sampler yields every example; SortedBatchSampler does
        warnings.filterwarnings("ignore", message="You are using a custom batch sampler `SortedBatchSampler`")
        return self._eval_loader("predict")


def column(dataset: datasets.Dataset, name: str) -> list:
    """A whole column as a list, read in one go (`dataset[name]` is a lazy column that decodes row by row: about
    10 s for the 64k examples of SST-2)."""
    return dataset.select_columns([name])[:][name]


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
    starts = [[s + (width - len(f["input_ids"]) if left and s >= 0 else 0) for s in f["word_starts"]] for f in features]
    batch["word_starts"] = _pad(starts, -1, False)
    batch["word_labels"] = _pad([f["word_labels"] for f in features], IGNORE_INDEX, False)
    batch["num_words"] = torch.tensor([len(f["word_starts"]) for f in features])
    return batch
