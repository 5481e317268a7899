"""The quickstart's claim, on a reduced budget: unmasking wins big on right-context NER; both solve the twin."""

from __future__ import annotations

import json

import pytest

from experiments.quickstart import run

REDUCED = ["--data.init_args.num_train=1200", "--data.init_args.num_val=300", "--trainer.max_epochs=3"]


def test_bidirectional_beats_causal_by_a_wide_margin_on_right_context_ner(tmp_path):
    results = run("token", REDUCED, out_dir=str(tmp_path))
    causal = results["LS-LLaMA (causal)"]["metrics"]["val/f1"]
    bidirectional = results["LS-unLLaMA (bidirectional)"]["metrics"]["val/f1"]
    assert bidirectional - causal >= 0.20, (causal, bidirectional)
    assert bidirectional >= 0.9
    assert all(str(tmp_path) in r["log_dir"] for r in results.values())  # CSV logs too, not only W&B's
    saved = json.loads((tmp_path / "comparison_token.json").read_text())
    assert saved["LS-unLLaMA (bidirectional)"]["metrics"]["val/f1"] == bidirectional


@pytest.mark.slow
def test_both_solve_the_sequence_twin(tmp_path):
    results = run("sequence", REDUCED, out_dir=str(tmp_path))
    for result in results.values():
        assert result["metrics"]["val/acc"] >= 0.95


def test_the_quickstart_prints_the_same_numbers_on_every_run(tmp_path):
    tiny = ["--data.init_args.num_train=160", "--data.init_args.num_val=40", "--trainer.max_epochs=1"]
    first = run("token", tiny, out_dir=str(tmp_path / "a"))
    second = run("token", tiny, out_dir=str(tmp_path / "b"))
    assert [r["metrics"] for r in first.values()] == [r["metrics"] for r in second.values()]
