"""Word <-> subword alignment on the synthetic tokenizer (real-data round trips: tests/test_data_*)."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from datamodules.alignment import IGNORE_INDEX, encode_words, words_from_tokens
from datamodules.synthetic import build_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(build_tokenizer())


def encode(tokenizer, words, tags=None, max_length=None):
    text = " ".join(words)
    enc = tokenizer(text, return_offsets_mapping=True, truncation=max_length is not None, max_length=max_length)
    full = len(tokenizer(text)["input_ids"])
    return encode_words(words, enc["input_ids"], enc["offset_mapping"], tags, full > len(enc["input_ids"]))


def test_first_subword_carries_the_label_rest_ignored(tokenizer):
    words, tags = ["bakoti", "zorxa", "vexjun", "inc"], [0, 5, 6, 0]  # 'bakoti' -> 3 subwords
    enc = encode(tokenizer, words, tags)
    assert tokenizer.convert_ids_to_tokens(enc.input_ids) == ["▁ba", "ko", "ti", "▁zor", "xa", "▁vex", "jun", "▁inc"]
    assert enc.word_starts == [0, 3, 5, 7]
    assert enc.labels == [0, IGNORE_INDEX, IGNORE_INDEX, 5, IGNORE_INDEX, 6, IGNORE_INDEX, 0]


def test_labels_map_back_to_words(tokenizer):
    words, tags = ["bakoti", "zorxa", "vexjun", "inc", "lu"], [0, 5, 6, 0, 0]
    enc = encode(tokenizer, words, tags)
    token_preds = [label if label != IGNORE_INDEX else 99 for label in enc.labels]  # 99 = noise off first subwords
    assert words_from_tokens(token_preds, enc.word_starts, outside=0) == tags


def test_truncated_words_are_counted_and_predicted_outside(tokenizer):
    words, tags = ["bakoti", "zorxa", "vexjun", "inc"], [0, 5, 6, 0]
    enc = encode(tokenizer, words, tags, max_length=4)  # keeps ▁ba ko ti ▁zor
    assert enc.word_starts == [0, 3, -1, -1] and enc.truncated_words == 2 and enc.empty_words == 0
    assert words_from_tokens([0, 0, 0, 5], enc.word_starts, outside=0) == [0, 5, 0, 0]


def test_tag_count_mismatch_is_an_error(tokenizer):
    with pytest.raises(ValueError, match="2 words but 3 tags"):
        encode(tokenizer, ["ba", "ko"], [0, 0, 0])
