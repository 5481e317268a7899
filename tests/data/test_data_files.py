"""Local file formats: what each reader accepts, and one clear error naming file and line for bad input."""

from __future__ import annotations

import json
import logging
import os
import re

import pytest

import datamodules as dm
from datamodules import file_examples
from datamodules.base import LabelDataModule, column
from datamodules.readers import DataFormatError, iob1_to_iob2, read_conll

NER_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.fixture
def cache(tmp_path):
    return str(tmp_path / "cache")


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def conll(tmp_path, cache, text: str, **kwargs) -> dm.ConllNER:
    write(tmp_path / "train.txt", text)
    options = {"label_names": NER_TAGS, "validation_file": None, "test_file": None, **kwargs}
    return dm.ConllNER(data_dir=str(tmp_path), tokenizer="unused", cache_dir=cache, **options)


def texts(tmp_path, cache, name: str, text: str, **kwargs) -> dm.TextClassificationFiles:
    write(tmp_path / name, text)
    options = {"label_names": ["negative", "positive"], "train_file": name, "test_file": name, **kwargs}
    return dm.TextClassificationFiles(data_dir=str(tmp_path), tokenizer="unused", cache_dir=cache, **options)


# ---------------------------------------------------------------------------------------------------- CoNLL
def test_conll_sentences_docstart_and_columns(tmp_path, cache):
    data = conll(tmp_path, cache, "-DOCSTART- -X- O\n\nJohn NNP B-PER\nlives VBZ O\n\n\nin IN O\nParis NNP B-LOC\n")
    train = data._source_split("train")
    assert column(train, "tokens") == [["John", "lives"], ["in", "Paris"]]
    assert column(train, "tags") == [[1, 0], [0, 3]]


def test_conll_iob1_input_is_converted_to_iob2(tmp_path, cache):
    text = "New I-LOC\nYork I-LOC\nand O\nJohn I-PER\nSmith I-PER\nMary B-PER\n"
    data = conll(tmp_path, cache, text, scheme="iob1")
    assert [NER_TAGS[t] for t in data._source_split("train")[0]["tags"]] == [
        "B-LOC",
        "I-LOC",
        "O",
        "B-PER",
        "I-PER",
        "B-PER",
    ]
    assert iob1_to_iob2(["I-PER", "I-LOC", "B-LOC", "I-LOC"]) == ["B-PER", "B-LOC", "B-LOC", "I-LOC"]


def test_conll_wrong_column_count_names_file_and_line(tmp_path, cache):
    data = conll(tmp_path, cache, "John NNP B-PER\nlives O\n")
    with pytest.raises(DataFormatError, match=re.escape(f"{tmp_path / 'train.txt'}:2: expected 3 columns")):
        data.load_split("train")


def test_conll_unknown_tag_names_file_and_line(tmp_path, cache):
    data = conll(tmp_path, cache, "John B-PER\n\nin O\nParis B-GPE\n")
    with pytest.raises(DataFormatError, match=r"train.txt:4: tag 'B-GPE' is not one of label_names"):
        data.load_split("train")


def test_conll_tab_separated_tokens_may_hold_spaces_but_not_be_empty(tmp_path, cache):
    data = conll(tmp_path, cache, "New York\tB-LOC\nis\tO\n", separator="\t")
    assert data._source_split("train")[0]["tokens"] == ["New York", "is"]
    (tmp_path / "bad").mkdir()
    bad = conll(tmp_path / "bad", cache, "New\tB-LOC\n \tO\n", separator="\t")
    with pytest.raises(DataFormatError, match=r"train.txt:2: empty token"):
        bad.load_split("train")


def test_conll_files_without_validation_hold_it_out(tmp_path, cache):
    data = conll(tmp_path, cache, "".join(f"w{i} O\n\n" for i in range(100)), validation_fraction=0.1)
    train, validation = data.load_split("train"), data.load_split("validation")
    assert (len(train), len(validation)) == (90, 10)
    assert {w for s in column(train, "tokens") for w in s}.isdisjoint(
        w for s in column(validation, "tokens") for w in s
    )


def test_read_conll_counts_lines_with_crlf(tmp_path):
    path = write(tmp_path / "x.txt", "a O\r\nb O\r\n\r\nc O\r\n")
    assert [(t, n) for t, _, n in read_conll(path)] == [(["a", "b"], [1, 2]), (["c"], [4])]


