"""AG News topic classification (120,000 / 7,600 news items, 4 classes): hub `ag_news` or local files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import datasets
from typing_extensions import override

from datamodules.base import Split
from datamodules.cache import cached_dataset
from datamodules.file_examples import line_file_examples
from datamodules.labels import TEXT_FEATURES
from datamodules.text_table import TextTableDataModule


class AGNews(TextTableDataModule):
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
        **kwargs: the `FileOrHubDataModule` / `LabelDataModule` arguments (validation_fraction, tokenizer, ...).
    """

    name = "agnews"
    default_label_names: ClassVar[list[str]] = ["World", "Sports", "Business", "Sci/Tech"]
    hub_splits: ClassVar[dict[str, str | None]] = {"train": "train", "validation": None, "test": "test"}
    fieldnames = ["class", "title", "description"]
    text_columns, label_column, joiner = ["title", "description"], "class", " "
    hub_text_columns, hub_label_column = ["text"], "label"

    def __init__(
        self, data_dir: str | None = None, hub_name: str = "ag_news", hub_config: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(data_dir=data_dir, hub_name=hub_name, hub_config=hub_config, **kwargs)

    @override
    def read_local(self, split: Split, folder: Path) -> datasets.Dataset:
        """`<split>.csv`, else `<split>_texts.txt` + `<split>_labels.txt`."""
        if (folder / f"{split}.csv").exists():  # a folder of that name is named as such, not passed over
            one_based = {str(i + 1): i for i in range(self.num_labels)}
            return self.read_tables([folder / f"{split}.csv"], label_map=one_based)
        texts, labels = folder / f"{split}_texts.txt", folder / f"{split}_labels.txt"
        if not texts.is_file():
            raise FileNotFoundError(
                f"{texts}: file not found, nor {folder / f'{split}.csv'}: this copy of AG News has no {split} text. "
                f"Load it from the hub instead: data.data_dir: null (data.hub_name: {self.hub_name})"
            )
        return cached_dataset(
            line_file_examples,
            [texts, labels],
            TEXT_FEATURES,
            self.cache_dir,
            label_names=self.label_names,
            encoding=self.encoding,
        )
