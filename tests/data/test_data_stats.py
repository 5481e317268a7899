"""The shared real datasets load with exactly their published sizes (sentences, seqeval entities, label counts)."""

from __future__ import annotations

import logging
from collections import Counter

import pytest
from seqeval.metrics.sequence_labeling import get_entities

import datamodules as dm
from datamodules.base import column


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory):
    """One parse cache for the session (shared by the tests/test_data_* files)."""
    return str(tmp_path_factory.getbasetemp() / "ls-llama-data-cache")


def load(cls, folder, data_cache, **kwargs):
    return cls(data_dir=str(folder), tokenizer="unused", cache_dir=data_cache, **kwargs)


def entities(dataset, label_names) -> int:
    return sum(len(get_entities([label_names[t] for t in tags])) for tags in column(dataset, "tags"))


def test_conll2003_sentences_and_entities(shared_data, data_cache, caplog):
    data = load(dm.CoNLL2003, shared_data / "conll2003", data_cache)
    with caplog.at_level(logging.WARNING, logger="datamodules.conll"):
        splits = {s: data.load_split(s) for s in ("train", "validation", "test")}
    assert "looks like IOB1" not in caplog.text  # the files are BIO (IOB2), as read by default
    assert {s: len(d) for s, d in splits.items()} == {"train": 14041, "validation": 3250, "test": 3453}
    assert {s: entities(d, data.label_names) for s, d in splits.items()} == {
        "train": 23499,
        "validation": 5942,
        "test": 5648,
    }
    assert sum(len(t) for t in column(splits["train"], "tokens")) == 203621  # -DOCSTART- lines dropped
    assert all(column(splits["test"], "tokens"))


def test_ontonotes5_sentences_and_entities(shared_data, data_cache, caplog):
    data = load(dm.OntoNotes5, shared_data / "ontonotes5", data_cache)
    with caplog.at_level(logging.WARNING, logger="datamodules.conll"):
        splits = {s: data.load_split(s) for s in ("train", "validation", "test")}
    assert "looks like IOB1" not in caplog.text
    assert {s: len(d) for s, d in splits.items()} == {"train": 59924, "validation": 8528, "test": 8262}
    assert entities(splits["validation"], data.label_names) == 11066
    assert entities(splits["test"], data.label_names) == 11257
    assert len(data.label_names) == 37


def test_ontonotes5_authors_files_tag_first_tokens_only(shared_data, data_cache):
    """The authors' dev/test hold the same sentences with every entity cut to its first token."""
    full = load(dm.OntoNotes5, shared_data / "ontonotes5", data_cache).load_split("test")
    data = load(dm.OntoNotes5, shared_data / "ontonotes5", data_cache, lsllama_official=True)
    official = data.load_split("test")
    assert len(official) == len(full) == 8262
    names = data.label_names
    tags = [names[t] for sentence in column(official, "tags") for t in sentence]
    assert not any(t.startswith("I-") for t in tags)
    sentences = [Counter(" ".join(t) for t in column(d, "tokens")) for d in (official, full)]
    assert sentences[0] == sentences[1]
    assert entities(official, names) == entities(full, names) == 11257  # the same entities, one word long


def test_sst2_counts_and_held_out_validation(shared_data, data_cache):
    data = load(dm.SST2, shared_data / "sst2", data_cache)
    raw_train = data._source_split("train")
    train, validation, test = (data.load_split(s) for s in ("train", "validation", "test"))
    assert len(raw_train) == 67349 and len(test) == 872
    assert len(train) + len(validation) == 67349 and len(validation) == pytest.approx(0.05 * 67349, abs=1)
    texts = Counter(column(train, "text")) + Counter(column(validation, "text"))
    assert texts == Counter(column(raw_train, "text"))  # a partition of train: nothing lost, nothing repeated
    assert Counter(column(raw_train, "label")) == {1: 37569, 0: 29780}
    assert Counter(column(test, "label")) == {1: 444, 0: 428}
    assert not any(t != t.strip() for t in column(raw_train, "text"))  # GLUE's trailing spaces are stripped
    again = load(dm.SST2, shared_data / "sst2", data_cache).load_split("validation")
    assert column(again, "text") == column(validation, "text")  # the hold-out is fixed by validation_seed


def test_sst5_counts_and_root_labels(shared_data, data_cache):
    data = load(dm.SST5, shared_data / "sst5", data_cache)
    splits = {s: data.load_split(s) for s in ("train", "validation", "test")}
    assert {s: len(d) for s, d in splits.items()} == {"train": 8544, "validation": 1101, "test": 2210}
    assert Counter(column(splits["train"], "label")) == {0: 1092, 1: 2218, 2: 1624, 3: 2322, 4: 1288}
    assert Counter(column(splits["test"], "label")) == {0: 279, 1: 633, 2: 389, 3: 510, 4: 399}
    first = column(splits["train"], "text")[0]
    assert first.startswith("The Rock is destined to be the 21st Century 's new `` Conan ''") and first.endswith(" .")


def test_twitter_fin_counts(shared_data, data_cache):
    data = load(dm.TwitterFin, shared_data / "twitter_fin", data_cache)
    train, validation, test = (data.load_split(s) for s in ("train", "validation", "test"))
    assert len(train) + len(validation) == 9543 and len(test) == 2388
    assert Counter(column(test, "label")) == {0: 347, 1: 475, 2: 1566}


def test_agnews_test_only_folder(shared_data, data_cache):
    data = load(dm.AGNews, shared_data / "agnews_partial", data_cache)
    test = data.load_split("test")
    assert len(test) == 7600 and Counter(column(test, "label")) == {0: 1900, 1: 1900, 2: 1900, 3: 1900}
    assert column(test, "label")[0] == data.label_names.index("Business")
    for split in ("train", "validation"):
        with pytest.raises(FileNotFoundError, match=r"train_texts\.txt: file not found.*data_dir: null.*ag_news"):
            data.load_split(split)