def test_ontonotes_authors_train_convention_drops_inside_tags(tmp_path, cache):
    write(tmp_path / "train.bio.txt", "Hong\tB-GPE\nKong\tI-GPE\nmedia\tO\n")
    data = dm.OntoNotes5(data_dir=str(tmp_path), tokenizer="unused", cache_dir=cache, lsllama_official=True)
    names = data.label_names
    assert [names[t] for t in data.load_split("train")[0]["tags"]] == ["B-GPE", "O", "O"]
    write(tmp_path / "lsllama_official_test.jsonl", json.dumps({"tokens": ["Hong", "Kong"], "ner_tags": [13, 0]}))
    assert [names[t] for t in data.load_split("test")[0]["tags"]] == ["B-GPE", "O"]
    write(tmp_path / "lsllama_official_test.jsonl", json.dumps({"tokens": ["Hong"], "ner_tags": [19]}) + "\n")
    with pytest.raises(DataFormatError, match=r"lsllama_official_test.jsonl:1: ner_tags \[19\] outside 0..18"):
        dm.OntoNotes5(data_dir=str(tmp_path), tokenizer="x", cache_dir=cache, lsllama_official=True).load_split("test")


# ----------------------------------------------------------------------------------------- text classification
def test_csv_tsv_jsonl_labels_by_name_or_id(tmp_path, cache):
    csv = texts(tmp_path, cache, "a.csv", 'text,label\n"good, really",positive\nbad,0\n')
    assert csv._source_split("train")[:] == {"text": ["good, really", "bad"], "label": [1, 0]}
    tsv = texts(tmp_path, cache, "a.tsv", 'sentence\tlabel\n"quoted" stays \t1\n', text_column="sentence")
    assert tsv._source_split("train")[:] == {"text": ['"quoted" stays'], "label": [1]}
    lines = [{"title": "Great", "body": "works", "y": "positive"}, {"title": "", "body": "broke", "y": 0}]
    jsonl = texts(
        tmp_path, cache, "a.jsonl", "\n".join(map(json.dumps, lines)), text_column=["title", "body"], label_column="y"
    )
    assert jsonl._source_split("train")[:] == {"text": ["Great\nworks", "broke"], "label": [1, 0]}


def test_headerless_csv_with_fieldnames(tmp_path, cache):
    data = texts(tmp_path, cache, "a.csv", '1,"fine"\n0,"awful"\n', fieldnames=["label", "text"])
    assert data._source_split("test")[:] == {"text": ["fine", "awful"], "label": [1, 0]}


def test_empty_text_names_file_and_line(tmp_path, cache):
    data = texts(tmp_path, cache, "a.csv", "text,label\ngood,1\n   ,0\n")
    with pytest.raises(DataFormatError, match=r"a.csv:3: empty text"):
        data.load_split("test")


@pytest.mark.parametrize(
    ("label", "message"),
    [("7", r"label 7 is outside label_names \(ids 0..1"), ("neutral", r"label 'neutral' is not one of label_names")],
)
def test_label_outside_label_names_names_file_and_line(tmp_path, cache, label, message):
    data = texts(tmp_path, cache, "a.csv", f"text,label\ngood,1\nmeh,{label}\n")
    with pytest.raises(DataFormatError, match=rf"a.csv:3: {message}"):
        data.load_split("test")


def test_missing_column_names_file_and_header(tmp_path, cache):
    data = texts(tmp_path, cache, "a.csv", "sentence,label\ngood,1\n")
    with pytest.raises(DataFormatError, match=r"a.csv:1: missing column\(s\) \['text'\]; the header has"):
        data.load_split("test")
    jsonl = texts(tmp_path, cache, "a.jsonl", '{"text": "x"}\n')
    with pytest.raises(DataFormatError, match=r"a.jsonl:1: missing field\(s\) \['label'\]"):
        jsonl.load_split("test")


def test_missing_file_names_it_and_the_hub_alternative(tmp_path, cache):
    data = dm.SST2(data_dir=str(tmp_path), tokenizer="unused", cache_dir=cache)
    with pytest.raises(
        FileNotFoundError, match=r"dev.tsv: file not found; SST2 reads .*hub dataset 'stanfordnlp/sst2'"
    ):
        data.load_split("test")
    with pytest.raises(FileNotFoundError, match=r"data_dir '.*nowhere' not found"):
        dm.CoNLL2003(data_dir=str(tmp_path / "nowhere"), tokenizer="x").load_split("test")


