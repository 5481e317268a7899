"""Unlabeled text from a file, for the adaptation stage (`lightning_modules.MaskedNextTokenModule`, MNTP).

By default MNTP reads the training text of the target data module itself (its labels unused); this module reads any
other text instead: one text per line (`.txt`, blank lines skipped) or JSON lines with a `text` field (`.jsonl`).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import datasets
from typing_extensions import override

from datamodules.base import LabelDataModule, Split
from datamodules.predict_input import read_predict_file
from datamodules.sources import resolve_path

log = logging.getLogger(__name__)


class PlainText(LabelDataModule):
    """Texts without labels (for MNTP; label supervision has nothing to learn from them).

    Args:
        train_file: the texts, `.txt` (one per line) or `.jsonl` (objects with a `text` string); a relative path is
            looked up from the working directory, then from the repository root.
        validation_file: held-out texts in the same formats; None = hold out `validation_fraction` of `train_file`.
        test_file: test texts; None = no test split.
        validation_fraction: part of `train_file` held out for validation when there is no `validation_file`.
        validation_seed: seed of that hold-out (independent of the training `seed`).
        **kwargs: the `LabelDataModule` arguments (tokenizer, max_length, batch_size, max_train_examples, ...).
    """

    task = "sequence"
    name = "plain_text"
    default_label_names: ClassVar[list[str]] = ["text"]  # a placeholder: the data contract hands the model names

    def __init__(
        self,
        train_file: str,
        validation_file: str | None = None,
        test_file: str | None = None,
        validation_fraction: float = 0.05,
        validation_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if validation_file is None and not 0 < validation_fraction < 1:
            raise ValueError(f"data.validation_fraction must lie in (0, 1), got {validation_fraction}")
        self.files = {"train": train_file, "validation": validation_file, "test": test_file}
        self.validation_fraction, self.validation_seed = validation_fraction, validation_seed

    def _read(self, split: Split) -> datasets.Dataset:
        field = f"data.init_args.{split}_file"
        if self.files[split] is None:
            raise ValueError(f"{type(self).__name__}: no {split} texts; set {field}")
        texts = read_predict_file(resolve_path(self.files[split], field), "sequence")
        return texts.select_columns(["text"])

    @override
    def load_split(self, split: Split) -> datasets.Dataset:
        if split == "test" or self.files["validation"] is not None:
            return self._read(split)
        parts = self._read("train").train_test_split(test_size=self.validation_fraction, seed=self.validation_seed)
        part = parts["train"] if split == "train" else parts["test"]
        log.info(
            "%s/%s: %d texts (validation_fraction=%g of %s)",
            self.name,
            split,
            len(part),
            self.validation_fraction,
            self.files["train"],
        )
        return part
