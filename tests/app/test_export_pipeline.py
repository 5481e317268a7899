"""Every kind of model we train exports to a folder that transformers' Auto classes and `pipeline()` load (a stock
class, or ours shipped in the folder with `trust_remote_code=True`) and that gives `Predictor`'s probabilities (the
code of `main.py predict`), for left- and right-padded batches (decoders count positions over real tokens)."""

from __future__ import annotations

import filecmp
import json

import pytest
import torch
from helpers import randomize_trained, synthetic_module
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer
from transformers import pipeline as hf_pipeline

from app.predict import Predictor
from core.hub import load_tokenizer
from datamodules.alignment import encode_words
from datamodules.synthetic import build_tokenizer
from lightning_modules import (
    BidirectionalFromLayer,
    BidirectionalMask,
    FirstTokenPooling,
    LabelSupervisedModule,
    LastTokenPooling,
    MaxPooling,
    MeanPooling,
)
from lightning_modules.label_supervised import modeling_ls_llama
from lightning_modules.label_supervised.pooling import AttentionPooling, LogitMaxPooling

TEXTS = ["goal ba ko ti", "vote", "atom lu mo sa ne di fa po gu zor", "song ba qui vex"]
SENTENCES = [["zorxa", "inc", "ba"], ["ko"], ["wimjun", "kraqui", "city", "ti", "re", "lu"]]
TINY_BERT = {
    "model_type": "bert",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
}
BERT_LORA = {"backbone_config": TINY_BERT, "lora_target_modules": ["query", "value"]}

# (id, task, module arguments, format): every mask and pooling, encoders, LoRA merged and full finetuning
SEQUENCE_KINDS = [
    ("causal-last", {}, "hf"),
    ("causal-mean", {"pooling": MeanPooling()}, "remote_code"),
    ("bidirectional-last", {"mask": BidirectionalMask()}, "hf"),
    ("bidirectional-mean", {"mask": BidirectionalMask(), "pooling": MeanPooling()}, "remote_code"),
    ("bidirectional-max", {"mask": BidirectionalMask(), "pooling": MaxPooling()}, "remote_code"),
    ("bidirectional-logit_max", {"mask": BidirectionalMask(), "pooling": LogitMaxPooling()}, "remote_code"),
    ("bidirectional-attention", {"mask": BidirectionalMask(), "pooling": AttentionPooling()}, "remote_code"),
    ("bidirectional-first", {"mask": BidirectionalMask(), "pooling": FirstTokenPooling()}, "remote_code"),
    ("bidir@1-last", {"mask": BidirectionalFromLayer(1), "pooling": LastTokenPooling()}, "remote_code"),
    ("bidir@1-max", {"mask": BidirectionalFromLayer(1), "pooling": MaxPooling()}, "remote_code"),
    ("full-causal-last", {"finetuning": "full"}, "hf"),
    ("full-bidirectional-max", {"finetuning": "full", "mask": "bidirectional", "pooling": "max"}, "remote_code"),
    ("encoder-first", BERT_LORA, "remote_code"),
    ("encoder-mean", {**BERT_LORA, "pooling": MeanPooling()}, "remote_code"),
]
TOKEN_KINDS = [
    ("causal", {}, "hf"),
    ("bidirectional", {"mask": BidirectionalMask()}, "hf"),
    ("bidir@1", {"mask": BidirectionalFromLayer(1)}, "remote_code"),
    ("full-bidir@1", {"finetuning": "full", "mask": BidirectionalFromLayer(1)}, "remote_code"),
    ("encoder", BERT_LORA, "hf"),
]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def trained_like(task: str, **kwargs) -> LabelSupervisedModule:
    """A tiny model whose trained weights (LoRA or every backbone weight, and the head) are random: a zero LoRA B or
    a zero attention query would hide a weight the export lost."""
    return randomize_trained(synthetic_module(task, **kwargs))


def export(module: LabelSupervisedModule, folder, kind: str):
    folder = module.save_pretrained(folder, tokenizer=build_tokenizer(), merge=True)
    assert json.loads((folder / "ls_llama.json").read_text())["format"] == kind
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    assert config.id2label == dict(enumerate(module.label_names))
    if kind == "remote_code":  # our code, shipped verbatim, named by auto_map
        assert config.model_type == "ls_llama" and set(config.auto_map) >= {"AutoConfig"}
        for name in ("modeling_ls_llama.py", "ls_llama_portable.py"):
            assert filecmp.cmp(folder / name, modeling_ls_llama.__file__.replace("modeling_ls_llama.py", name))
    else:
        assert "auto_map" not in json.loads((folder / "config.json").read_text())
    return folder


