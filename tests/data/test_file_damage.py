"""A data file that is not what a reader expects (a folder, compressed, binary, empty, a pointer, cut short) gets
one error naming it and what was expected; gzip, bzip2 and xz files are read as they are."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import re

import pytest
import torch

import datamodules as dm
from datamodules.base import column
from datamodules.predict_input import read_predict_file
from datamodules.readers import DataFormatError

CSV = "text,label\ngood film,positive\nbad,0\n"
ROWS = {"text": ["good film", "bad"], "label": [1, 0]}
CONLL = "-DOCSTART- O\n\nJohn B-PER\nlives O\n\nin O\nParis B-LOC\n"
COMPRESS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}


# ------------------------------------------------------------------------------------------- folders, links
def test_a_folder_given_as_the_data_file_is_named_with_what_was_expected(tmp_path, table, ner):
    (tmp_path / "train.csv").mkdir()
    expected = rf"{re.escape(str(tmp_path / 'train.csv'))}: is a folder, not a file; expected a CSV file with columns"
    with pytest.raises(IsADirectoryError, match=expected + r" \['text', 'label'\]"):
        table("train.csv", None).load_split("test")
    (tmp_path / "sentences").mkdir()
    with pytest.raises(IsADirectoryError, match=r"sentences: is a folder, not a file; expected a CoNLL column file"):
        ner("sentences", None).load_split("test")
    with pytest.raises(IsADirectoryError, match=r"sentences: is a folder, not a file; expected a \.txt, \.jsonl or"):
        read_predict_file(tmp_path / "sentences", "token")


def test_a_file_given_as_data_dir_is_named(tmp_path, cache):
    (tmp_path / "train.txt").write_text(CONLL)
    data = dm.CoNLL2003(data_dir=str(tmp_path / "train.txt"), tokenizer="unused", cache_dir=cache)
    message = r"data_dir .*train.txt: is a file, not a folder; expected the folder holding CoNLL2003's files \("
    with pytest.raises(NotADirectoryError, match=message + r"train.txt, valid.txt, test.txt\)$"):
        data.load_split("test")


def test_a_symbolic_link_that_loops_is_named(tmp_path, table):
    os.symlink(tmp_path / "b.csv", tmp_path / "a.csv")
    os.symlink(tmp_path / "a.csv", tmp_path / "b.csv")
    message = r"a.csv: a symbolic link to '.*b.csv' that leads to no file \(its target is missing, or the links loop\)"
    with pytest.raises(FileNotFoundError, match=message + "; expected a CSV file"):
        table("a.csv", None).load_split("test")


def test_a_pipe_given_as_the_data_file_is_named(tmp_path, table):
    os.mkfifo(tmp_path / "pipe.csv")
    with pytest.raises(DataFormatError, match=r"pipe.csv: not a regular file \(a device, pipe or socket\); expected a"):
        table("pipe.csv", None).load_split("test")


def test_a_missing_file_is_still_file_not_found(table):
    with pytest.raises(FileNotFoundError, match=r"nothing.csv: file not found; TextClassificationFiles reads"):
        table("nothing.csv", None).load_split("test")


# ------------------------------------------------------------------------------------------- compression
@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_compressed_tables_jsonl_and_conll_are_read_as_they_are(tmp_path, table, ner, suffix):
    compress = COMPRESS[suffix]
    assert table(f"train.csv{suffix}", compress(CSV.encode())).load_split("test")[:] == ROWS
    tsv = compress(b"text\tlabel\r\ngood film\t1\r\nbad\tnegative\r\n")
    assert table(f"train.tsv{suffix}", tsv).load_split("test")[:] == ROWS
    jsonl = "".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in zip(ROWS["text"], ROWS["label"]))
    assert table(f"train.jsonl{suffix}", compress(jsonl.encode())).load_split("test")[:] == ROWS
    sentences = ner(f"train.txt{suffix}", compress(CONLL.encode())).load_split("test")
    assert column(sentences, "tokens") == [["John", "lives"], ["in", "Paris"]]
    (tmp_path / f"x.conll{suffix}").write_bytes(compress(CONLL.encode()))
    assert read_predict_file(tmp_path / f"x.conll{suffix}", "token")["tokens"] == [["John", "lives"], ["in", "Paris"]]
    (tmp_path / f"x.txt{suffix}").write_bytes(compress(b"one text\ntwo\n"))
    assert read_predict_file(tmp_path / f"x.txt{suffix}", "sequence")["text"] == ["one text", "two"]


def test_a_compressed_file_reads_like_the_plain_one_byte_for_byte(tmp_path, table):
    content = "text,label\n" + '"caf\u00e9, ""quoted""\nover lines",1\r\nplain,0\n' * 50
    plain = table("plain.csv", content).load_split("test")[:]
    assert table("packed.csv.gz", gzip.compress(content.encode())).load_split("test")[:] == plain


@pytest.mark.parametrize(
    ("compress", "kind", "suffix", "tool"),
    [
        (gzip.compress, "gzip", ".gz", "gunzip"),
        (bz2.compress, "bzip2", ".bz2", "bunzip2"),
        (lzma.compress, "xz", ".xz", "unxz"),
    ],
)
def test_a_compressed_file_without_its_suffix_says_how_to_name_it(table, compress, kind, suffix, tool):
    with pytest.raises(
        DataFormatError,
        match=rf"train.csv: is {kind}-compressed, but its name does not end in "
        rf"\{suffix}; rename it to train.csv\{suffix} \(read as it is\) or "
        rf"decompress it \({tool}\)$",
    ):
        table("train.csv", compress(CSV.encode())).load_split("test")


def test_a_dot_gz_file_that_is_not_gzip_is_named(table):
    with pytest.raises(
        DataFormatError,
        match=r"train.csv.gz: its name ends in .gz, but it is not gzip-compressed; "
        r"rename it without .gz$",
    ):
        table("train.csv.gz", CSV).load_split("test")
    with pytest.raises(
        DataFormatError,
        match=r"b.csv.gz: its name ends in .gz, but it is not gzip-compressed \(it "
        r"is bzip2-compressed: name it b.csv.bz2\)",
    ):
        table("b.csv.gz", bz2.compress(CSV.encode())).load_split("test")


def test_a_truncated_or_damaged_gzip_is_named_not_taken_for_an_encoding_error(tmp_path, table, ner):
    packed = gzip.compress(("text,label\n" + "a fine text,1\n" * 5000).encode())
    cut = r"train.csv.gz: the gzip data is damaged or cut short after [\d,]+ bytes of text \(Compressed file ended "
    with pytest.raises(DataFormatError, match=cut + r".*\); expected a complete gzip file \(check it with gzip -t\)"):
        table("train.csv.gz", packed[: len(packed) // 2]).load_split("test")
    with pytest.raises(DataFormatError, match=r"tiny.txt.gz: the gzip data is damaged or cut short after [\d,]+ bytes"):
        ner("tiny.txt.gz", gzip.compress(CONLL.encode())[:15]).load_split("test")
    damaged = bytearray(packed)
    damaged[len(damaged) // 2] ^= 0xFF
    with pytest.raises(DataFormatError, match=r"bad.csv.gz: the gzip data is damaged or cut short after [\d,]+ bytes"):
        table("bad.csv.gz", bytes(damaged)).load_split("test")


def test_a_checkpoint_zip_or_zstd_given_as_data_is_named(tmp_path, table):
    torch.save({"weight": torch.zeros(3)}, tmp_path / "model.pt")
    with pytest.raises(
        DataFormatError,
        match=r"model.pt: is a zip archive \(a PyTorch checkpoint, a \.zip or an "
        r"\.xlsx file\?\), not a CSV file with columns \['text', 'label'\]; "
        r"unpack it and give the file inside",
    ):
        table("model.pt", None, file_format="csv").load_split("test")
    with pytest.raises(DataFormatError, match=r"z.csv: is zstd-compressed, which is not read; decompress it"):
        table("z.csv", b"\x28\xb5\x2f\xfd" + bytes(20)).load_split("test")


# --------------------------------------------------------------------------------------------- content
def test_an_empty_file_is_named_with_what_was_expected(tmp_path, table, ner):
    with pytest.raises(DataFormatError, match=r"empty.csv: the file is empty \(0 bytes\); expected a CSV file"):
        table("empty.csv", "").load_split("test")
    with pytest.raises(DataFormatError, match=r"e.csv.gz: holds no data once decompressed \(gzip\); expected a CSV"):
        table("e.csv.gz", gzip.compress(b"")).load_split("test")
    with pytest.raises(DataFormatError, match=r"empty.txt: the file is empty \(0 bytes\); expected a CoNLL column"):
        ner("empty.txt", "").load_split("test")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataFormatError, match=r"empty.jsonl: the file is empty \(0 bytes\); expected a JSON-lines"):
        read_predict_file(tmp_path / "empty.jsonl", "sequence")


def test_a_git_lfs_pointer_is_named(table):
    pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 3806081\n"
    with pytest.raises(DataFormatError, match=r"train.csv: is a Git LFS pointer, not the data; fetch the file"):
        table("train.csv", pointer).load_split("test")


def test_binary_files_and_nul_bytes_are_named(table, ner):
    safetensors = (88).to_bytes(8, "little") + b'{"__metadata__":{}}' + bytes(64)
    binary = r"w.csv: holds NUL bytes \(the first at byte 1\), so it is binary, not a CSV file with columns .* in "
    with pytest.raises(DataFormatError, match=binary + r"utf-8; if it is UTF-16 text, set data.init_args.encoding"):
        table("w.csv", safetensors).load_split("test")
    late = CSV + "x" * 5000 + ",1\nok\x00,1\n"  # past the first block that is sniffed
    with pytest.raises(DataFormatError, match=r"late.csv:5: a NUL character \(0x00\) in the text; expected a CSV"):
        table("late.csv", late).load_split("test")
    with pytest.raises(DataFormatError, match=r"n.txt:9: a NUL character \(0x00\) in the text; expected a CoNLL"):
        ner("n.txt", CONLL + "x" * 5000 + " O\nPar\x00is B-LOC\n").load_split("test")


def test_utf16_text_is_named_and_reads_with_its_encoding(table):
    content = CSV.encode("utf-16")  # with a byte-order mark
    with pytest.raises(
        DataFormatError,
        match=r"u.csv: is UTF-16 text \(it starts with a UTF-16 byte-order mark\), "
        r"read as utf-8; set data.init_args.encoding: utf-16",
    ):
        table("u.csv", content).load_split("test")
    assert table("u.csv", content, encoding="utf-16").load_split("test")[:] == ROWS


def test_the_parse_cache_key_changes_with_how_files_are_opened(monkeypatch):
    from pathlib import Path

    from datamodules import file_examples
    from datamodules.cache import reading_code_digest

    before = reading_code_digest(file_examples.table_examples)
    read_bytes = Path.read_bytes
    monkeypatch.setattr(
        Path, "read_bytes", lambda self: read_bytes(self) + (b"#" if self.name == "file_access.py" else b"")
    )
    assert reading_code_digest(file_examples.table_examples) != before
