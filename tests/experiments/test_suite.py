"""The suite runner: runs, selects on validation, resumes, refuses mixed arguments, tabulates; and the plots."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from suite_helpers import run_tiny_suite, write_tiny_suite

from experiments import suite as suite_module
from experiments.plot_curves import load_local
from experiments.plot_curves import main as plot_main
from experiments.results_table import load_paper_numbers, results_frame
from experiments.results_table import main as results_table_main
from experiments.suite import ROOT, Options, SuiteError, load_suite, paper_key, run_suite
from main import main


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """The tiny suite, run once for this module."""
    return run_tiny_suite(tmp_path_factory.getbasetemp() / "tiny_suite")


def test_suite_writes_results_selected_on_validation(tiny_runs):
    for run_id in ("causal", "bidirectional"):
        result = json.loads((tiny_runs / run_id / "result.json").read_text())
        fit = pd.read_csv(next((tiny_runs / run_id / "fit").glob("version_*/metrics.csv")))
        assert result["monitor"] == "val/score"
        assert result["best_val"] == pytest.approx(fit["val/score"].max(), abs=1e-6)  # chosen on validation
        test = pd.read_csv(next((tiny_runs / run_id / "test").glob("version_*/metrics.csv")))
        assert result["test"]["test/score"] == pytest.approx(test["test/score"].dropna().iloc[-1])
        assert result["best_ckpt"] in " ".join(result["test_command"])
        assert result["machine"]["nproc"] >= 1


def test_results_table_has_the_paper_column(tiny_runs):
    table = pd.read_csv(tiny_runs / "results.csv")
    assert {"run", "test_score", "paper_key", "paper_value", "best_val"} <= set(table.columns)
    rows = table.set_index("run")
    assert rows.loc["causal", "paper_key"] == "conll2003/llama2-7b/ls_llama"
    assert pd.isna(rows.loc["bidirectional", "paper_key"])
    text = (tiny_runs / "results.md").read_text()
    assert "| paper |" in text and "| causal |" in text
    assert f"{100 * rows.loc['causal', 'test_score']:.2f}" in text


def test_second_invocation_skips_finished_runs(tiny_runs, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a finished run was started again")

    monkeypatch.setattr(suite_module, "execute", fail)
    suite = load_suite(tiny_runs.parent / "suite.yaml", tiny_runs)
    outcome = run_suite(suite, Options(wandb="off", in_process=True))
    assert [r["id"] for r in outcome["results"]] == ["causal", "bidirectional"]
    assert not outcome["failed"]


def test_changed_arguments_are_refused(tiny_runs, tmp_path):
    path = tiny_runs.parent / "suite.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["runs"][0]["overrides"] = ["--model.lora_r=4"]
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(spec))
    with pytest.raises(SuiteError, match="other arguments.*--force causal"):
        run_suite(load_suite(changed, tiny_runs), Options(wandb="off", in_process=True))


@pytest.mark.slow
def test_killed_run_resumes_from_last_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    suite = load_suite(write_tiny_suite(tmp_path, max_epochs=2), tmp_path / "runs")
    run = suite.runs[0]
    run_dir = suite.runs_dir / run.id
    run_dir.mkdir(parents=True)
    overlay = run_dir / "logging_fit.yaml"
    overlay.write_text(yaml.safe_dump(suite_module.logging_overlay(suite, run, "fit", "off")))
    # an interrupted fit: one of the two epochs done, last.ckpt written, no done-marker
    main([*suite_module.command(suite, run, "fit", overlay), "--trainer.max_epochs=1"])
    assert suite_module.newest_last_checkpoint(run_dir) is not None
    outcome = run_suite(suite, Options(wandb="off", in_process=True, only=[run.id], fail_fast=True))
    assert "--ckpt_path" in (run_dir / "fit.log").read_text()
    versions = sorted((run_dir / "fit").glob("version_*/metrics.csv"))
    assert len(versions) == 2
    resumed = pd.read_csv(versions[1])
    assert resumed["epoch"].dropna().min() == 1  # the resumed fit trained the second epoch only
    result = outcome["results"][0]
    scores = pd.concat([pd.read_csv(v) for v in versions])["val/score"].dropna()
    assert result["best_val"] == pytest.approx(scores.max())  # chosen over both parts of the interrupted fit
    tested = pd.read_csv(next((run_dir / "test").glob("version_*/metrics.csv")))["test/score"].dropna().iloc[-1]
    assert result["test"]["test/score"] == pytest.approx(tested)


def test_dry_run_prints_fit_and_test_commands(tmp_path, capsys):
    suite = load_suite(write_tiny_suite(tmp_path), tmp_path / "runs")
    run_suite(suite, Options(dry_run=True))
    lines = [line for line in capsys.readouterr().out.strip().splitlines() if not line.startswith("#")]
    assert len(lines) == 5 and lines[0] == f"cd {ROOT}"
    assert lines[1].startswith("python main.py fit --config configs/trainer/default.yaml")
    assert lines[2].startswith("python main.py test") and lines[2].endswith('/best-*.ckpt | head -1)"')
    assert not (tmp_path / "runs").exists()


def test_dry_run_output_runs_when_pasted(tiny_runs, tmp_path):
    """What --dry-run prints (here with the SLURM launcher's sbatch script, as comments) runs in bash as it is, and
    its fit and test give the runner's own result."""
    suite_file = tiny_runs.parent / "suite.yaml"
    args = [
        str(suite_file),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--wandb",
        "off",
        "--only",
        "causal",
        "--dry-run",
        "--launcher",
        "slurm",
        "--time",
        "1:00:00",
    ]
    printed = subprocess.run(
        [sys.executable, "-m", "experiments.suite", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "#   #SBATCH --time=60" in printed and "--only causal" in printed
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    pasted = subprocess.run(["bash", "-c", printed], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert pasted.returncode == 0, pasted.stderr[-3000:]
    test = pd.read_csv(next((tmp_path / "runs" / "causal" / "test").glob("version_*/metrics.csv")))
    expected = json.loads((tiny_runs / "causal" / "result.json").read_text())["test"]["test/score"]
    assert test["test/score"].dropna().iloc[-1] == pytest.approx(expected, abs=1e-7)


def test_seeds_expand_runs_and_select_by_seed(tmp_path, capsys):
    path = write_tiny_suite(tmp_path)
    raw = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**raw, "seeds": [0, 1, 2]}))
    suite = load_suite(path, tmp_path / "runs")
    assert [r.id for r in suite.runs][:2] == ["causal-s0", "bidirectional-s0"]  # seed-major: balanced when cut
    assert all(f"--seed_everything={r.seed}" in r.overrides for r in suite.runs) and len(suite.runs) == 6
    run_suite(suite, Options(dry_run=True, seeds=[1]))
    fits = [line for line in capsys.readouterr().out.splitlines() if line.startswith("python main.py fit")]
    assert len(fits) == 2 and all("--seed_everything=1" in line and "--data.init_args.seed=1" in line for line in fits)


def test_bad_suites_get_one_clear_error(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "runs": [{"id": "a", "configs": ["configs/nope.yaml"]}]}))
    with pytest.raises(SuiteError, match=r"not found.*configs/nope.yaml"):
        load_suite(path)
    path.write_text(
        yaml.safe_dump({"name": "x", "runs": [{"id": "a", "configs": ["configs/trainer/default.yaml"]}] * 2})
    )
    with pytest.raises(SuiteError, match="'a' appears twice"):
        load_suite(path)
    path.write_text(yaml.safe_dump({"name": "x", "runs": [{"id": "a", "config": ["c.yaml"]}]}))
    with pytest.raises(SuiteError, match=r"runs\[0\]: unknown keys \['config'\]"):
        load_suite(path)


