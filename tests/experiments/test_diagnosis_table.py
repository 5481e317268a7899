"""The diagnosis table of issue 17: variants paired with LS-LLaMA by seed, t-intervals over seeds, the k sweep."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers import ROOT
from scipy import stats

from experiments import diagnosis_table
from experiments.diagnosis_table import diagnosis_frame, hypothesis, k_sweep_frame, load, split_setting
from experiments.stats import t_interval

N_EXAMPLES = 200


def write_run(folder, run_id: str, seed: int, accuracy: float) -> None:
    """A finished classification run: result.json and per-example outcomes with the given accuracy."""
    run = folder / run_id
    (run / "test" / "version_0").mkdir(parents=True)
    method = run_id.split("-", 2)[2].split("_from")[0].split("_lr")[0]
    configs = ["configs/data/sst2.yaml", "configs/backbone/smollm2-135m.yaml", f"configs/method/{method}.yaml"]
    result = {"id": run_id, "seed": seed, "configs": configs, "test": {"test/score": accuracy}}
    (run / "result.json").write_text(json.dumps(result))
    hits = np.arange(N_EXAMPLES) < round(accuracy * N_EXAMPLES)
    examples = pd.DataFrame({"example_id": range(N_EXAMPLES), "target": 1, "pred": hits.astype(int)})
    examples.to_csv(run / "test" / "version_0" / "test_examples.csv", index=False)


@pytest.fixture
def folders(tmp_path):
    """Diagnosis runs in one folder, the LS-LLaMA / LS-unLLaMA baselines in another (as in the committed results)."""
    diagnosis, baselines = tmp_path / "diagnosis", tmp_path / "baselines"
    for seed, (llama, unllama, from15, lr) in enumerate([(0.84, 0.60, 0.80, 0.50), (0.86, 0.66, 0.85, 0.55)]):
        write_run(baselines, f"sst2-smollm2-ls_llama-s{seed}", seed, llama)
        write_run(baselines, f"sst2-smollm2-ls_unllama-s{seed}", seed, unllama)
        write_run(diagnosis, f"sst2-smollm2-ls_unllama_from15-s{seed}", seed, from15)
        write_run(diagnosis, f"sst2-smollm2-ls_unllama_lr8e-5-s{seed}", seed, lr)
    write_run(diagnosis, "sst2-smollm2-ls_unllama_from15-s7", 7, 0.9)  # no LS-LLaMA run at seed 7: not paired
    return diagnosis, baselines


def test_settings_are_split_into_data_backbone_and_variant_even_with_a_dash():
    assert split_setting("sst2-smollm2-ls_unllama_lr8e-5") == ("sst2", "smollm2", "lr8e-5")
    assert split_setting("sst2_4000-smollm2-ls_unllama") == ("sst2_4000", "smollm2", "")
    assert split_setting("sst2-smollm2-ls_llama") is None and split_setting("sst2-minilm") is None
    assert hypothesis("sst2", "from15").startswith("H3") and hypothesis("sst2_4000", "").startswith("H4")
    assert hypothesis("sst2_x4", "lr2e-4").startswith("H1") and hypothesis("sst2", "logit_max").startswith("H2")


def test_t_interval_is_students_over_seeds():
    mean, low, high = t_interval([0.2, 0.3, 0.4])
    half = stats.t.ppf(0.975, 2) * 0.1 / np.sqrt(3)
    assert (mean, low, high) == pytest.approx((0.3, 0.3 - half, 0.3 + half))
    assert np.isnan(t_interval([0.5])[1])


def test_variants_are_paired_with_ls_llama_at_the_same_seeds(folders):
    runs, examples = load(list(folders))
    frame = diagnosis_frame(runs, examples).set_index("variant")
    from15 = frame.loc["from15"]
    assert from15["n"] == 3 and from15["vs_llama_n"] == 2  # seed 7 has no LS-LLaMA partner
    assert from15["vs_llama"] == pytest.approx(np.mean([0.80 - 0.84, 0.85 - 0.86]))
    assert from15["vs_unllama"] == pytest.approx(np.mean([0.80 - 0.60, 0.85 - 0.66]))
    assert from15["vs_llama_t_low"] < from15["vs_llama"] < from15["vs_llama_t_high"]
    assert from15["vs_llama_boot_low"] <= from15["vs_llama"] <= from15["vs_llama_boot_high"]
    assert frame.loc["lr8e-5", "hypothesis"].startswith("H1") and "max, lr 5e-4" in frame.index


def test_k_sweep_puts_ls_unllama_at_zero_and_ls_llama_at_the_depth(folders):
    runs, _ = load(list(folders))
    sweep = k_sweep_frame(runs, num_layers=30)
    assert sorted(sweep["k"].unique()) == [0, 15, 30]
    assert sorted(sweep.loc[sweep["k"] == 30, "score"]) == [0.84, 0.86]
    assert sorted(sweep.loc[sweep["k"] == 0, "score"]) == [0.60, 0.66]


def test_the_command_writes_the_table_and_the_figure(folders, tmp_path, capsys):
    diagnosis, baselines = folders
    assert diagnosis_table.main([str(diagnosis), "--baselines", str(baselines), "--out", str(tmp_path / "out")]) == 0
    table = (tmp_path / "out" / "diagnosis.md").read_text()
    assert "| H3 depth (bidirectional from layer k) | from15 | sst2 | 3 |" in table
    assert (tmp_path / "out" / "k_sweep.png").stat().st_size > 10_000
    assert diagnosis_table.main([str(tmp_path / "empty")]) == 2 and "no finished runs" in capsys.readouterr().err


DIAGNOSIS = ROOT / "experiments" / "results" / "2026-12-07_unllama_diagnosis"


@pytest.mark.skipif(not (DIAGNOSIS / "diagnosis.md").exists(), reason="the diagnosis results are not committed")
def test_committed_diagnosis_rebuilds_from_its_run_files(tmp_path):
    baselines = ROOT / "experiments" / "results" / "2026-11-29_repro_seeds"
    assert diagnosis_table.main([str(DIAGNOSIS), "--baselines", str(baselines), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "diagnosis.md").read_text() == (DIAGNOSIS / "diagnosis.md").read_text()
