"""File-format readers: CoNLL columns, PTB sentiment trees, CSV/TSV, JSON lines and plain line files.

Each reader yields records together with the line they come from, and stops at the first bad line with one
`DataFormatError` that names `file:line` and what was expected there; a byte that is not valid in the file's
`encoding`, and a NUL character, are named the same way. Files are opened by `datamodules.file_access.open_text`,
which first checks what a file is (a folder, empty, compressed, binary, ...) and reads `.gz`, `.bz2` and `.xz`
files as they are. Readers know nothing about label ids: `datamodules/labels.py` maps names to ids, and
`datamodules/file_examples.py` turns a dataset's files into examples with these readers.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from datamodules.file_access import DataFormatError, nul_error, open_text, read_raw, text_codec

DOCSTART = "-DOCSTART-"
PTB_ESCAPES = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}
PTB_LEAF = re.compile(r"\(\s*\S+\s+([^()\s]+)\s*\)")
# what each reader expects, for its errors
CONLL_FILE = "a CoNLL column file (a token and its tag on each line, a blank line between sentences)"
TREE_FILE = "a PTB sentiment-tree file (one tree per line)"
JSONL_FILE = "a JSON-lines file (one JSON object per line)"
LINES_FILE = "a text file (one item per line)"
# a CSV/TSV field may be this long (the csv module's default, 131,072 characters, is shorter than some texts);
# 2**31 - 1 is the largest value every platform's C long holds
FIELD_LIMIT = 2**31 - 1
_TAB_ESCAPE = re.compile(r"\\+t")


def column_separator(value: str | None) -> str | None:
    r"""The column separator a user means: None (any run of whitespace), or one character.

    A tab may be written as the escape `\t` (the two characters a shell passes for `--data.init_args.separator='\t'`),
    `\\t`, or `tab`; any other value that is not one character is an error naming the option.

    Args:
        value: the separator as given.
    """
    if value is None:
        return None
    if _TAB_ESCAPE.fullmatch(value) or value.lower() == "tab":
        return "\t"
    if len(value) != 1:
        raise ValueError(
            f"data.init_args.separator: {value!r} is not one character; expected one character (a tab: '\\t'), "
            "or null to split at any run of whitespace"
        )
    return value


def decoding_error(path: Path, encoding: str) -> DataFormatError:
    """The error for a file that is not valid `encoding`: the line, column and value of its first bad byte."""
    raw = read_raw(path)
    codec = text_codec(encoding)
    try:  # plain utf-8 (a byte-order mark is valid utf-8): utf-8-sig counts positions after the mark
        raw.decode("utf-8" if codec == "utf-8-sig" else codec)
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - raw.rfind(b"\n", 0, error.start)
        return DataFormatError(
            f"{path}:{line}: byte 0x{raw[error.start]:02x} at column {column} is not valid {encoding} "
            f"({error.reason}); if the file has another encoding, set data.init_args.encoding (e.g. latin-1, cp1252)"
        )
    return DataFormatError(f"{path}: cannot be read as {encoding}")  # the bytes decode as a whole: not expected


def _lines(path: Path, encoding: str, expected: str) -> Iterator[tuple[int, str]]:
    """`(line number, line)` without its line ending: LF, CRLF, or a lone CR (Python's universal newlines)."""
    try:
        with open_text(path, encoding, expected) as file:
            text = file.read()
    except UnicodeDecodeError:
        raise decoding_error(path, encoding) from None
    error = nul_error(path, text, expected)
    if error is not None:
        raise error
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    yield from enumerate(lines, start=1)


def read_conll(
    path: Path, token_column: int = 0, tag_column: int = -1, separator: str | None = None, encoding: str = "utf-8"
) -> Iterator[tuple[list[str], list[str], list[int]]]:
    """Sentences of a CoNLL-style column file: `(tokens, tags, line numbers)`.

    One token per line, columns split by `separator` (None = any whitespace), a blank line between sentences,
    `-DOCSTART-` lines dropped. Every line of a file must have as many columns as its first one.

    Args:
        path: the file.
        token_column: index of the word column.
        tag_column: index of the tag column (negative counts from the end).
        separator: column separator (see `column_separator`); None splits on runs of whitespace.
        encoding: the file's text encoding.
    """
    separator = column_separator(separator)
    tokens: list[str] = []
    tags: list[str] = []
    lines: list[int] = []
    width = 0
    for number, line in _lines(path, encoding, CONLL_FILE):
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
                    f"{len(columns)}: {line!r}{_mixed_separator_hint(line, separator, width)}"
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


def _mixed_separator_hint(line: str, separator: str | None, width: int) -> str:
    """A hint when a line that does not split into `width` columns at `separator` does at any whitespace."""
    if separator is None or len(line.split()) != width:
        return ""
    if separator == "\t":
        return (
            f"; split at any whitespace it has {width}: a space where a tab should be? "
            "(data.init_args.separator: null splits at both)"
        )
    return f"; split at any whitespace it has {width} (data.init_args.separator: null splits at any whitespace)"


def read_sentiment_trees(
    path: Path, unescape: bool = True, encoding: str = "utf-8"
) -> Iterator[tuple[list[str], int, int]]:
    r"""Sentences of a PTB sentiment-tree file (SST), one tree per line: `(leaves, root label, line number)`.

    Args:
        path: the file.
        unescape: turn PTB bracket escapes (`-LRB-` ...) back into brackets and `\\/` into `/`.
        encoding: the file's text encoding.
    """
    for number, line in _lines(path, encoding, TREE_FILE):
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
    path: Path, delimiter: str, columns: list[str], fieldnames: list[str] | None = None, encoding: str = "utf-8"
) -> Iterator[tuple[dict[str, str], int]]:
    """Rows of a CSV/TSV file as `(row, the line it starts on)`; `columns` must all be present.

    CSV is read strictly: a quote that opens a field must close it and be followed by a delimiter or the end of
    the line. A row that goes wrong after a quote ran on over several lines (an unclosed quote) is blamed on the
    line where that quote opens, not on the later line where the csv module noticed. A field may be as long as
    `FIELD_LIMIT` (texts are read whole; tokenization cuts them to `max_length` and counts the cuts).

    Args:
        path: the file.
        delimiter: `,` (CSV with quoting) or a tab (TSV, read without quoting as in GLUE).
        columns: the columns the caller needs; a missing one is an error naming the file's header.
        fieldnames: column names of a file without a header row; None = the first row is the header.
        encoding: the file's text encoding.
    """
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    expected = f"a {_table_kind(delimiter)} file with columns {columns}"
    csv.field_size_limit(FIELD_LIMIT)  # process-wide; only raised, so no other reader loses anything
    count = 0
    try:
        with open_text(path, encoding, expected, newline="") as file:  # newline="": line ends are csv's
            lines = _RowLines(file, path, expected)
            reader = csv.DictReader(
                lines, fieldnames=fieldnames, delimiter=delimiter, quoting=quoting, strict=quoting != csv.QUOTE_NONE
            )
            header = _table_header(reader, lines, columns, delimiter)
            while (row := _next_row(reader, lines, path)) is not None:
                found = sum(row[c] is not None for c in header) + len(row.get(None, []))
                if found != len(header):
                    raise _row_error(path, lines, f"expected {len(header)} fields ({header}), found {found}")
                count += 1
                yield row, lines.first
    except UnicodeDecodeError:
        raise decoding_error(path, encoding) from None
    if not count:
        after = f"rows of the columns {fieldnames}" if fieldnames else f"rows after the header {header}"
        raise DataFormatError(f"{path}: no examples; expected {after}")


