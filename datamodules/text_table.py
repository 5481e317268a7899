"""The shared base of text classification read from a table file per split (CSV / TSV / JSON lines) or from a hub
dataset with text and label columns: SST-2, Twitter-Fin, AG News, Amazon Reviews and `TextClassificationFiles`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets
from typing_extensions import override

from datamodules.base import Split
from datamodules.cache import cached_dataset
from datamodules.file_access import COMPRESSIONS, format_suffix
from datamodules.file_examples import table_examples
from datamodules.hub_examples import text_examples_from_hub
from datamodules.labels import TEXT_FEATURES
from datamodules.sources import FileOrHubDataModule

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}
FORMAT_NAMES = {"csv": "a CSV file", "tsv": "a TSV file", "jsonl": "a JSON-lines file"}


def table_format(path: Path) -> str:
    """`csv`, `tsv` or `jsonl` from a file's suffix (under `.gz`, `.bz2`, `.xz`), or an error saying what to do."""
    suffix = format_suffix(path)
    file_format = FORMATS.get(suffix)
    if file_format is None:
        raise ValueError(
            f"{path}: cannot tell the format from the suffix {suffix!r}; expected {', '.join(list(FORMATS)[:-1])} "
            f"or {list(FORMATS)[-1]} (or one of them compressed: {', '.join(COMPRESSIONS)}), or set "
            "data.init_args.file_format"
        )
    return file_format


class TextTableDataModule(FileOrHubDataModule):
    """Text classification from one table file per split, or from a hub dataset (see `FileOrHubDataModule`).

    A dataset says what differs in class attributes (or sets them from its arguments): `files` (split -> file
    name), `text_columns` (joined by `joiner` into the text), `label_column`, `file_format` (None = from the
    suffix), `fieldnames` (for files without a header row), `label_map` (raw label -> id; None = a label is a name
    of `label_names` or an integer id), and the hub's `hub_text_columns` / `hub_label_column` where they differ
    from the files' (None = the same), `hub_label_names` (names of integer labels that are not a `ClassLabel`).
    Texts are stripped; an empty text, a missing column or an unknown label is an error naming file and line.
    Files may be compressed (`train.csv.gz`, `.bz2`, `.xz`: the format is the suffix before).

    Args:
        **kwargs: the `FileOrHubDataModule` / `LabelDataModule` arguments (data_dir, hub_name, tokenizer, ...).
    """

    task = "sequence"
    text_columns: list[str] = ["text"]  # class defaults are read only: a module with options sets its own
    label_column: str = "label"
    joiner: str = "\n"
    file_format: str | None = None
    fieldnames: list[str] | None = None
    label_map: dict[Any, int] | None = None
    hub_text_columns: list[str] | None = None
    hub_label_column: str | None = None
    hub_label_names: list[str] | None = None

    @override
    def file_kind(self, name: str) -> str:
        """`a CSV file with columns [...]` (the format from `file_format` or the suffix)."""
        kind = FORMAT_NAMES.get(self.file_format or FORMATS.get(format_suffix(name), ""), "a table file")
        return f"{kind} with columns {[*self.text_columns, self.label_column]}"

    @override
    def read_local(self, split: Split, folder: Path) -> datasets.Dataset:
        """A split from its table file (`files`)."""
        return self.read_tables([self.split_file(folder, split)])

    def read_tables(self, paths: list[Path], **options: Any) -> datasets.Dataset:
        """Examples of table files, read with this module's columns and labels unless `options` say otherwise
        (the `table_examples` arguments); parsed once, then cached."""
        settings = {
            "file_format": self.file_format or table_format(paths[0]),
            "text_columns": self.text_columns,
            "label_column": self.label_column,
            "label_names": self.label_names,
            "joiner": self.joiner,
            "fieldnames": self.fieldnames,
            "label_map": self.label_map,
            "encoding": self.encoding,
            **options,
        }
        return cached_dataset(table_examples, paths, TEXT_FEATURES, self.cache_dir, **settings)

    @override
    def from_hub(self, dataset: datasets.Dataset, split: Split, where: str) -> datasets.Dataset:
        """A hub split's text and label columns."""
        return text_examples_from_hub(
            dataset,
            text_columns=self.hub_text_columns or self.text_columns,
            label_column=self.hub_label_column or self.label_column,
            label_names=self.label_names,
            where=where,
            hub_label_names=self.hub_label_names,
            label_map=self.label_map,
        )
