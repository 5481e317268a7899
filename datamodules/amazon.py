"""Multilingual Amazon Reviews (`amazon_reviews_multi`: de, en, es, fr, ja, zh; 200,000 / 5,000 / 5,000 reviews per
language): product category (31 classes, the paper's Table 3) or star rating."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal

import datasets
from typing_extensions import override

from datamodules.base import Split
from datamodules.sources import load_hub
from datamodules.text_table import TextTableDataModule

Language = Literal["de", "en", "es", "fr", "ja", "zh"]
PRODUCT_CATEGORIES = [
    "apparel",
    "automotive",
    "baby_product",
    "beauty",
    "book",
    "camera",
    "digital_ebook_purchase",
    "digital_video_download",
    "drugstore",
    "electronics",
    "furniture",
    "grocery",
    "home",
    "home_improvement",
    "industrial_supplies",
    "jewelry",
    "kitchen",
    "lawn_and_garden",
    "luggage",
    "musical_instruments",
    "office_product",
    "other",
    "pc",
    "personal_care_appliances",
    "pet_products",
    "shoes",
    "sports",
    "toy",
    "video_games",
    "watch",
    "wireless",
]
STARS = ["1", "2", "3", "4", "5"]


class AmazonReviews(TextTableDataModule):
    """Multilingual Amazon Reviews, one or several languages together (their examples are concatenated).

    The text is the review title and body joined by a newline (as the paper's code does); the label is the
    `product_category` (31 names, the paper's Table 3) or the `stars` (1..5, label names "1".."5"). Splits: the
    dataset's own train / validation / test.

    Local files: the original JSON-lines release, `dataset_<lang>_<split>.json` for split train, dev, test, either
    directly in `data_dir` or in `data_dir/<split>/`. Hub: `amazon_reviews_multi` with one configuration per language
    (withdrawn from the hub by its provider: a local copy or a mirror with the same columns is needed).

    Args:
        data_dir: folder with the JSON-lines files; None = load `hub_name`.
        hub_name: hub dataset id (configurations = language codes).
        languages: the languages to use, e.g. `[de, en]`.
        label_column: `product_category` or `stars`.
        text_columns: the text fields, joined by newlines.
        **kwargs: the `FileOrHubDataModule` / `LabelDataModule` arguments (tokenizer, batch_size, max_length, ...);
            `label_names` defaults to the 31 categories or to "1".."5" after `label_column`.
    """

    name = "amazon_reviews"
    file_splits: ClassVar[dict[str, str]] = {"train": "train", "validation": "dev", "test": "test"}

    def __init__(
        self,
        data_dir: str | None = None,
        hub_name: str = "amazon_reviews_multi",
        languages: list[Language] | None = None,
        label_column: Literal["product_category", "stars"] = "product_category",
        text_columns: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs["label_names"] = kwargs.get("label_names") or (STARS if label_column == "stars" else PRODUCT_CATEGORIES)
        super().__init__(data_dir=data_dir, hub_name=hub_name, hub_config=None, **kwargs)
        self.languages = list(languages or ["en"])
        self.label_column = label_column
        self.text_columns = list(text_columns or ["review_title", "review_body"])
        # stars are integers 1..5 -> ids 0..4; categories are strings -> ids by name
        self.label_map = {star: star - 1 for star in range(1, 6)} if label_column == "stars" else None
        if self.label_map and self.num_labels != 5:
            raise ValueError(f"label_column: stars needs 5 label_names, got {self.label_names}")

    @override
    def read_local(self, split: Split, folder: Path) -> datasets.Dataset:
        """`dataset_<lang>_<split>.json` of each language."""
        part = self.file_splits[split]
        names = [f"dataset_{lang}_{part}.json" for lang in self.languages]
        paths = [folder / part / n if (folder / part / n).is_file() else self.local_file(folder, n) for n in names]
        return self.read_tables(paths)

    @cached_property
    @override
    def _hub(self) -> datasets.DatasetDict:
        per_language = [load_hub(self.hub_name, lang) for lang in self.languages]
        return datasets.DatasetDict(
            {split: datasets.concatenate_datasets([d[split] for d in per_language]) for split in per_language[0]}
        )

    @override
    def from_hub(self, dataset: datasets.Dataset, split: Split, where: str) -> datasets.Dataset:
        """Columns `review_title`, `review_body`, `stars` (int 1..5), `product_category` (string)."""
        return super().from_hub(dataset, split, f"{where} ({'+'.join(self.languages)})")
