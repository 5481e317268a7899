"""Hub layouts, with the hub replaced by small `datasets` objects built here (no network at test time).

`datasets.load_dataset` is patched to return them, so the whole hub path runs: split mapping, held-out
validation, `ClassLabel` / given names -> our ids, and the errors.
"""

from __future__ import annotations

import logging
from collections import Counter

import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value

import datamodules as dm
from datamodules.base import column
from datamodules.conll import CONLL2003_TAGS
from datamodules.ontonotes import TNER_ONTONOTES_TAGS
from datamodules.readers import DataFormatError


@pytest.fixture
def hub(monkeypatch):
    """`hub(name, config) -> DatasetDict` registry behind `datasets.load_dataset`; records the calls."""
    registry, calls = {}, []

    def load_dataset(name, config=None, **kwargs):
        calls.append((name, config))
        if (name, config) not in registry:
            raise FileNotFoundError(f"Dataset {name} not found")
        return registry[(name, config)]

    monkeypatch.setattr("datasets.load_dataset", load_dataset)
    registry["calls"] = calls
    return registry


def text_split(n: int, labels: list, text: str = "sentence", label_feature=None, offset: int = 0) -> Dataset:
    features = Features({text: Value("string"), "label": label_feature or Value("int64")})
    return Dataset.from_dict({text: [f"text {offset + i} " for i in range(n)], "label": labels}, features=features)


def test_sst2_hub_layout_tests_on_validation_and_holds_out_train(hub):
    names = ClassLabel(names=["negative", "positive"])
    hub[("stanfordnlp/sst2", None)] = DatasetDict(
        {
            "train": text_split(40, [i % 2 for i in range(40)], label_feature=names),
            "validation": text_split(6, [1, 1, 1, 0, 0, 0], label_feature=names, offset=100),
            "test": text_split(3, [-1, -1, -1], offset=200),  # GLUE's test labels are hidden: never used
        }
    )
    data = dm.SST2(tokenizer="unused", validation_fraction=0.1)
    train, validation, test = (data.load_split(s) for s in ("train", "validation", "test"))
    assert column(test, "text") == [f"text {100 + i}" for i in range(6)] and column(test, "label") == [1, 1, 1, 0, 0, 0]
    assert (len(train), len(validation)) == (36, 4)
    assert Counter(column(train, "text")) + Counter(column(validation, "text")) == Counter(
        f"text {i}" for i in range(40)
    )
    assert hub["calls"] == [("stanfordnlp/sst2", None)]  # loaded once, then reused


def test_glue_config_is_passed_through(hub):
    hub[("glue", "sst2")] = DatasetDict(
        {"validation": text_split(2, [0, 1], label_feature=ClassLabel(names=["negative", "positive"]))}
    )
    data = dm.SST2(tokenizer="unused", hub_name="glue", hub_config="sst2")
    assert column(data.load_split("test"), "label") == [0, 1]


def test_classlabel_names_are_mapped_to_our_ids_by_name(hub):
    """The hub's id order need not be ours: ClassLabel names decide."""
    swapped = ClassLabel(names=["Sci/Tech", "World", "Sports", "Business"])
    hub[("ag_news", None)] = DatasetDict({"test": text_split(4, [0, 1, 2, 3], text="text", label_feature=swapped)})
    data = dm.AGNews(tokenizer="unused")
    assert [data.label_names[i] for i in column(data.load_split("test"), "label")] == swapped.names


def test_sst5_setfit_and_twitter_fin_integer_labels(hub):
    hub[("SetFit/sst5", None)] = DatasetDict(
        {s: text_split(5, list(range(5)), text="text") for s in ("train", "validation", "test")}
    )
    assert column(dm.SST5(tokenizer="unused").load_split("validation"), "label") == [0, 1, 2, 3, 4]
    hub[("zeroshot/twitter-financial-news-sentiment", None)] = DatasetDict(
        {
            "train": text_split(20, [i % 3 for i in range(20)], text="text"),
            "validation": text_split(3, [2, 0, 3], text="text"),
        }
    )
    data = dm.TwitterFin(tokenizer="unused")
    assert len(data.load_split("train")) + len(data.load_split("validation")) == 20
    with pytest.raises(
        DataFormatError, match=r"zeroshot/twitter-financial-news-sentiment/validation row 2: label 3 is outside"
    ):
        data.load_split("test")


def amazon(lang: str, n: int) -> DatasetDict:
    categories = ["book", "toy", "wireless", "book"]
    rows = {
        "review_title": [f"{lang} title {i}" for i in range(n)],
        "review_body": [f"{lang} body {i}" for i in range(n)],
        "stars": [1 + i % 5 for i in range(n)],
        "product_category": [categories[i % 4] for i in range(n)],
        "language": [lang] * n,
    }
    return DatasetDict({s: Dataset.from_dict(rows) for s in ("train", "validation", "test")})


def test_amazon_languages_and_label_columns(hub):
    hub[("amazon_reviews_multi", "de")], hub[("amazon_reviews_multi", "en")] = amazon("de", 4), amazon("en", 6)
    data = dm.AmazonReviews(tokenizer="unused", languages=["de", "en"])
    test = data.load_split("test")
    assert len(test) == 10 and data.num_labels == 31
    assert column(test, "text")[0] == "de title 0\nde body 0" and column(test, "text")[-1] == "en title 5\nen body 5"
    assert [data.label_names[i] for i in column(test, "label")[:4]] == ["book", "toy", "wireless", "book"]
    stars = dm.AmazonReviews(tokenizer="unused", languages=["en"], label_column="stars")
    assert stars.label_names == ["1", "2", "3", "4", "5"]
    assert column(stars.load_split("train"), "label") == [0, 1, 2, 3, 4, 0]


