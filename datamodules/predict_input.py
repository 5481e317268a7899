"""Readers of the texts to predict: plain lines, JSON lines, or CoNLL columns (words only: no tags needed).

`read_predict_file(path, task)` returns a `datasets.Dataset` with `text` (sequence tasks) or `tokens` (token
tasks), and `line`: the line of the file the example starts on, which each prediction repeats. Blank lines of a
`.txt` file are skipped and counted in the log; any other problem is one error naming `file:line`. A `.txt` file
whose lines mostly look like CoNLL columns (`EU B-ORG`) is named in a warning (sequence tasks: each line is a
text) or an error (token tasks: it should be `.conll`). Files may be compressed (`texts.txt.gz`, `.bz2`, `.xz`).

| suffix                 | sequence task                         | token task                                        |
|------------------------|---------------------------------------|---------------------------------------------------|
| `.txt`                 | one text per line                     | one sentence per line, words split at whitespace  |
| `.jsonl`               | objects with a `text` string          | objects with `tokens` (list of words) or `text`   |
| `.conll` `.iob` `.bio` | (not accepted)                        | words in the first column, blank line = sentence  |
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import datasets

from datamodules.file_access import format_suffix, require_file
from datamodules.readers import DataFormatError, read_conll, read_jsonl, read_lines

log = logging.getLogger(__name__)

CONLL_SUFFIXES = (".conll", ".iob", ".bio")
SUFFIXES = (".txt", ".jsonl", *CONLL_SUFFIXES)
PREDICT_FILE = "a .txt, .jsonl or .conll file of texts to predict"
# a line of a CoNLL file: words (one or more columns), then a BIO-style tag (O, B-ORG, I-PER, E-LOC, S-MISC, ...)
CONLL_LINE = re.compile(r"\S+(?:[ \t]+\S+)*[ \t]+(O|[BIESLU]-[A-Za-z_]+)")


def read_predict_file(path: str | Path, task: str, encoding: str = "utf-8") -> datasets.Dataset:
    """Read the inputs of `python main.py predict` (see the module docstring for the formats).

    Args:
        path: the file; its suffix picks the format.
        task: `sequence` (texts) or `token` (words).
        encoding: the file's text encoding.
    """
    path = require_file(Path(path), "set data.init_args.predict_file to an existing file", PREDICT_FILE)
    suffix = format_suffix(path)
    if suffix == ".txt":
        rows = _text_lines(path, task, encoding)
    elif suffix == ".jsonl":
        rows = [_json_row(record, path, line, task) for record, line in read_jsonl(path, [], encoding)]
    elif suffix in CONLL_SUFFIXES and task == "token":
        rows = [{"tokens": tokens, "line": lines[0]} for tokens, _, lines in read_conll(path, encoding=encoding)]
    elif suffix in CONLL_SUFFIXES:
        raise DataFormatError(f"{path}: CoNLL files hold words for token tasks; give a sequence task .txt or .jsonl")
    else:
        raise DataFormatError(f"{path}: unknown input format {suffix!r}; expected one of {', '.join(SUFFIXES)}")
    if not rows:
        raise DataFormatError(f"{path}: no examples to predict")
    column = "text" if task == "sequence" else "tokens"
    return datasets.Dataset.from_dict({column: [r[column] for r in rows], "line": [r["line"] for r in rows]})


def _text_lines(path: Path, task: str, encoding: str) -> list[dict[str, Any]]:
    lines = read_lines(path, encoding)
    _check_conll_shape(path, lines, task)
    rows, blank = [], 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            blank += 1
        elif task == "sequence":
            rows.append({"text": line, "line": number})
        else:
            rows.append({"tokens": line.split(), "line": number})
    if blank:
        log.warning("%s: skipped %d blank lines (predictions carry the line number of their text)", path, blank)
    return rows


def _check_conll_shape(path: Path, lines: list[str], task: str) -> None:
    """Warn (sequence task) or stop (token task) when most lines of a `.txt` file look like CoNLL columns: words
    then a BIO tag, some tag other than `O` among them."""
    filled = [(number, line.strip()) for number, line in enumerate(lines, start=1) if line.strip()]
    tagged = [(number, line, match[1]) for number, line in filled if (match := CONLL_LINE.fullmatch(line))]
    if len(tagged) < 2 or 2 * len(tagged) <= len(filled) or all(tag == "O" for *_, tag in tagged):
        return
    number, line, _ = tagged[0]
    shape = f"{len(tagged)} of {len(filled)} lines look like CoNLL columns ('word TAG', e.g. line {number}: {line!r})"
    layout = "words in the first column, a blank line between sentences"
    if task == "token":
        raise DataFormatError(
            f"{path}: {shape}, but a .txt file holds one sentence per line; rename it to .conll ({layout})"
        )
    log.warning(
        "%s: %s, and each is read as one text. For token classification give the file a .conll suffix (%s)",
        path,
        shape,
        layout,
    )


def _json_row(record: dict[str, Any], path: Path, line: int, task: str) -> dict[str, Any]:
    if task == "token" and "tokens" in record:
        tokens = record["tokens"]
        if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t.strip() for t in tokens):
            raise DataFormatError(f"{path}:{line}: 'tokens' must be a non-empty list of non-empty strings")
        return {"tokens": tokens, "line": line}
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        wanted = "'text' (a non-empty string)" + (" or 'tokens' (a list of words)" if task == "token" else "")
        raise DataFormatError(f"{path}:{line}: expected {wanted}; the object has {sorted(record)}")
    return {"text": text, "line": line} if task == "sequence" else {"tokens": text.split(), "line": line}
