"""Twitter Financial News sentiment (9,543 / 2,388 tweets): the CSV files or the hub dataset."""

from __future__ import annotations

from typing import Any, ClassVar

from datamodules.text_table import TextTableDataModule


class TwitterFin(TextTableDataModule):
    """Twitter Financial News sentiment: 0 Bearish, 1 Bullish, 2 Neutral.

    Local files: `sent_train.csv` and `sent_valid.csv` (CSV, header `text,label`, quoted fields), the hub dataset's
    own files. Splits: `test` = valid (the paper's test set), `validation` = a seeded `validation_fraction` of
    train, `train` = the rest.

    Args:
        data_dir: folder with the two CSV files; None = load `hub_name`.
        hub_name: hub dataset id (splits `train`, `validation`; columns `text`, `label`).
        hub_config: hub configuration.
        **kwargs: the `FileOrHubDataModule` / `LabelDataModule` arguments (validation_fraction, tokenizer, ...).
    """

    name = "twitter_fin"
    default_label_names: ClassVar[list[str]] = ["Bearish", "Bullish", "Neutral"]
    hub_splits: ClassVar[dict[str, str | None]] = {"train": "train", "validation": None, "test": "validation"}
    files: ClassVar[dict[str, str | None]] = {"train": "sent_train.csv", "test": "sent_valid.csv"}

    def __init__(
        self,
        data_dir: str | None = None,
        hub_name: str = "zeroshot/twitter-financial-news-sentiment",
        hub_config: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir=data_dir, hub_name=hub_name, hub_config=hub_config, **kwargs)
