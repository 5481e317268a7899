"""Text classification from your own CSV / TSV / JSON-lines files or any hub dataset with a text and a label column."""

from __future__ import annotations

from typing import Any, Literal

from datamodules.text_table import TextTableDataModule


class TextClassificationFiles(TextTableDataModule):
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
        **kwargs: the `FileOrHubDataModule` / `LabelDataModule` arguments (validation_fraction, encoding, ...);
            `label_names` is required (names by id).
    """

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
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir=data_dir, hub_name=hub_name, hub_config=hub_config, **kwargs)
        self.files = {"train": train_file, "validation": validation_file, "test": test_file}
        self.text_columns = [text_column] if isinstance(text_column, str) else list(text_column)
        self.label_column, self.file_format, self.fieldnames = label_column, file_format, fieldnames
        self.hub_splits = dict(hub_splits or type(self).hub_splits)
        self.hub_label_names = hub_label_names
