"""CoNLL column files: the separator as a command line gives it, and damaged lines named with file and line."""

from __future__ import annotations

import pytest

import datamodules as dm
from datamodules.base import column
from datamodules.readers import DataFormatError

TAB_FILE = "New York\tB-LOC\nis\tO\n\nJohn\tB-PER\n"


@pytest.mark.parametrize("given", ["\t", "\\t", "\\\\t"], ids=["tab", "backslash-t", "double-backslash-t"])
def test_a_tab_separator_may_be_written_as_an_escape(ner, given):
    """`--data.init_args.separator='\\t'` reaches the constructor as the two characters backslash and t."""
    data = ner("train.txt", TAB_FILE, separator=given)
    assert data.separator == "\t"
    assert column(data.load_split("test"), "tokens") == [["New York", "is"], ["John"]]


def test_the_ontonotes_default_tab_and_no_separator_are_unchanged(ner):
    assert dm.OntoNotes5(data_dir=".", tokenizer="x").separator == "\t"
    assert ner("train.txt", "a O\n", separator=None).separator is None


@pytest.mark.parametrize("given", ["||", "\\t\\t", "", "\\q"])
def test_a_separator_that_is_not_one_character_is_refused(given):
    with pytest.raises(
        ValueError,
        match=r"data.init_args.separator: .* is not one character; expected one character "
        r"\(a tab: '\\t'\), or null to split at any run of whitespace",
    ):
        dm.ConllNER(data_dir=".", tokenizer="x", label_names=["O"], separator=given)


def test_a_line_without_its_tag_column_is_named(ner):
    with pytest.raises(
        DataFormatError,
        match=r"train.txt:4: expected 2 columns \(as on the file's first line\), "
        r"found 1: 'Paris'$",
    ):
        ner("train.txt", "John B-PER\nlives O\n\nParis\n").load_split("test")


def test_mixed_tab_and_space_columns(ner):
    mixed = "John\tB-PER\nlives O\n"
    message = (
        r"train.txt:2: expected 2 columns \(as on the file's first line\), found 1: 'lives O'; split at any "
        r"whitespace it has 2: a space where a tab should be\? \(data.init_args.separator: null splits at both\)"
    )
    with pytest.raises(DataFormatError, match=message):
        ner("train.txt", mixed, separator="\t").load_split("test")
    assert column(ner("train.txt", mixed).load_split("test"), "tokens") == [["John", "lives"]]  # any whitespace