def _table_kind(delimiter: str) -> str:
    return "TSV" if delimiter == "\t" else "CSV"


class _RowLines:
    """The lines of an open file as the csv module reads them, remembering those of the row being read."""

    def __init__(self, file: TextIO, path: Path, expected: str) -> None:
        self.file, self.path, self.expected, self.number = file, path, expected, 0
        self.row: list[tuple[int, str]] = []  # (line number, text) of the current row's lines

    def __iter__(self) -> _RowLines:
        return self

    def __next__(self) -> str:
        line = next(self.file)
        self.number += 1
        if "\x00" in line:
            raise nul_error(self.path, line, self.expected, self.number)
        self.row.append((self.number, line))
        return line

    @property
    def first(self) -> int:
        """The first non-blank line of the current row (the csv module skips blank lines between rows)."""
        return next((number for number, text in self.row if text.strip()), self.number)

    def open_quote(self) -> int | None:
        """The first line of the row after which a quote is still open (odd count of quote characters)."""
        quotes = 0
        for number, text in self.row:
            quotes += text.count('"')
            if quotes % 2:
                return number
        return None


def _table_header(reader: csv.DictReader, lines: _RowLines, columns: list[str], delimiter: str) -> list[str]:
    """The header (or the given field names), checked: present, no name twice, every needed column there."""
    path = lines.path
    try:
        header = reader.fieldnames or []
    except csv.Error as error:
        raise _row_error(path, lines, str(error)) from None
    if not any(name.strip() for name in header):
        raise DataFormatError(f"{path}: no header row (the file holds only blank lines); expected {lines.expected}")
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise DataFormatError(
            f"{path}:{lines.first}: the header names column(s) {twice} more than once; expected each column once"
        )
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataFormatError(
            f"{path}:{lines.first}: missing column(s) {missing}; the header has {header}"
            f"{_delimiter_hint(header, delimiter)}"
        )
    return header


