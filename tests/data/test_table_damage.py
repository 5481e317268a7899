"""CSV / TSV / JSON-lines tables: long texts, line endings and byte-order marks read as they are; a damaged table or
a label of the wrong type gets one error naming file, line and what was expected."""

from __future__ import annotations

import json
import logging

import pytest
from datasets import Dataset, DatasetDict

import datamodules as dm
from datamodules.readers import DataFormatError

LONG = "word " * 40_000  # 200,000 characters: over the csv module's default field limit of 131,072


# ------------------------------------------------------------------------------------ valid files, read whole
@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("long.csv", f'text,label\n"{LONG}",1\nshort,0\n'),
        ("long.tsv", f"text\tlabel\n{LONG}\t1\nshort\t0\n"),
    ],
)
def test_a_text_over_the_csv_field_limit_is_read_whole(table, name, content, caplog):
    with caplog.at_level(logging.WARNING, logger="datamodules"):
        rows = table(name, content).load_split("test")[:]
    assert rows == {"text": [LONG.strip(), "short"], "label": [1, 0]}
    assert "cut" not in caplog.text  # nothing is cut when reading (tokenization cuts to max_length and counts)


def test_line_endings_and_byte_order_marks_do_not_change_the_examples(table):
    lf = table("lf.csv", 'text,label\n"two\nlines",1\nplain,0\n').load_split("test")[:]
    assert table("crlf.csv", 'text,label\r\n"two\nlines",1\r\nplain,0\r\n').load_split("test")[:] == lf
    assert table("bom.csv", '\ufefftext,label\r\n"two\nlines",1\r\nplain,0').load_split("test")[:] == lf
    tsv = table("lf.tsv", "text\tlabel\nplain\t0\n").load_split("test")[:]
    assert table("crlf.tsv", "\ufefftext\tlabel\r\nplain\t0\r\n").load_split("test")[:] == tsv
    jsonl = table("lf.jsonl", '{"text": "plain", "label": 0}\n').load_split("test")[:]
    assert table("crlf.jsonl", '\ufeff{"text": "plain", "label": 0}\r\n\r\n').load_split("test")[:] == jsonl == tsv


# --------------------------------------------------------------------------------------------- headers, rows
def test_a_header_without_rows_is_named(table):
    with pytest.raises(DataFormatError, match=r"h.csv: no examples; expected rows after the header \['text', "):
        table("h.csv", "text,label\r\n").load_split("test")
    with pytest.raises(DataFormatError, match=r"b.csv: no header row \(the file holds only blank lines\); expected"):
        table("b.csv", "\n\n  \n").load_split("test")
    with pytest.raises(DataFormatError, match=r"b.jsonl: no examples; expected one JSON object per line"):
        table("b.jsonl", "\n\n").load_split("test")


@pytest.mark.parametrize(
    ("name", "content", "hint"),
    [
        ("semi.csv", "text;label\ngood;1\n", r"; is it ';'-separated\? It is read as CSV \(columns split at ','"),
        ("comma.tsv", "text,label\ngood,1\n", r"; is it ','-separated\? It is read as TSV \(columns split at '\\t'"),
        ("tab.csv", "text\tlabel\ngood\t1\n", r"; is it '\\t'-separated\? It is read as CSV"),
    ],
)
def test_a_table_split_at_the_wrong_delimiter_says_so(table, name, content, hint):
    with pytest.raises(
        DataFormatError,
        match=rf"{name}:1: missing column\(s\) \['text', 'label'\]; the header has "
        rf"\[.*\]{hint}",
    ):
        table(name, content).load_split("test")


def test_a_missing_column_names_the_columns_found(table):
    with pytest.raises(
        DataFormatError,
        match=r"m.csv:1: missing column\(s\) \['label'\]; the header has \['text', "
        r"'stars'\]$",
    ):
        table("m.csv", "text,stars\ngood,1\n").load_split("test")


def test_a_header_naming_a_column_twice_is_named(table):
    with pytest.raises(DataFormatError, match=r"d.csv:1: the header names column\(s\) \['text'\] more than once"):
        table("d.csv", "text,text,label\na,b,1\n").load_split("test")


def test_an_unknown_suffix_lists_the_known_ones(table):
    known = r"expected \.csv, \.tsv, \.jsonl or \.json \(or one of them compressed: \.gz, \.bz2, \.xz\)"
    with pytest.raises(ValueError, match=r"t.xlsx: cannot tell the format from the suffix '.xlsx'; " + known):
        table("t.xlsx", "x").load_split("test")


