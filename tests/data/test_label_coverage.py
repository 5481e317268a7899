"""`label_names` against the labels the training data uses: unused names are counted in a warning (a subset can be
legitimate), a label outside the names is an error naming file and line."""

from __future__ import annotations

import logging

import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

import datamodules as dm
from datamodules.readers import DataFormatError
from datamodules.synthetic import build_tokenizer

TWO_CLASS = "text,label\n" + "".join(f"text number {i},{i % 2}\n" for i in range(40))


def unused_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "never occur" in r.getMessage()]


def test_three_names_on_two_class_files_warn_with_counts(table, caplog):
    data = table(
        "sst.csv",
        TWO_CLASS,
        label_names=["negative", "positive", "neutral"],
        tokenizer=build_tokenizer(),
        validation_fraction=0.1,
    )
    with caplog.at_level(logging.WARNING, logger="datamodules.base"):
        data.setup("fit")
    assert unused_warnings(caplog) == [
        "text_files/train: 1 of the 3 label_names never occurs in its 36 examples: 'neutral' (id 2); the model "
        "still gets a 3-way head. If the data has only 2 labels, set data.init_args.label_names to them"
    ]
    assert data.num_labels == 3  # a warning, not an error: a subset can be legitimate


def test_three_names_on_a_two_class_hub_split_warn(monkeypatch, caplog):
    names = ClassLabel(names=["negative", "positive"])
    features = Features({"sentence": Value("string"), "label": names})
    split = Dataset.from_dict(
        {"sentence": [f"s {i}" for i in range(20)], "label": [i % 2 for i in range(20)]}, features=features
    )
    monkeypatch.setattr("datasets.load_dataset", lambda *a, **k: DatasetDict({"train": split, "validation": split}))
    data = dm.SST2(tokenizer=build_tokenizer(), label_names=["negative", "positive", "neutral"])
    with caplog.at_level(logging.WARNING, logger="datamodules.base"):
        data.setup("fit")
    assert unused_warnings(caplog) == [
        "sst2/train: 1 of the 3 label_names never occurs in its 19 examples: 'neutral' (id 2); the model still gets "
        "a 3-way head. If the data has only 2 labels, set data.init_args.label_names to them"
    ]


def test_unused_tags_of_a_token_task_are_named(ner, caplog):
    data = ner("train.txt", "John B-PER\nSmith I-PER\n\nin O\nParis B-LOC\n", tokenizer=build_tokenizer())
    data.files["validation"] = "train.txt"
    with caplog.at_level(logging.WARNING, logger="datamodules.base"):
        data.setup("fit")
    assert unused_warnings(caplog) == [
        "conll_ner/train: 1 of the 5 label_names never occurs in its 2 examples: 'I-LOC' (id 4); the model still "
        "gets a 5-way head. If the data has only 4 labels, set data.init_args.label_names to them"
    ]


def test_data_that_uses_every_name_gets_no_warning(table, caplog):
    data = table("sst.csv", TWO_CLASS, tokenizer=build_tokenizer(), validation_fraction=0.1)
    with caplog.at_level(logging.WARNING, logger="datamodules.base"):
        data.setup("fit")
    assert unused_warnings(caplog) == []


def test_a_label_id_beyond_the_names_is_an_error_naming_file_and_line(table):
    data = table("three.csv", "text,label\na,0\nb,1\nc,2\n", tokenizer=build_tokenizer())
    with pytest.raises(
        DataFormatError,
        match=r"three.csv:4: label 2 is outside label_names \(ids 0..1: \['negative',"
        r" 'positive'\]\)$",
    ):
        data.setup("fit")