def _delimiter_hint(header: list[str], delimiter: str) -> str:
    """A hint when a one-column header holds another delimiter: the file was split at the wrong one."""
    others = [d for d in ("\t", ",", ";", "|") if d != delimiter and len(header) == 1 and d in header[0]]
    if not others:
        return ""
    hint = f"; is it {others[0]!r}-separated? It is read as {_table_kind(delimiter)} (columns split at {delimiter!r})"
    if others[0] in ("\t", ","):
        return f"{hint}: name it .{_table_kind(others[0]).lower()} or set data.init_args.file_format"
    return f"{hint}: only ',' (CSV) and a tab (TSV) are read"


def _next_row(reader: csv.DictReader, lines: _RowLines, path: Path) -> dict[str, str] | None:
    lines.row = []
    try:
        return next(reader)
    except StopIteration:
        return None
    except csv.Error as error:
        raise _row_error(path, lines, str(error)) from None


def _row_error(path: Path, lines: _RowLines, problem: str) -> DataFormatError:
    """`problem` at the row's first line, or, when a quote left open ran the row on, at the line of that quote."""
    opened = lines.open_quote()
    if opened is not None and lines.number > opened:
        return DataFormatError(
            f"{path}:{opened}: a quoted field opens on this line and runs on to line {lines.number} ({problem}); "
            'close the quote, and double quotes inside a quoted field ("")'
        )
    return DataFormatError(f"{path}:{lines.first}: {problem}")


def read_jsonl(path: Path, columns: list[str], encoding: str = "utf-8") -> Iterator[tuple[dict, int]]:
    """Objects of a JSON-lines file as `(object, line number)`; each must hold `columns`, and there must be one."""
    count = 0
    for number, line in _lines(path, encoding, JSONL_FILE):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{path}:{number}: invalid JSON ({error.msg}){_pretty_json_hint(line)}") from None
        if not isinstance(record, dict):
            array = "; a JSON-lines file holds one object per line, not an array" if isinstance(record, list) else ""
            raise DataFormatError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}{array}")
        missing = [c for c in columns if c not in record]
        if missing:
            raise DataFormatError(f"{path}:{number}: missing field(s) {missing}; the object has {list(record)}")
        count += 1
        yield record, number
    if not count:
        raise DataFormatError(f"{path}: no examples; expected one JSON object per line")


def _pretty_json_hint(line: str) -> str:
    """A hint when a line that is not JSON opens an object or array: a JSON document written over many lines."""
    if not line.strip().endswith(("{", "[")):
        return ""
    return "; a pretty-printed JSON document? A JSON-lines file holds one whole object per line"


def read_lines(path: Path, encoding: str = "utf-8") -> list[str]:
    """The lines of a text file, without line endings (LF, CRLF or CR); a last empty line is not counted."""
    return [line for _, line in _lines(path, encoding, LINES_FILE)]


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
