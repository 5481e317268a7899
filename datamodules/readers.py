"""File-format readers: CoNLL columns, PTB sentiment trees, CSV/TSV, JSON lines and plain line files.

Each reader yields examples together with the line they come from, and stops at the first bad line with one
`DataFormatError` that names `file:line` and what was expected there. Readers know nothing about label ids;
mapping names to ids (and its errors) is in `datamodules/labels.py`.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

DOCSTART = "-DOCSTART-"
PTB_ESCAPES = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}
PTB_LEAF = re.compile(r"\(\s*\S+\s+([^()\s]+)\s*\)")


class DataFormatError(ValueError):
    """Bad input data; the message starts with `file:line` (or hub split, row and column)."""


def require_file(path: Path, hint: str = "") -> Path:
    """`path` if it is a file, else a FileNotFoundError naming it (and `hint`, e.g. where else to get the data)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found{'; ' + hint if hint else ''}")
    return path


def _open(path: Path) -> TextIO:
    # newline="" leaves line endings to the csv module; utf-8-sig drops a byte-order mark
    return open(require_file(path), encoding="utf-8-sig", newline="")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """`(line number, line)` without its LF or CRLF ending; a lone CR inside a line does not split it."""
    lines = require_file(path).read_text(encoding="utf-8-sig").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        yield number, line[:-1] if line.endswith("\r") else line


def read_conll(
    path: Path, token_column: int = 0, tag_column: int = -1, separator: str | None = None
) -> Iterator[tuple[list[str], list[str], list[int]]]:
    """Sentences of a CoNLL-style column file: `(tokens, tags, line numbers)`.

    One token per line, columns split by `separator` (None = any whitespace), a blank line between sentences,
    `-DOCSTART-` lines dropped. Every line of a file must have as many columns as its first one.

    Args:
        path: the file.
        token_column: index of the word column.
        tag_column: index of the tag column (negative counts from the end).
        separator: column separator; None splits on runs of whitespace.
    """
    tokens: list[str] = []
    tags: list[str] = []
    lines: list[int] = []
    width = 0
    for number, line in _lines(path):
        if not line or line.isspace():
            if tokens:
                yield tokens, tags, lines
            tokens, tags, lines = [], [], []
            continue
        columns = line.split(separator)
        if len(columns) != width:
            if width:
                raise DataFormatError(
                    f"{path}:{number}: expected {width} columns (as on the file's first line), found "
                    f"{len(columns)}: {line!r}"
                )
            width = len(columns)
            if not -width <= token_column < width or not -width <= tag_column < width:
                raise DataFormatError(
                    f"{path}:{number}: token_column={token_column} / tag_column={tag_column} outside the line's "
                    f"{width} columns: {line!r}"
                )
        token = columns[token_column]
        if token == DOCSTART:
            continue
        if not token or token.isspace():
            raise DataFormatError(f"{path}:{number}: empty token in column {token_column}: {line!r}")
        tokens.append(token)
        tags.append(columns[tag_column])
        lines.append(number)
    if tokens:
        yield tokens, tags, lines


def read_sentiment_trees(path: Path, unescape: bool = True) -> Iterator[tuple[list[str], int, int]]:
    r"""Sentences of a PTB sentiment-tree file (SST), one tree per line: `(leaves, root label, line number)`.

    Args:
        path: the file.
        unescape: turn PTB bracket escapes (`-LRB-` ...) back into brackets and `\\/` into `/`.
    """
    for number, line in _lines(path):
        line = line.strip()
        if not line:
            continue
        match = re.match(r"\(\s*(\d+)\s", line)
        if match is None or line.count("(") != line.count(")"):
            raise DataFormatError(f"{path}:{number}: expected a tree '(label (label word) ...)', got {line[:80]!r}")
        leaves = PTB_LEAF.findall(line)
        if not leaves:
            raise DataFormatError(f"{path}:{number}: tree without words: {line[:80]!r}")
        if unescape:
            leaves = [PTB_ESCAPES.get(w, w).replace("\\/", "/").replace("\\*", "*") for w in leaves]
        yield leaves, int(match.group(1)), number


def read_table(
    path: Path, delimiter: str, columns: list[str], fieldnames: list[str] | None = None
) -> Iterator[tuple[dict[str, str], int]]:
    """Rows of a CSV/TSV file as `(row, line number)`; `columns` must all be present.

    Args:
        path: the file.
        delimiter: `,` (CSV with quoting) or a tab (TSV, read without quoting as in GLUE).
        columns: the columns the caller needs; a missing one is an error naming the file's header.
        fieldnames: column names of a file without a header row; None = the first row is the header.
    """
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    with _open(path) as file:
        reader = csv.DictReader(file, fieldnames=fieldnames, delimiter=delimiter, quoting=quoting)
        header = reader.fieldnames or []
        missing = [c for c in columns if c not in header]
        if missing:
            raise DataFormatError(f"{path}:1: missing column(s) {missing}; the header has {header}")
        for row in reader:
            if None in row or any(row[c] is None for c in header):
                raise DataFormatError(
                    f"{path}:{reader.line_num}: expected {len(header)} fields ({header}), found a different number"
                )
            yield row, reader.line_num


def read_jsonl(path: Path, columns: list[str]) -> Iterator[tuple[dict, int]]:
    """Objects of a JSON-lines file as `(object, line number)`; each must hold `columns`."""
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{path}:{number}: invalid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise DataFormatError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        missing = [c for c in columns if c not in record]
        if missing:
            raise DataFormatError(f"{path}:{number}: missing field(s) {missing}; the object has {list(record)}")
        yield record, number


def read_lines(path: Path) -> list[str]:
    """The lines of a text file, without line endings (LF or CRLF); a last empty line is not counted."""
    return [line for _, line in _lines(path)]


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """IOB1 (an entity starts with `I-X` unless it follows an `X` entity) to IOB2/BIO (every entity starts `B-X`)."""
    converted = []
    for index, tag in enumerate(tags):
        if tag.startswith("I-"):
            previous = converted[index - 1] if index else "O"
            if previous == "O" or previous[2:] != tag[2:]:
                tag = "B-" + tag[2:]
        converted.append(tag)
    return converted
