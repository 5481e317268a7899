"""Our entity F1 / precision / recall (seqeval inside lightning_modules/metrics.py) equal the official CoNLL scorer's
(the `conlleval` package, a port of conlleval.pl) on the predictions of a tiny LLaMA trained for 150 steps on 400
real CoNLL-2003 sentences: the same word-level tags of 250 test sentences scored both ways, including ill-formed
predicted spans (an `I-` tag after `O`, which both score as the start of an entity)."""

from __future__ import annotations

import conlleval
import pytest
import torch
import yaml
from helpers import ROOT, module_for
from lightning.pytorch import Callback, Trainer, seed_everything

from lightning_modules import BidirectionalMask


def tiny_llama() -> dict:
    """The 2-layer random LLaMA of configs/debug/tiny_llama.yaml."""
    model = yaml.safe_load((ROOT / "configs" / "debug" / "tiny_llama.yaml").read_text())["model"]
    return model.get("init_args", model)["backbone_config"]


class KeepSentences(Callback):
    """The test metric's word-level (predicted, gold) tags per sentence, read before the module resets it."""

    sentences: tuple[list[list[str]], list[list[str]]] = ([], [])

    def on_test_epoch_end(self, trainer, pl_module) -> None:  # callbacks run before the module's own hook
        (metric,) = pl_module.test_metrics.values()
        self.sentences = metric.sentences()


def conll_lines(predicted: list[list[str]], gold: list[list[str]]) -> list[str]:
    """conlleval's input: `word gold predicted` per word, a blank line after each sentence."""
    lines = []
    for pred_tags, gold_tags in zip(predicted, gold):
        lines += [f"w {g} {p}" for g, p in zip(gold_tags, pred_tags)] + [""]
    return lines


def ill_formed_starts(predicted: list[list[str]]) -> int:
    """Predicted `I-X` tags that follow `O` or another type: entities that IOB2 cannot start this way."""
    return sum(
        tag.startswith("I-") and (before == "O" or before[2:] != tag[2:])
        for tags in predicted
        for before, tag in zip(["O", *tags], tags)
    )


def test_entity_scores_equal_conlleval_on_a_trained_model(shared_data, llama2_tokenizer):
    from datamodules import CoNLL2003

    seed_everything(0)
    data = CoNLL2003(
        data_dir=str(shared_data / "conll2003"),
        tokenizer=llama2_tokenizer,
        batch_size=16,
        max_train_examples=400,
        max_eval_examples=250,
        max_length=64,
    )
    model = module_for(
        data,
        backbone_config=tiny_llama(),
        mask=BidirectionalMask(),
        finetuning="full",
        optimizer=lambda params: torch.optim.AdamW(params, lr=3e-3),
        verify_mask=False,
    )
    keep = KeepSentences()
    trainer = Trainer(
        max_steps=150,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        callbacks=[keep],
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, datamodule=data)
    (ours,) = trainer.test(model, datamodule=data, verbose=False)
    predicted, gold = keep.sentences
    assert len(predicted) == 250
    official = conlleval.evaluate(conll_lines(predicted, gold))
    chunks = official["overall"]["chunks"]
    # a model that predicts entities of several types, some of them as ill-formed spans (the cases that matter)
    assert chunks["stats"]["correct"] > 0 and ill_formed_starts(predicted) > 0
    assert sum(slot["stats"]["pred"] > 0 for slot in official["slots"]["chunks"].values()) >= 3
    assert ours["test/f1"] == pytest.approx(chunks["evals"]["f1"], abs=1e-6)
    assert ours["test/precision"] == pytest.approx(chunks["evals"]["prec"], abs=1e-6)
    assert ours["test/recall"] == pytest.approx(chunks["evals"]["rec"], abs=1e-6)
    for entity_type in ("PER", "ORG", "LOC", "MISC"):
        slot = official["slots"]["chunks"].get(entity_type)
        assert ours[f"test/f1_{entity_type}"] == pytest.approx(slot["evals"]["f1"] if slot else 0.0, abs=1e-6)
    # conlleval's token accuracy counts the same words as our word accuracy
    tags = official["overall"]["tags"]["stats"]
    assert ours["test/word_acc"] == pytest.approx(tags["correct"] / tags["gold"], abs=1e-6)