# ----------------------------------------------------------------------------------------------- JSON lines
def test_jsonl_lines_that_are_not_objects_are_named(table):
    with pytest.raises(
        DataFormatError,
        match=r"a.jsonl:2: expected a JSON object, got list; a JSON-lines file holds "
        r"one object per line, not an array",
    ):
        table("a.jsonl", '{"text": "x", "label": 1}\n[{"text": "y", "label": 0}]\n').load_split("test")
    with pytest.raises(DataFormatError, match=r"s.jsonl:1: expected a JSON object, got str$"):
        table("s.jsonl", '"just text"\n').load_split("test")
    pretty = '{\n  "text": "x",\n  "label": 1\n}\n'
    with pytest.raises(
        DataFormatError,
        match=r"p.json:1: invalid JSON \(.*\); a pretty-printed JSON document\? A "
        r"JSON-lines file holds one whole object per line",
    ):
        table("p.json", pretty).load_split("test")


# --------------------------------------------------------------------------------------------------- labels
EXPECTED = r"expected an integer id 0..1 or a label name \(one of \['negative', 'positive'\]\)"


@pytest.mark.parametrize(
    ("label", "found"),
    [
        ([0, 1], r"label \[0, 1\] is a list"),
        ({"id": 1}, r"label \{'id': 1\} is a dict"),
        (1.5, r"label 1.5 is a float"),
        (True, r"label True is a bool"),
        (None, r"empty label"),
        ("", r"empty label"),
    ],
)
def test_a_jsonl_label_of_the_wrong_type_names_it_and_what_was_expected(table, label, found):
    lines = [{"text": "fine", "label": 1}, {"text": "odd", "label": label}]
    with pytest.raises(DataFormatError, match=rf"x.jsonl:2: {found}; {EXPECTED}$"):
        table("x.jsonl", "".join(json.dumps(line) + "\n" for line in lines)).load_split("test")


def test_an_integral_float_label_says_how_to_write_it(table):
    with pytest.raises(DataFormatError, match=rf"x.jsonl:1: label 1.0 is a float; {EXPECTED}; write 1.0 as 1$"):
        table("x.jsonl", '{"text": "fine", "label": 1.0}\n').load_split("test")


def test_empty_label_values_in_a_table_are_named(table):
    with pytest.raises(DataFormatError, match=rf"e.csv:3: empty label; {EXPECTED}$"):
        table("e.csv", "text,label\ngood,1\nbad,\n").load_split("test")
    with pytest.raises(DataFormatError, match=rf"e.tsv:2: empty label; {EXPECTED}$"):
        table("e.tsv", "text\tlabel\ngood\t  \n").load_split("test")


def test_a_label_that_is_neither_a_name_nor_an_id_says_both(table):
    with pytest.raises(
        DataFormatError,
        match=r"n.csv:2: label '1.0' is not one of label_names \['negative', "
        r"'positive'\] nor an integer id 0..1$",
    ):
        table("n.csv", "text,label\ngood,1.0\n").load_split("test")


def test_a_label_outside_the_names_stays_one_line_naming_file_and_line(table):
    with pytest.raises(
        DataFormatError,
        match=r"o.jsonl:1: label 2 is outside label_names \(ids 0..1: \['negative', "
        r"'positive'\]\)$",
    ):
        table("o.jsonl", '{"text": "fine", "label": 2}\n').load_split("test")


def test_labels_through_a_label_map_of_the_wrong_type_are_named(tmp_path, cache):
    stars = [{"review_title": "t", "review_body": "b", "stars": s, "product_category": "toy"} for s in (5, [5], 2.0)]
    (tmp_path / "dataset_en_test.json").write_text("".join(json.dumps(s) + "\n" for s in stars))
    data = dm.AmazonReviews(data_dir=str(tmp_path), tokenizer="x", cache_dir=cache, label_column="stars")
    with pytest.raises(
        DataFormatError,
        match=r"dataset_en_test.json:2: stars \[5\] is a list; expected one of "
        r"\[1, 2, 3, 4, 5\]$",
    ):
        data.load_split("test")


def test_a_hub_label_of_the_wrong_type_names_split_and_row(monkeypatch):
    split = Dataset.from_dict({"text": ["fine", "odd"], "label": [1.0, 0.5]})
    monkeypatch.setattr("datasets.load_dataset", lambda *a, **k: DatasetDict({"train": split, "test": split}))
    data = dm.TextClassificationFiles(hub_name="me/floats", label_names=["negative", "positive"], tokenizer="x")
    with pytest.raises(
        DataFormatError,
        match=rf"me/floats/test row 0: label 1.0 is a float; {EXPECTED}; write 1.0 "
        r"as 1$",
    ):
        data.load_split("test")