def test_conll2003_hub_tags_mapped_through_classlabel_names(hub):
    order = ["O", "B-ORG", "B-MISC", "B-PER", "I-PER", "B-LOC", "I-ORG", "I-MISC", "I-LOC"]  # not ours
    features = Features(
        {"id": Value("string"), "tokens": List(Value("string")), "ner_tags": List(ClassLabel(names=order))}
    )
    split = Dataset.from_dict(
        {"id": ["0"], "tokens": [["EU", "rejects", "German", "call"]], "ner_tags": [[1, 0, 2, 0]]}, features=features
    )
    hub[("eriktks/conll2003", None)] = DatasetDict({"train": split, "validation": split, "test": split})
    data = dm.CoNLL2003(tokenizer="unused")
    test = data.load_split("test")
    assert [CONLL2003_TAGS[t] for t in test[0]["tags"]] == ["B-ORG", "O", "B-MISC", "O"]
    assert test[0]["tokens"] == ["EU", "rejects", "German", "call"]


def test_ontonotes_tner_integer_tags_use_the_tner_names(hub):
    features = Features({"tokens": List(Value("string")), "tags": List(Value("int32"))})
    split = Dataset.from_dict(
        {"tokens": [["Phil", "Rosen", "in", "Boston"]], "tags": [[4, 5, 0, 7]]}, features=features
    )
    hub[("tner/ontonotes5", None)] = DatasetDict({"train": split, "validation": split, "test": split})
    data = dm.OntoNotes5(tokenizer="unused")
    assert [TNER_ONTONOTES_TAGS[t] for t in data.load_split("test")[0]["tags"]] == [
        "B-PERSON",
        "I-PERSON",
        "O",
        "B-GPE",
    ]


def test_generic_conll_hub_with_string_iob1_tags_and_no_validation(hub):
    rows = {"words": [["New", "York", "is", "big"]] * 20, "labels": [["I-LOC", "I-LOC", "O", "O"]] * 20}
    hub[("me/ner", None)] = DatasetDict({"train": Dataset.from_dict(rows), "test": Dataset.from_dict(rows)})
    data = dm.ConllNER(
        tokenizer="unused",
        hub_name="me/ner",
        label_names=["O", "B-LOC", "I-LOC"],
        tokens_column="words",
        tags_column="labels",
        scheme="iob1",
        hub_splits={"train": "train", "validation": None, "test": "test"},
    )
    assert data.load_split("test")[0]["tags"] == [1, 2, 0, 0]
    assert (len(data.load_split("train")), len(data.load_split("validation"))) == (19, 1)


def test_hub_errors_name_split_row_and_column(hub):
    features = Features({"tokens": List(Value("string")), "tags": List(Value("int32"))})
    ints = Dataset.from_dict({"tokens": [["a"], ["b"]], "tags": [[0], [1]]}, features=features)
    hub[("me/ints", None)] = DatasetDict({"train": ints, "validation": ints, "test": ints})
    no_names = dm.ConllNER(tokenizer="x", hub_name="me/ints", label_names=["O", "B-X", "I-X"], tags_column="tags")
    with pytest.raises(DataFormatError, match=r"me/ints/test row 0: tags\[0\] = 0 has no name"):
        no_names.load_split("test")
    unknown = dm.ConllNER(
        tokenizer="x",
        hub_name="me/ints",
        label_names=["O", "B-X", "I-X"],
        tags_column="tags",
        hub_label_names=["O", "B-Y"],
    )
    with pytest.raises(DataFormatError, match=r"me/ints/test row 1, tags\[0\]: tag 'B-Y' is not one of label_names"):
        unknown.load_split("test")
    with pytest.raises(DataFormatError, match=r"me/ints/test: missing column\(s\) \['ner_tags'\]; the dataset has"):
        dm.ConllNER(tokenizer="x", hub_name="me/ints", label_names=["O"]).load_split("test")
    hub[("me/texts", None)] = DatasetDict({"test": text_split(2, [0, 1], text="text").map(lambda r: {"text": "  "})})
    with pytest.raises(DataFormatError, match=r"me/texts/test row 0: empty text"):
        dm.TextClassificationFiles(tokenizer="x", hub_name="me/texts", label_names=["a", "b"]).load_split("test")
    with pytest.raises(KeyError, match=r"has splits \['test'\], not 'train'"):
        dm.TextClassificationFiles(tokenizer="x", hub_name="me/texts", label_names=["a", "b"]).load_split("train")


def test_unavailable_hub_dataset_points_at_local_files(hub):
    with pytest.raises(ConnectionError, match=r"could not load the hub dataset 'ag_news'.*data.data_dir"):
        dm.AGNews(tokenizer="unused").load_split("test")


def test_hub_iob1_tags_read_as_bio_are_counted_in_a_warning(hub, caplog):
    rows = {
        "tokens": [["New", "York"], ["in", "Paris"], ["Rome"]],
        "ner_tags": [["I-LOC", "I-LOC"], ["O", "B-LOC"], ["I-LOC"]],
    }
    hub[("me/iob1", None)] = DatasetDict({"test": Dataset.from_dict(rows)})
    data = dm.ConllNER(tokenizer="x", hub_name="me/iob1", label_names=["O", "B-LOC", "I-LOC"])
    with caplog.at_level(logging.WARNING, logger="datamodules.conll"):
        assert column(data.load_split("test"), "tags") == [[2, 2], [0, 1], [2]]
    assert "me/iob1/test: 2 of 3 sentences start an entity with I- (e.g. sentence 1: New/I-LOC" in caplog.text
