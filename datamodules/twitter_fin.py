"""Twitter Financial News sentiment (9,543 / 2,388 tweets): the CSV files or the hub dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import datasets

from datamodules.base import Split
from datamodules.cache import cached_dataset
from datamodules.labels import TEXT_FEATURES, text_examples_from_hub
from datamodules.sources import FileOrHubDataModule
from datamodules.text_classification import table_examples


class TwitterFin(FileOrHubDataModule):
    """Twitter Financial News sentiment: 0 Bearish, 1 Bullish, 2 Neutral.

    Local files: `sent_train.csv` and `sent_valid.csv` (CSV, header `text,label`, quoted fields), the hub dataset's
    own files. Splits: `test` = valid (the paper's test set), `validation` = a seeded `validation_fraction` of
    train, `train` = the rest.

    Args:
        data_dir: folder with the two CSV files; None = load `hub_name`.
        hub_name: hub dataset id (splits `train`, `validation`; columns `text`, `label`).
        hub_config: hub configuration.
        validation_fraction: part of train held out for validation.
        validation_seed: seed of that hold-out (independent of the training seed).
        **kwargs: the `FileOrHubDataModule` / `LabelDataModule` arguments (tokenizer, batch_size, max_length, ...).
    """

    task = "sequence"
    name = "twitter_fin"
    default_label_names: ClassVar[list[str]] = ["Bearish", "Bullish", "Neutral"]
    hub_splits: ClassVar[dict[str, str | None]] = {"train": "train", "validation": None, "test": "validation"}
    files: ClassVar[dict[str, str]] = {"train": "sent_train.csv", "test": "sent_valid.csv"}

    def __init__(
        self,
        data_dir: str | None = None,
        hub_name: str = "zeroshot/twitter-financial-news-sentiment",
        hub_config: str | None = None,
        validation_fraction: float = 0.05,
        validation_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir=data_dir, hub_name=hub_name, hub_config=hub_config, **kwargs)
        self.validation_fraction, self.validation_seed = validation_fraction, validation_seed

    def read_local(self, split: Split, folder: Path) -> datasets.Dataset:
        """`sent_train.csv` (train) or `sent_valid.csv` (test)."""
        path = self.local_file(folder, self.files[split])
        return cached_dataset(
            table_examples, [path], TEXT_FEATURES, self.cache_dir, file_format="csv", text_columns=["text"],
            label_column="label", label_names=self.label_names,
        )  # fmt: skip

    def from_hub(self, dataset: datasets.Dataset, split: Split, where: str) -> datasets.Dataset:
        """Columns `text`, `label` (integer ids)."""
        return text_examples_from_hub(
            dataset, text_columns=["text"], label_column="label", label_names=self.label_names, where=where
        )
