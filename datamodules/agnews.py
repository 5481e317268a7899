"""AG News topic classification (120,000 / 7,600 news items, 4 classes): hub `ag_news` or local files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import datasets

from datamodules.base import Split
from datamodules.cache import cached_dataset
from datamodules.labels import TEXT_FEATURES, clean_text, map_label, text_examples_from_hub
from datamodules.readers import DataFormatError, read_lines
from datamodules.sources import FileOrHubDataModule
from datamodules.text_classification import table_examples


def line_file_examples(files: list[str], label_names: list[str]) -> Iterator[dict[str, Any]]:
    """`{"text", "label"}` examples of a texts file and a labels file (class names, or numbers 1..4), line by line."""
    texts_path, labels_path = Path(files[0]), Path(files[1])
    texts, labels = read_lines(texts_path), read_lines(labels_path)
    if len(texts) != len(labels):
        raise DataFormatError(f"{texts_path} has {len(texts)} lines but {labels_path} has {len(labels)}")
    classes = {**{name: i for i, name in enumerate(label_names)}, **{str(i + 1): i for i in range(len(label_names))}}
    for line, (text, label) in enumerate(zip(texts, labels), start=1):
        label_id = map_label(label.strip(), label_names, classes, f"{labels_path}:{line}", "class")
        yield {"text": clean_text(text, f"{texts_path}:{line}"), "label": label_id}


class AGNews(FileOrHubDataModule):
    """AG News: World, Sports, Business, Sci/Tech. `test` = the test split; `validation` = a seeded part of train.

    Local files, either layout (classes by name, or by number 1..4 in the order of `label_names`):
    - the classic `ag_news_csv`: `train.csv`, `test.csv`, no header, columns class, title, description
      (text = title and description joined by a space);
    - one item per line: `train_texts.txt` + `train_labels.txt`, `test_texts.txt` + `test_labels.txt`.
    A folder with the test files only (as `../shared/data/agnews_partial`) serves `python main.py test`;
    training then needs the hub dataset (`data_dir: null`).

    Args:
        data_dir: folder with the files; None = load `hub_name`.
        hub_name: hub dataset id (`ag_news`, also `fancyzhx/ag_news`; columns `text`, `label`).
        hub_config: hub configuration.
        validation_fraction: part of train held out for validation.
        validation_seed: seed of that hold-out (independent of the training seed).
        **kwargs: the `FileOrHubDataModule` / `LabelDataModule` arguments (tokenizer, batch_size, max_length, ...).
    """

    task = "sequence"
    name = "agnews"
    default_label_names: ClassVar[list[str]] = ["World", "Sports", "Business", "Sci/Tech"]
    hub_splits: ClassVar[dict[str, str | None]] = {"train": "train", "validation": None, "test": "test"}

    def __init__(
        self,
        data_dir: str | None = None,
        hub_name: str = "ag_news",
        hub_config: str | None = None,
        validation_fraction: float = 0.05,
        validation_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir=data_dir, hub_name=hub_name, hub_config=hub_config, **kwargs)
        self.validation_fraction, self.validation_seed = validation_fraction, validation_seed

    def read_local(self, split: Split, folder: Path) -> datasets.Dataset:
        """`<split>.csv`, else `<split>_texts.txt` + `<split>_labels.txt`."""
        if (folder / f"{split}.csv").is_file():
            one_based = {str(i + 1): i for i in range(self.num_labels)}
            return cached_dataset(
                table_examples, [folder / f"{split}.csv"], TEXT_FEATURES, self.cache_dir, file_format="csv",
                text_columns=["title", "description"], label_column="class", label_names=self.label_names,
                joiner=" ", fieldnames=["class", "title", "description"], label_map=one_based,
            )  # fmt: skip
        texts, labels = folder / f"{split}_texts.txt", folder / f"{split}_labels.txt"
        if not texts.is_file():
            raise FileNotFoundError(
                f"{texts}: file not found, nor {folder / f'{split}.csv'}: this copy of AG News has no {split} text. "
                f"Load it from the hub instead: data.data_dir: null (data.hub_name: {self.hub_name})"
            )
        return cached_dataset(line_file_examples, [texts, labels], TEXT_FEATURES, self.cache_dir,
                              label_names=self.label_names)  # fmt: skip

    def from_hub(self, dataset: datasets.Dataset, split: Split, where: str) -> datasets.Dataset:
        """Columns `text`, `label` (ClassLabel World/Sports/Business/Sci/Tech)."""
        return text_examples_from_hub(
            dataset, text_columns=["text"], label_column="label", label_names=self.label_names, where=where
        )
