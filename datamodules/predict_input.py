"""Readers of the texts to predict: plain lines, JSON lines, or CoNLL columns (words only: no tags needed).

`read_predict_file(path, task)` returns a `datasets.Dataset` with `text` (sequence tasks) or `tokens` (token
tasks), and `line`: the line of the file the example starts on, which each prediction repeats. Blank lines of a
`.txt` file are skipped and counted in the log; any other problem is one error naming `file:line`. Files may be
compressed (`texts.txt.gz`, `.bz2`, `.xz`).

| suffix                 | sequence task                         | token task                                        |
|------------------------|---------------------------------------|---------------------------------------------------|
| `.txt`                 | one text per line                     | one sentence per line, words split at whitespace  |
| `.jsonl`               | objects with a `text` string          | objects with `tokens` (list of words) or `text`   |
| `.conll` `.iob` `.bio` | (not accepted)                        | words in the first column, blank line = sentence  |
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import datasets

from datamodules.file_access import format_suffix, require_file
from datamodules.readers import DataFormatError, read_conll, read_jsonl, read_lines

log = logging.getLogger(__name__)

CONLL_SUFFIXES = (".conll", ".iob", ".bio")
SUFFIXES = (".txt", ".jsonl", *CONLL_SUFFIXES)
PREDICT_FILE = "a .txt, .jsonl or .conll file of texts to predict"


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
    rows, blank = [], 0
    for number, line in enumerate(read_lines(path, encoding), start=1):
        if not line.strip():
            blank += 1
        elif task == "sequence":
            rows.append({"text": line, "line": number})
        else:
            rows.append({"tokens": line.split(), "line": number})
    if blank:
        log.warning("%s: skipped %d blank lines (predictions carry the line number of their text)", path, blank)
    return rows


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
