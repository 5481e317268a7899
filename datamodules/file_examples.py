"""Local files -> examples: the generators that turn a dataset's files into `{"text", "label"}` rows (sequence
tasks) or `{"tokens", "tags"}` rows (token tasks), labels as ids into `label_names`.

Each is a module-level function `generator(files, label_names, **options)` that `datamodules.cache.cached_dataset`
runs once and caches; the cache key covers this file, the readers (`datamodules/readers.py`) and the label mapping
(`datamodules/labels.py`), so editing any of them re-reads the files. Errors name `file:line`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datamodules.labels import clean_text, join_text, label_id, map_label, tag_ids
from datamodules.readers import (
    DataFormatError,
    iob1_to_iob2,
    read_conll,
    read_jsonl,
    read_lines,
    read_sentiment_trees,
    read_table,
)


def table_examples(
    files: list[str],
    label_names: list[str],
    file_format: str,
    text_columns: list[str],
    label_column: str,
    joiner: str = "\n",
    fieldnames: list[str] | None = None,
    label_map: dict | None = None,
    encoding: str = "utf-8",
) -> Iterator[dict[str, Any]]:
    """`{"text", "label"}` examples of CSV / TSV / JSON-lines files: the text columns joined by `joiner`, the label
    by name or id, or through `label_map` (see `datamodules.text_table.TextTableDataModule`)."""
    for file in files:
        path = Path(file)
        if file_format == "jsonl":
            rows = read_jsonl(path, [*text_columns, label_column], encoding)
        else:
            delimiter = "\t" if file_format == "tsv" else ","
            rows = read_table(path, delimiter, [*text_columns, label_column], fieldnames, encoding)
        for record, line in rows:  # a file without rows is an error of the reader's, naming what it expected
            where = f"{path}:{line}"
            text = join_text(record, text_columns, where, joiner)
            yield {"text": text, "label": map_label(record[label_column], label_names, label_map, where, label_column)}


def line_file_examples(files: list[str], label_names: list[str], encoding: str = "utf-8") -> Iterator[dict[str, Any]]:
    """`{"text", "label"}` examples of a texts file and a labels file (class names, or numbers 1..n), line by line."""
    texts_path, labels_path = Path(files[0]), Path(files[1])
    texts, labels = read_lines(texts_path, encoding), read_lines(labels_path, encoding)
    if len(texts) != len(labels):
        raise DataFormatError(f"{texts_path} has {len(texts)} lines but {labels_path} has {len(labels)}")
    classes = {**{name: i for i, name in enumerate(label_names)}, **{str(i + 1): i for i in range(len(label_names))}}
    for line, (text, label) in enumerate(zip(texts, labels), start=1):
        label_index = map_label(label.strip(), label_names, classes, f"{labels_path}:{line}", "class")
        yield {"text": clean_text(text, f"{texts_path}:{line}"), "label": label_index}


def tree_examples(
    files: list[str], label_names: list[str], unescape: bool = True, encoding: str = "utf-8"
) -> Iterator[dict[str, Any]]:
    """`{"text", "label"}` examples of PTB sentiment-tree files: words = the leaves, label = the root's."""
    for file in files:
        path, count = Path(file), 0
        for leaves, label, line in read_sentiment_trees(path, unescape, encoding):
            count += 1
            yield {"text": " ".join(leaves), "label": label_id(label, label_names, f"{path}:{line}", "root label")}
        if not count:
            raise DataFormatError(f"{path}: no trees")


def conll_examples(
    files: list[str],
    label_names: list[str],
    token_column: int = 0,
    tag_column: int = -1,
    separator: str | None = None,
    scheme: str = "iob2",
    first_token_only: bool = False,
    encoding: str = "utf-8",
) -> Iterator[dict[str, Any]]:
    """`{"tokens", "tags"}` sentences of CoNLL column files, tags converted to IOB2 and then to ids.

    `first_token_only` keeps an entity's `B-X` and sets its `I-X` tokens to `O` (the quirk of the LS-LLaMA
    authors' OntoNotes files, see `OntoNotes5`)."""
    for file in files:
        path, count = Path(file), 0
        for tokens, tags, lines in read_conll(path, token_column, tag_column, separator, encoding):
            tags = iob1_to_iob2(tags) if scheme == "iob1" else tags
            if first_token_only:
                tags = ["O" if t.startswith("I-") else t for t in tags]
            count += 1
            where = lambda i, path=path, lines=lines: f"{path}:{lines[i]}"  # noqa: E731
            yield {"tokens": tokens, "tags": tag_ids(tags, label_names, where)}
        if not count:
            raise DataFormatError(f"{path}: no sentences")


def jsonl_token_examples(
    files: list[str], label_names: list[str], id_names: list[str], encoding: str = "utf-8"
) -> Iterator[dict[str, Any]]:
    """`{"tokens", "tags"}` sentences of JSON-lines files with `tokens` and integer `ner_tags`, the integers named
    by `id_names` (e.g. the LS-LLaMA authors' OntoNotes files)."""
    for file in files:
        path, count = Path(file), 0
        for record, line in read_jsonl(path, ["tokens", "ner_tags"], encoding):
            where = f"{path}:{line}"
            tokens, raw = record["tokens"], record["ner_tags"]
            if not tokens or len(tokens) != len(raw) or not all(isinstance(t, str) and t.strip() for t in tokens):
                raise DataFormatError(f"{where}: expected as many non-empty tokens as ner_tags ({tokens}, {raw})")
            odd = next((t for t in raw if isinstance(t, bool) or not isinstance(t, int)), None)
            if odd is not None:
                raise DataFormatError(
                    f"{where}: ner_tags holds {odd!r}, a {type(odd).__name__}; expected integer ids "
                    f"0..{len(id_names) - 1}"
                )
            if not all(0 <= t < len(id_names) for t in raw):
                raise DataFormatError(f"{where}: ner_tags {raw} outside 0..{len(id_names) - 1}")
            count += 1
            tags = [id_names[t] for t in raw]
            yield {"tokens": tokens, "tags": tag_ids(tags, label_names, lambda i, where=where: f"{where} (tag {i})")}
        if not count:
            raise DataFormatError(f"{path}: no sentences")
