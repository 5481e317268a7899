"""A `.txt` file of texts to predict that is really a CoNLL file ('EU B-ORG' lines, blank lines between sentences)."""

from __future__ import annotations

import logging

import pytest

from datamodules.predict_input import read_predict_file
from datamodules.readers import DataFormatError

CONLL_TXT = "EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\nPeter B-PER\nBlackburn I-PER\n"


def test_a_conll_shaped_txt_warns_once_with_a_count_for_a_sequence_task(tmp_path, caplog):
    path = tmp_path / "texts.txt"
    path.write_text(CONLL_TXT)
    with caplog.at_level(logging.WARNING, logger="datamodules.predict_input"):
        texts = read_predict_file(path, "sequence")
    assert texts["text"][:2] == ["EU B-ORG", "rejects O"]  # still read as it says: one text per line
    warnings = [r.getMessage() for r in caplog.records if "CoNLL" in r.getMessage()]
    assert warnings == [
        f"{path}: 6 of 6 lines look like CoNLL columns ('word TAG', e.g. line 1: 'EU B-ORG'), and each is read as "
        "one text. For token classification give the file a .conll suffix (words in the first column, a blank "
        "line between sentences)"
    ]


def test_a_conll_shaped_txt_is_an_error_for_a_token_task(tmp_path):
    path = tmp_path / "sentences.txt"
    path.write_text(CONLL_TXT)
    with pytest.raises(
        DataFormatError,
        match=r"sentences.txt: 6 of 6 lines look like CoNLL columns \('word TAG', "
        r"e.g. line 1: 'EU B-ORG'\), but a .txt file holds one sentence per "
        r"line; rename it to .conll",
    ):
        read_predict_file(path, "token")
    path.rename(tmp_path / "sentences.conll")
    assert read_predict_file(tmp_path / "sentences.conll", "token")["tokens"][0] == ["EU", "rejects", "German", "call"]


@pytest.mark.parametrize(
    "text",
    [
        "The EU rejects a German call\nTo boycott British lamb\n",
        "Dogs O\nand cats\nrain down from the sky today\n",  # one line of three ends in a tag-like word
        "Say O\nOr O\n",  # only O: no entity tag, not taken for CoNLL
    ],
)
def test_ordinary_texts_get_no_conll_warning(tmp_path, caplog, text):
    (tmp_path / "t.txt").write_text(text)
    with caplog.at_level(logging.WARNING, logger="datamodules.predict_input"):
        read_predict_file(tmp_path / "t.txt", "token")
    assert "CoNLL" not in caplog.text