def test_sst5_trees_and_a_malformed_tree(tmp_path, cache):
    write(tmp_path / "test.txt", "(3 (2 (2 It) (3 -LRB-works-RRB-)) (2 co-writer\\/director))\n(1 (1 bad)\n")
    data = dm.SST5(data_dir=str(tmp_path), tokenizer="unused", cache_dir=cache)
    with pytest.raises(DataFormatError, match=r"test.txt:2: expected a tree"):
        data.load_split("test")
    write(tmp_path / "test.txt", "(3 (2 (2 It) (3 -LRB-)) (2 co-writer\\/director))\n")
    assert data.load_split("test")[:] == {"text": ["It ( co-writer/director"], "label": [3]}


def test_agnews_csv_layout_and_mismatched_line_files(tmp_path, cache):
    write(tmp_path / "test.csv", '"3","Wall St. Bears","Short-sellers are ""seeing green"""\n"2","Cup","won"\n')
    data = dm.AGNews(data_dir=str(tmp_path), tokenizer="unused", cache_dir=cache)
    test = data.load_split("test")
    assert column(test, "label") == [2, 1] and column(test, "text") == [
        'Wall St. Bears Short-sellers are "seeing green"',
        "Cup won",
    ]
    os.remove(tmp_path / "test.csv")
    write(tmp_path / "test_texts.txt", "a\r\nb\r\n")
    write(tmp_path / "test_labels.txt", "Sports\r\n")
    with pytest.raises(DataFormatError, match=r"test_texts.txt has 2 lines but .*test_labels.txt has 1"):
        data.load_split("test")


# ------------------------------------------------------------------------------------------------- caching
def test_parsing_and_tokenization_are_cached_and_invalidated_by_edits(tmp_path, cache, monkeypatch):
    from helpers import LLAMA2_TOKENIZER

    if not (LLAMA2_TOKENIZER / "tokenizer.model").exists():
        pytest.skip("the LLaMA-2 tokenizer in ../shared/models is absent")
    data = conll(tmp_path, cache, "John B-PER\nSmith I-PER\n\nParis B-LOC\n", test_file="train.txt")
    data.tokenizer_source = str(LLAMA2_TOKENIZER)
    first = data.encode(data.load_split("test"), "test")
    monkeypatch.setattr(LabelDataModule, "_encode_tokens", lambda *a, **k: pytest.fail("tokenized again"))
    monkeypatch.setattr(file_examples, "read_conll", lambda *a, **k: pytest.fail("parsed again"))
    again = data.encode(data.load_split("test"), "test")  # a new data module object would do the same
    assert again.cache_files == first.cache_files and again[:] == first[:]
    monkeypatch.undo()
    write(tmp_path / "train.txt", "John B-PER\nSmith I-PER\n\nRome B-LOC\n")
    os.utime(tmp_path / "train.txt", ns=(1, 1))  # a new mtime even within the clock's resolution
    edited = data.encode(data.load_split("test"), "test")
    assert edited.cache_files != first.cache_files and edited[1]["input_ids"] != first[1]["input_ids"]


def test_the_tokenizer_is_hashed_once_per_tokenizer_object_not_once_per_split(monkeypatch):
    """datasets' hash of a tokenizer dill-pickles it whole (0.4 s of CPU for LLaMA-2's): a test after a fit paid it
    inside `Trainer.test` (issue 19, benchmarks.md section 12). Same tokenizer, same cache key; a new one, hashed."""
    from datasets.fingerprint import Hasher

    hashed = []
    real_hash = Hasher.hash
    monkeypatch.setattr(Hasher, "hash", classmethod(lambda cls, value: hashed.append(value) or real_hash(value)))
    data = dm.EarlyCueClassification(num_train=8, num_val=8, num_test=8)

    def times_hashed(tokenizer):  # alone or in the list of a cache key
        return sum(value is tokenizer or (isinstance(value, list) and tokenizer in value) for value in hashed)

    data.setup("fit")
    data.setup("test")
    assert times_hashed(data.tokenizer) == 1
    keys = [data._encoding_fingerprint(data.load_split("test"), "test") for _ in range(2)]
    other = dm.EarlyCueClassification(num_train=8, num_val=8, num_test=8)
    assert other._encoding_fingerprint(other.load_split("test"), "test") == keys[0] == keys[1]
    data.__dict__["tokenizer"] = other.tokenizer  # another tokenizer object: hashed again
    data._encoding_fingerprint(data.load_split("test"), "test")
    assert times_hashed(other.tokenizer) == 2