def padded(folder, side: str):
    """The export's own tokenizer, padding on `side`."""
    return AutoTokenizer.from_pretrained(folder, padding_side=side, trust_remote_code=True)


@pytest.mark.parametrize(("name", "kwargs", "kind"), SEQUENCE_KINDS, ids=[k[0] for k in SEQUENCE_KINDS])
def test_sequence_export_loads_in_transformers_with_our_probabilities(tmp_path, name, kwargs, kind):
    module = trained_like("sequence", **kwargs)
    folder = export(module, tmp_path / name, kind)
    expected = Predictor(module, build_tokenizer(), batch_size=4).predict(TEXTS)  # what main.py predict computes
    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)
    assert model.config.num_labels == module.num_labels
    sides = ["right"] if module.is_encoder else ["right", "left"]  # an encoder numbers positions itself, as trained
    for side in sides:
        classify = hf_pipeline(
            "text-classification",
            model=str(folder),
            tokenizer=padded(folder, side),
            trust_remote_code=True,
            batch_size=4,
            top_k=None,
        )
        for row, scores in zip(expected, classify(TEXTS)):
            got = {entry["label"]: entry["score"] for entry in scores}
            assert set(got) == set(row["probs"])
            assert got == pytest.approx(row["probs"], abs=1e-5), (side, row["text"])
    reloaded = LabelSupervisedModule.from_pretrained(folder)  # the same folder through our class
    for row, again in zip(expected, Predictor.from_pretrained(folder, batch_size=4).predict(TEXTS)):
        assert again["probs"] == pytest.approx(row["probs"], abs=1e-5)
    assert reloaded.pooling.name == module.pooling.name and reloaded.mask.label == module.mask.label


@pytest.mark.parametrize(("name", "kwargs", "kind"), TOKEN_KINDS, ids=[k[0] for k in TOKEN_KINDS])
def test_token_export_loads_in_transformers_with_our_tags(tmp_path, name, kwargs, kind):
    module = trained_like("token", **kwargs)
    folder = export(module, tmp_path / name, kind)
    tags = [row["tags"] for row in Predictor(module, build_tokenizer()).predict(SENTENCES)]
    tokenizer = load_tokenizer(build_tokenizer())
    model = AutoModelForTokenClassification.from_pretrained(folder, trust_remote_code=True)
    assert model.config.num_labels == module.num_labels
    sides = ["right"] if module.is_encoder else ["right", "left"]
    for side in sides:
        tag = hf_pipeline(
            "token-classification",
            model=str(folder),
            tokenizer=padded(folder, side),
            trust_remote_code=True,
            batch_size=3,
            ignore_labels=[],
        )
        for words, word_tags, entities in zip(SENTENCES, tags, tag([" ".join(words) for words in SENTENCES])):
            encoded = tokenizer(" ".join(words), return_offsets_mapping=True)
            ids = torch.tensor([encoded["input_ids"]])
            with torch.no_grad():
                probs = module(ids, torch.ones_like(ids))[0].softmax(-1)  # (T, C), unpadded
            by_offsets = {(entity["start"], entity["end"]): entity for entity in entities}
            starts = encode_words(words, encoded["input_ids"], encoded["offset_mapping"]).word_starts
            for word_tag, start in zip(word_tags, starts):
                entity = by_offsets[tuple(encoded["offset_mapping"][start])]
                assert entity["entity"] == word_tag, (side, words)
                assert entity["score"] == pytest.approx(probs[start].max().item(), abs=1e-5)


def test_remote_code_model_computes_our_logits_on_padded_batches(tmp_path):
    """The shipped classes directly (no pipeline): left- and right-padded batches give our model's logits."""
    module = trained_like("sequence", mask=BidirectionalFromLayer(1), pooling=AttentionPooling())
    folder = export(module, tmp_path / "bidir_from", "remote_code")
    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(model).__name__ == "LSLlamaForSequenceClassification" and model.config.pooling == "attention"
    for side in ("right", "left"):
        batch = padded(folder, side)(TEXTS, padding=True, return_tensors="pt")
        with torch.no_grad():
            ours = module(batch["input_ids"], batch["attention_mask"])
            theirs = model(**batch).logits
        torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-5)
    with torch.no_grad():  # labels give the loss, as transformers' classifiers do
        out = model(
            **padded(folder, "right")(TEXTS, padding=True, return_tensors="pt"), labels=torch.tensor([0, 1, 2, 3])
        )
    assert out.loss is not None and out.loss.ndim == 0
