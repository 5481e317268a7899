"""Text classification from your own CSV / TSV / JSON-lines files or any hub dataset with a text and a label column.

Also home of the example generators the dataset modules share (parsed once, then cached: `datamodules.cache`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import datasets
from typing_extensions import override

from datamodules.base import Split
from datamodules.cache import cached_dataset
from datamodules.labels import TEXT_FEATURES, join_text, map_label, text_examples_from_hub
from datamodules.readers import DataFormatError, read_jsonl, read_table
from datamodules.sources import FileOrHubDataModule

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}


def table_examples(
    files: list[str], file_format: str, text_columns: list[str], label_column: str, label_names: list[str],
    joiner: str = "\n", fieldnames: list[str] | None = None, label_map: dict | None = None,
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """`{"text", "label"}` examples of CSV / TSV / JSON-lines files (see `TextClassificationFiles`)."""
    for file in files:
        path, count = Path(file), 0
        if file_format == "jsonl":
            rows = read_jsonl(path, [*text_columns, label_column])
        else:
            rows = read_table(path, "\t" if file_format == "tsv" else ",", [*text_columns, label_column], fieldnames)
        for record, line in rows:
            where = f"{path}:{line}"
            count += 1
            text = join_text(record, text_columns, where, joiner)
            yield {"text": text, "label": map_label(record[label_column], label_names, label_map, where, label_column)}
        if not count:
            raise DataFormatError(f"{path}: no examples")


class TextClassificationFiles(FileOrHubDataModule):
    """Text classification on your own files or on any hub dataset with text and label columns.

    Labels are given by name (a value of `label_names`) or by integer id; a name wins where both could apply.
    Texts are stripped; an empty text, a missing column or an unknown label is an error naming file and line.
    Without a validation file (or hub validation split), `validation` is a seeded part of train.

    Args:
        data_dir: folder holding the files; None = load `hub_name` from the hub.
        train_file: training file, relative to `data_dir`.
        validation_file: validation file; None = hold out `validation_fraction` of train.
        test_file: test file; None = no test split.
        text_column: column(s) holding the text; several are joined by newlines (e.g. title and body).
        label_column: column holding the label (name or integer id).
        file_format: `csv` (quoted), `tsv` (no quoting, GLUE style) or `jsonl`; None = from the file suffix.
        fieldnames: column names of CSV/TSV files without a header row; None = the first row is the header.
        hub_name: hub dataset id, used when `data_dir` is None.
        hub_config: hub dataset configuration.
        hub_splits: our split -> the hub's split name; `validation: null` holds validation out of train.
        hub_label_names: names of the hub label column's integer values when it is not a `ClassLabel`.
        validation_fraction: part of train held out for validation when there is no validation split.
        validation_seed: seed of that hold-out (independent of the training seed).
        **kwargs: the `LabelDataModule` arguments; `label_names` is required (names by id).
    """

    task = "sequence"
    name = "text_files"

    def __init__(
        self,
        data_dir: str | None = None,
        train_file: str | None = "train.csv",
        validation_file: str | None = None,
        test_file: str | None = "test.csv",
        text_column: str | list[str] = "text",
        label_column: str = "label",
        file_format: Literal["csv", "tsv", "jsonl"] | None = None,
        fieldnames: list[str] | None = None,
        hub_name: str | None = None,
        hub_config: str | None = None,
        hub_splits: dict[str, str | None] | None = None,
        hub_label_names: list[str] | None = None,
        validation_fraction: float = 0.05,
        validation_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir=data_dir, hub_name=hub_name, hub_config=hub_config, **kwargs)
        self.files: dict[str, str | None] = {"train": train_file, "validation": validation_file, "test": test_file}
        self.text_columns = [text_column] if isinstance(text_column, str) else list(text_column)
        self.label_column, self.file_format, self.fieldnames = label_column, file_format, fieldnames
        self.hub_splits = dict(hub_splits or type(self).hub_splits)
        self.hub_label_names = hub_label_names
        self.validation_fraction, self.validation_seed = validation_fraction, validation_seed

    @override
    def holds_out_validation(self) -> bool:
        return self.files["validation"] is None if self.data_dir is not None else super().holds_out_validation()

    def read_local(self, split: Split, folder: Path) -> datasets.Dataset:
        """A split from its CSV / TSV / JSON-lines file."""
        name = self.files[split]
        if name is None:
            raise FileNotFoundError(f"{type(self).__name__}: no {split}_file given (data.{split}_file)")
        path = self.local_file(folder, name)
        file_format = self.file_format or FORMATS.get(path.suffix.lower())
        if file_format is None:
            raise ValueError(f"{path}: cannot tell the format from the suffix; set data.file_format")
        return cached_dataset(
            table_examples, [path], TEXT_FEATURES, self.cache_dir, file_format=file_format,
            text_columns=self.text_columns, label_column=self.label_column, label_names=self.label_names,
            fieldnames=self.fieldnames,
        )  # fmt: skip

    def from_hub(self, dataset: datasets.Dataset, split: Split, where: str) -> datasets.Dataset:
        """A hub split's text and label columns."""
        return text_examples_from_hub(
            dataset, text_columns=self.text_columns, label_column=self.label_column, label_names=self.label_names,
            where=where, hub_label_names=self.hub_label_names,
        )  # fmt: skip
