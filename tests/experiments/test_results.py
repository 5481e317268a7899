"""Results over seeds: bootstrap intervals, paired differences, and tables that rebuild from committed run files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import ROOT
from seqeval.metrics import f1_score
from suite_helpers import run_seeded_suite

from experiments.mntp import compare as mntp_compare
from experiments.results_table import (
    copy_run_files,
    differences_frame,
    methods_frame,
    portable,
    results_frame,
    settings_frame,
    write_tables,
)
from experiments.stats import bootstrap_interval, mean_std, score
from lightning_modules.metrics import SeqevalMetrics

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def classification(correct: list[bool]) -> pd.DataFrame:
    return pd.DataFrame({"example_id": range(len(correct)), "target": 1, "pred": [1 if c else 0 for c in correct]})


def test_entity_counts_per_sentence_sum_to_seqevals_f1():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "I-LOC"], ["O", "B-PER"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["B-LOC", "O"], ["B-LOC", "B-PER"]]
    metric = SeqevalMetrics(TAGS)
    index = {t: i for i, t in enumerate(TAGS)}
    width = max(len(s) for s in gold)
    pad = [[index[t] for t in s] + [-100] * (width - len(s)) for s in gold]
    guesses = [[index[t] for t in s] + [0] * (width - len(s)) for s in pred]
    metric.update(torch.tensor(guesses), torch.tensor(pad), torch.arange(3))
    rows = pd.DataFrame(metric.example_rows())  # what test_examples.csv holds
    assert score(rows) == pytest.approx(f1_score(gold, pred)) and 0 < score(rows) < 1


def test_bootstrap_interval_holds_the_estimate_and_paired_differences_cancel():
    rng = np.random.default_rng(0)
    runs = [classification(list(rng.random(400) < p)) for p in (0.7, 0.72, 0.68)]
    estimate, low, high = bootstrap_interval(runs)
    assert estimate == pytest.approx(np.mean([score(r) for r in runs])) and low < estimate < high
    assert 0.02 < high - low < 0.15  # ~ 2 x 1.96 x sqrt(.7 x .3 / 1200)
    assert bootstrap_interval(runs, baseline=runs) == (0.0, 0.0, 0.0)
    better = [classification([True] * 400) for _ in runs]
    difference, low, high = bootstrap_interval(better, baseline=runs)
    assert difference == pytest.approx(1 - estimate) and 0 < low < difference < high
    with pytest.raises(ValueError, match="different examples"):
        bootstrap_interval(runs, baseline=[r.iloc[:-1] for r in runs])
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0, 3)


@pytest.fixture(scope="module")
def seeded_runs(tmp_path_factory):
    return run_seeded_suite(tmp_path_factory.getbasetemp() / "seeded")


def test_settings_average_over_seeds_and_methods_are_compared_pairwise(seeded_runs):
    runs = results_frame(seeded_runs)
    assert sorted(runs["seed"]) == [0, 0, 1, 1] and set(runs["method"]) == {"ls_llama", "ls_unllama"}
    settings = settings_frame(seeded_runs, runs).set_index("setting")
    causal = settings.loc["right_context-tiny-ls_llama"]
    scores = runs[runs["method"] == "ls_llama"]["test_score"]
    assert causal["n"] == 2 and causal["mean"] == pytest.approx(scores.mean())
    assert (
        causal["std"] == pytest.approx(scores.std(ddof=1)) and causal["ci_low"] <= causal["mean"] <= causal["ci_high"]
    )
    (difference,) = differences_frame(seeded_runs, runs).to_dict("records")
    assert difference["comparison"] == "ls_unllama - ls_llama" and difference["setting"] == "right_context-tiny-*"
    expected = settings.loc["right_context-tiny-ls_unllama"]["mean"] - causal["mean"]
    assert difference["n"] == 2 and difference["mean"] == pytest.approx(expected)
    assert difference["ci_low"] <= difference["mean"] <= difference["ci_high"]


def test_methods_view_names_a_run_without_a_method_file_by_its_label():
    settings = pd.DataFrame(
        [
            {"setting": "toy-tiny-a", "method": "ls_llama", "label": "causal", "mean": 0.5, "std": 0.1, "n": 2},
            {"setting": "toy-tiny-b", "method": None, "label": "my variant", "mean": 0.7, "std": 0.0, "n": 1},
        ]
    )
    (row,) = methods_frame(settings).to_dict("records")
    assert row["ours, best first"] == "my variant > ls_llama"
    assert row["my variant"] == "70.00 (n=1)" and row["ls_llama"] == "50.00 ± 10.00 (n=2)"


def test_copied_run_files_rebuild_the_same_tables(seeded_runs, tmp_path):
    write_tables(seeded_runs, seeded_runs)
    copied = copy_run_files(seeded_runs, tmp_path)
    assert copied >= 4 * 4 and not list(tmp_path.rglob("*.ckpt"))  # result, configs, metrics: no checkpoints
    write_tables(tmp_path, tmp_path)
    assert (tmp_path / "results.md").read_text() == (seeded_runs / "results.md").read_text()


def test_copied_files_name_paths_that_hold_in_every_clone():
    result = '{"best_ckpt": "/work/exp-seeds/experiments/runs/s/sst2-s0/fit/version_0/checkpoints/best.ckpt"}'
    assert portable(result) == '{"best_ckpt": "experiments/runs/s/sst2-s0/fit/version_0/checkpoints/best.ckpt"}'
    config = "tokenizer: /home/me/shared/models/llama2-tokenizer-hf\n- /root/ls-llama/configs/data/sst2.yaml"
    assert portable(config) == "tokenizer: ../shared/models/llama2-tokenizer-hf\n- configs/data/sst2.yaml"
    assert portable("lr: 8.0e-05 # /path/in/a/comment") == "lr: 8.0e-05 # /path/in/a/comment"  # nothing else


def committed_results() -> list:
    """Every committed results folder holding run files (<run>/result.json)."""
    folders = {p.parent.parent for p in (ROOT / "experiments" / "results").rglob("*/result.json")}
    return sorted(folders)


@pytest.mark.parametrize("folder", committed_results(), ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_tables_rebuild_from_their_run_files(folder, tmp_path):
    write_tables(folder, tmp_path)
    assert (tmp_path / "results.md").read_text() == (folder / "results.md").read_text()


def test_curves_draw_one_line_per_setting_with_a_seed_band(seeded_runs, tmp_path):
    from experiments.plot_curves import label_of, load_local, seed_groups
    from experiments.plot_curves import main as plot_main

    runs = sorted(p for p in seeded_runs.iterdir() if p.is_dir())
    groups = seed_groups({label_of(r): load_local(r) for r in runs})
    assert {k: len(v) for k, v in groups.items()} == {
        "right_context-tiny-ls_llama": 2,
        "right_context-tiny-ls_unllama": 2,
    }
    out = plot_main([*map(str, runs), "--out", str(tmp_path / "curves.png")])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


@pytest.mark.parametrize(
    "folder",
    [p.parent.parent for p in sorted((ROOT / "experiments" / "results").glob("*/mntp_comparison/comparison.md"))],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_committed_mntp_comparison_rebuilds_from_its_run_files(folder, tmp_path):
    assert mntp_compare.main([str(folder), "--adapt", str(folder / "mntp_adapt"), "--out", str(tmp_path)]) == 0
    committed = (folder / "mntp_comparison" / "comparison.md").read_text()
    assert (tmp_path / "comparison.md").read_text() == committed
