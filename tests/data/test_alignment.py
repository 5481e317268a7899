"""Word <-> subword alignment on the synthetic tokenizer (real-data round trips: tests/data/test_data_roundtrip.py).

Token predictions come back to words the way training and evaluation do it: the batch of `datamodules.base.collate`
through `LabelSupervisedModule.word_predictions`.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from helpers import module_for
from transformers import AutoTokenizer

from datamodules.alignment import IGNORE_INDEX, encode_words
from datamodules.base import collate
from datamodules.synthetic import build_tokenizer

TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(build_tokenizer())


@pytest.fixture(scope="module")
def model(tokenizer):
    data = SimpleNamespace(
        task="token", num_labels=len(TAGS), label_names=TAGS, pad_token_id=0, vocab_size=len(tokenizer)
    )
    return module_for(data, verify_mask=False)


def word_predictions(model, enc, token_preds: list[int]) -> list[int]:
    """The model's word predictions for one encoded sentence whose tokens are predicted `token_preds`."""
    features = [
        {
            "input_ids": enc.input_ids,
            "labels": enc.labels,
            "word_starts": enc.word_starts,
            "word_labels": [0] * len(enc.word_starts),
            "example_ids": 0,
        }
    ]
    batch = collate(features, pad_token_id=0, padding_side="left", task="token")
    logits = torch.nn.functional.one_hot(torch.tensor([token_preds]), len(TAGS)).float()  # (1, T, L)
    return model.word_predictions(logits, batch)[0].tolist()


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


def test_labels_map_back_to_words(tokenizer, model):
    words, tags = ["bakoti", "zorxa", "vexjun", "inc", "lu"], [0, 5, 6, 0, 0]
    enc = encode(tokenizer, words, tags)
    token_preds = [label if label != IGNORE_INDEX else 4 for label in enc.labels]  # 4 = noise off first subwords
    assert word_predictions(model, enc, token_preds) == tags


def test_truncated_words_are_counted_and_predicted_outside(tokenizer, model):
    words, tags = ["bakoti", "zorxa", "vexjun", "inc"], [0, 5, 6, 0]
    enc = encode(tokenizer, words, tags, max_length=4)  # keeps ▁ba ko ti ▁zor
    assert enc.word_starts == [0, 3, -1, -1] and enc.truncated_words == 2 and enc.empty_words == 0
    assert word_predictions(model, enc, [3, 3, 3, 5]) == [3, 5, 0, 0]


def test_tag_count_mismatch_is_an_error(tokenizer):
    with pytest.raises(ValueError, match="2 words but 3 tags"):
        encode(tokenizer, ["ba", "ko"], [0, 0, 0])