# ------------------------------------------------------------------------------------------ encodings
LATIN1 = "caf\u00e9 cr\u00e8me"  # 0xe9 and 0xe8 in latin-1, neither valid utf-8 on its own


@pytest.mark.parametrize(
    ("build", "name", "text", "line", "column"),
    [
        (
            lambda d, c, **kw: dm.SST2(data_dir=d, cache_dir=c, **kw),
            "dev.tsv",
            f"sentence\tlabel\nfine\t1\n{LATIN1}\t0\n",
            3,
            4,
        ),
        (
            lambda d, c, **kw: dm.TwitterFin(data_dir=d, cache_dir=c, **kw),
            "sent_valid.csv",
            f'text,label\n"{LATIN1}",2\n',
            2,
            5,
        ),
        (
            lambda d, c, **kw: dm.ConllNER(data_dir=d, cache_dir=c, label_names=NER_TAGS, test_file="x.txt", **kw),
            "x.txt",
            f"John B-PER\n\n{LATIN1[:4]} O\n",
            3,
            4,
        ),
        (lambda d, c, **kw: dm.SST5(data_dir=d, cache_dir=c, **kw), "test.txt", f"(3 (2 {LATIN1[:4]}))\n", 1, 10),
    ],
    ids=["sst2-tsv", "twitter-csv", "conll", "sst5-trees"],
)
def test_a_latin1_file_names_file_line_and_byte_and_reads_with_encoding(
    tmp_path, cache, build, name, text, line, column
):
    (tmp_path / name).write_bytes(text.encode("latin-1"))
    data = build(str(tmp_path), cache, tokenizer="unused")
    message = (
        rf"{re.escape(str(tmp_path / name))}:{line}: byte 0xe9 at column {column} is not valid utf-8 "
        r"\(invalid continuation byte\); .* set data.init_args.encoding \(e.g. latin-1"
    )
    with pytest.raises(DataFormatError, match=message):
        data.load_split("test")
    decoded = build(str(tmp_path), cache, tokenizer="unused", encoding="latin-1").load_split("test")
    assert any(LATIN1[:4] in str(value) for value in decoded[-1].values())


def test_a_latin1_predict_file_names_file_line_and_byte(tmp_path):
    (tmp_path / "texts.txt").write_bytes(f"fine\n{LATIN1}\n".encode("latin-1"))
    data = dm.SST2(data_dir=str(tmp_path), tokenizer="unused", predict_file=str(tmp_path / "texts.txt"))
    with pytest.raises(DataFormatError, match=r"texts.txt:2: byte 0xe9 at column 4 is not valid utf-8"):
        data.predict_inputs()
    data.encoding = "latin-1"
    assert data.predict_inputs()["text"] == ["fine", LATIN1]


def test_utf8_byte_order_mark_is_dropped_and_unknown_encodings_are_named(tmp_path, cache):
    assert texts(tmp_path, cache, "a.csv", "\ufefftext,label\ngood,1\n")._source_split("test")[:]["text"] == ["good"]
    with pytest.raises(ValueError, match=r"data.init_args.encoding: unknown encoding 'utf-9'"):
        dm.SST2(data_dir=str(tmp_path), tokenizer="unused", encoding="utf-9")


# --------------------------------------------------------------------------------------------- CSV quoting
@pytest.mark.parametrize(
    ("content", "message"),
    [  # the quote on line 3 never closes: the csv module reads on to the end of the file
        (
            'text,label\ngood,1\n"broken,0\nfine,1\nok,0\n',
            r"a.csv:3: a quoted field opens on this line and runs on to line 5 \(unexpected end of data\)",
        ),
        # the quote on line 2 is closed by the opening quote of line 4: without strict reading, one silent row
        (
            'text,label\n"good,1\nfine,0\n"bad",1\n',
            r"a.csv:2: a quoted field opens on this line and runs on to line 4 \(',' expected after '\"'\)",
        ),
    ],
)
def test_an_unclosed_csv_quote_is_blamed_on_the_line_where_it_opens(tmp_path, cache, content, message):
    with pytest.raises(DataFormatError, match=message):
        texts(tmp_path, cache, "a.csv", content).load_split("test")


