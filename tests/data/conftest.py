"""Fixtures of the data-file tests: a parse cache per test and data modules over one small file in `tmp_path`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import datamodules as dm

NER_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.fixture
def cache(tmp_path) -> str:
    """A parse cache of its own, so that every test parses its files."""
    return str(tmp_path / "cache")


@pytest.fixture
def table(tmp_path, cache) -> Callable[..., dm.TextClassificationFiles]:
    """`table(name, content, **options)`: `TextClassificationFiles` whose train and test file is `name` (text or
    bytes written to `tmp_path / name`; None = leave the path as it is); labels `negative`, `positive`."""

    def build(name: str, content: str | bytes | None, **options) -> dm.TextClassificationFiles:
        write(tmp_path / name, content)
        options = {
            "label_names": ["negative", "positive"],
            "train_file": name,
            "test_file": name,
            "tokenizer": "unused",
            "cache_dir": cache,
            **options,
        }
        return dm.TextClassificationFiles(data_dir=str(tmp_path), **options)

    return build


@pytest.fixture
def ner(tmp_path, cache) -> Callable[..., dm.ConllNER]:
    """`ner(name, content, **options)`: `ConllNER` whose test file is `name` (as `table` writes it), BIO tags of
    PER and LOC."""

    def build(name: str, content: str | bytes | None, **options) -> dm.ConllNER:
        write(tmp_path / name, content)
        options = {
            "label_names": NER_TAGS,
            "train_file": name,
            "validation_file": None,
            "test_file": name,
            "tokenizer": "unused",
            "cache_dir": cache,
            **options,
        }
        return dm.ConllNER(data_dir=str(tmp_path), **options)

    return build


def write(path: Path, content: str | bytes | None) -> Path:
    """`content` into `path`: bytes as they are, text as UTF-8 (no newline translation); None writes nothing."""
    if isinstance(content, str):
        path.write_bytes(content.encode("utf-8"))
    elif content is not None:
        path.write_bytes(content)
    return path