def test_matrix_expands_with_ids_and_paper_keys(tmp_path):
    path = tmp_path / "suite.yaml"
    matrix = {
        "data": ["configs/debug/fdr.yaml"],
        "backbones": ["configs/backbone/llama2-7b.yaml", "configs/backbone/bert-base.yaml"],
        "methods": ["configs/method/ls_llama.yaml"],
        "overlays": [[], ["configs/ablation/pooling_mean.yaml"]],
    }
    path.write_text(yaml.safe_dump({"name": "m", "matrix": [matrix]}))
    runs = load_suite(path).runs
    assert [r.id for r in runs] == [
        "fdr-llama2-7b-ls_llama",
        "fdr-llama2-7b-ls_llama-pooling_mean",
        "fdr-bert-base-ls_llama",
        "fdr-bert-base-ls_llama-pooling_mean",
    ]
    assert runs[1].configs == [
        "configs/debug/fdr.yaml",
        "configs/backbone/llama2-7b.yaml",
        "configs/method/ls_llama.yaml",
        "configs/ablation/pooling_mean.yaml",
    ]
    configs = ["configs/data/sst5.yaml", "configs/backbone/llama2-7b.yaml", "configs/method/ls_unllama.yaml"]
    key = paper_key([*configs, "configs/ablation/pooling_max.yaml"])
    assert key == "sst5/llama2-7b/ls_unllama/pooling_max"
    assert key in load_paper_numbers()
    assert paper_key(configs[:2]) is None  # no method config