def test_quoted_fields_may_span_lines_and_their_rows_are_located_by_their_first_line(tmp_path, cache):
    data = texts(tmp_path, cache, "a.csv", 'text,label\n"two\nlines",1\n\nnext,0\n')
    assert data.load_split("test")[:] == {"text": ["two\nlines", "next"], "label": [1, 0]}
    bad = texts(tmp_path, cache, "b.csv", 'text,label\nok,1\n"two\nlines",7\n')
    with pytest.raises(DataFormatError, match=r"b.csv:3: label 7 is outside label_names"):
        bad.load_split("test")
    short = texts(tmp_path, cache, "c.csv", "text,label\nok,1\nno label here\n")
    with pytest.raises(DataFormatError, match=r"c.csv:3: expected 2 fields \(\['text', 'label'\]\), found 1"):
        short.load_split("test")


# ------------------------------------------------------------------------------------------ tag schemes
def test_bio_data_that_starts_entities_with_inside_tags_is_counted_in_a_warning(tmp_path, cache, caplog):
    iob1 = "New I-LOC\nYork I-LOC\n\nJohn B-PER\nSmith I-PER\n\nin O\nParis I-LOC\n\nLondon B-LOC\n"
    with caplog.at_level(logging.WARNING, logger="datamodules.conll"):
        data = conll(tmp_path, cache, iob1)
        assert len(data._source_split("train")) == 4  # read as given
    assert f"{tmp_path / 'train.txt'}: 2 of 4 sentences start an entity with I-" in caplog.text
    assert "e.g. sentence 1: New/I-LOC York/I-LOC" in caplog.text and "data.init_args.scheme: iob1" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="datamodules.conll"):
        conll(tmp_path, cache, iob1, scheme="iob1")._source_split("train")
        conll(tmp_path, cache, "New B-LOC\nYork I-LOC\n\nJohn B-PER\nSmith I-PER\nLondon B-LOC\n")._source_split(
            "train"
        )
    assert "I-" not in caplog.text


# ------------------------------------------------------------------------------------ split options, cache keys
@pytest.mark.parametrize(
    "cls",
    [
        dm.SST2,
        dm.SST5,
        dm.TwitterFin,
        dm.AGNews,
        dm.AmazonReviews,
        dm.TextClassificationFiles,
        dm.ConllNER,
        dm.CoNLL2003,
        dm.OntoNotes5,
    ],
)
def test_every_file_or_hub_dataset_takes_the_split_and_encoding_options(cls):
    kwargs = {"label_names": ["O", "B-X", "I-X"]} if cls in (dm.ConllNER, dm.TextClassificationFiles) else {}
    data = cls(data_dir=".", tokenizer="x", validation_fraction=0.2, validation_seed=7, encoding="cp1252", **kwargs)
    assert (data.validation_fraction, data.validation_seed, data.encoding) == (0.2, 7, "cp1252")
    with pytest.raises(ValueError, match=r"data.init_args.validation_fraction must lie in \(0, 1\), got 1.5"):
        cls(data_dir=".", tokenizer="x", validation_fraction=1.5, **kwargs)


def test_the_held_out_validation_follows_validation_fraction_and_seed(tmp_path, cache):
    write(tmp_path / "sent_train.csv", "text,label\n" + "".join(f"tweet {i},{i % 3}\n" for i in range(50)))

    def split(**kw):
        return column(
            dm.TwitterFin(data_dir=str(tmp_path), tokenizer="x", cache_dir=cache, **kw).load_split("validation"), "text"
        )

    assert len(split()) == 3 and len(split(validation_fraction=0.2)) == 10
    assert split(validation_seed=1) != split() == split(validation_seed=0)


@pytest.mark.parametrize("edited", ["file_examples.py", "readers.py", "labels.py", "cache.py"])
def test_the_parse_cache_key_changes_with_the_reading_code(edited, monkeypatch):
    from pathlib import Path

    from datamodules.cache import reading_code_digest

    before = reading_code_digest(file_examples.conll_examples)
    read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read_bytes(self) + (b"#" if self.name == edited else b""))
    assert reading_code_digest(file_examples.conll_examples) != before