def test_plot_from_logs_writes_a_png(tiny_runs, tmp_path):
    out = plot_main([str(tiny_runs / "causal"), str(tiny_runs / "bidirectional"), "--out", str(tmp_path / "c.png")])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    curves = load_local(tiny_runs / "causal")
    assert {"train/loss", "val/loss", "val/score"} <= set(curves.columns)


def test_plot_joins_resumed_versions_later_wins(tmp_path):
    for version, rows in {0: [(0, 2.0), (1, 1.5), (2, 9.9)], 1: [(2, 1.0), (3, 0.8)]}.items():
        folder = tmp_path / "run" / "fit" / f"version_{version}"
        folder.mkdir(parents=True)
        pd.DataFrame(rows, columns=["step", "train/loss"]).to_csv(folder / "metrics.csv", index=False)
    curves = load_local(tmp_path / "run")
    assert curves["train/loss"].to_dict() == {0: 2.0, 1: 1.5, 2: 1.0, 3: 0.8}


def test_results_table_of_a_folder_without_runs_is_an_error(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="no finished runs"):
        results_frame(tmp_path)
    assert results_table_main([str(tmp_path)]) == 2
    assert str(tmp_path) in capsys.readouterr().err


def test_rerun_after_removing_results_only_tests_again(tiny_runs, tmp_path, monkeypatch):
    copy = tmp_path / "runs"
    shutil.copytree(tiny_runs, copy)
    best_before = json.loads((copy / "causal" / "fit_done.json").read_text())["best_ckpt"]
    (copy / "causal" / "result.json").unlink()
    stages = []
    real = suite_module.execute
    monkeypatch.setattr(suite_module, "execute", lambda args, *a, **k: stages.append(args[0]) or real(args, *a, **k))
    suite = load_suite(tiny_runs.parent / "suite.yaml", copy)
    run_suite(suite, Options(wandb="off", in_process=True, only=["causal"], fail_fast=True))
    assert stages == ["test"]
    assert best_before in json.loads((copy / "causal" / "result.json").read_text())["test_command"]


def test_thread_count_choices(monkeypatch):
    assert suite_module.thread_count("default") is None
    assert suite_module.thread_count("3") == 3
    monkeypatch.setattr(suite_module.os, "getloadavg", lambda: (99.0, 0.0, 0.0))
    assert suite_module.thread_count("auto") == 1  # busy machine: one thread
    monkeypatch.setattr(suite_module.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert suite_module.thread_count("auto") == (suite_module.os.cpu_count() or 1)


@pytest.mark.slow
def test_suite_in_subprocesses_from_the_command_line(tmp_path):
    suite_file = write_tiny_suite(tmp_path, max_epochs=1)
    runs = tmp_path / "runs"
    args = [str(suite_file), "--runs-dir", str(runs), "--wandb", "off", "--threads", "1", "--only", "causal"]
    assert suite_module.main(args) == 0
    assert "(torch threads: 1)" in (runs / "causal" / "fit.log").read_text()
    assert json.loads((runs / "causal" / "result.json").read_text())["fit_threads"] == 1
    assert pd.read_csv(runs / "results.csv")["run"].tolist() == ["causal"]  # (results.md has one row per table)
