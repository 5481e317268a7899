"""A trained model is one run (issue 19): `test` of a checkpoint joins the fit's W&B run at the fit's last step, the
resolved config is saved to the run, `predict` needs the checkpoint alone, a checkpoint given data of another task
is named as such, a damaged `--ckpt_path` is one line, and a smoke fit prints little."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from helpers import ROOT, quick
from wandb_offline import offline_runs

from app.run_record import checkpoint_defaults
from main import main

TINY = [*quick("early_cue", "ls_llama"), "--config=configs/debug/smoke.yaml", "--model.verify_mask=false"]
TINY += ["--data.init_args.num_train=32", "--data.init_args.num_val=16", "--trainer.enable_progress_bar=false"]


def logging_overlay(folder: Path) -> Path:
    """A config that sends the CSV and offline W&B logs (and so the checkpoints) into `folder`."""
    loggers = [
        {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(folder)}},
        {
            "class_path": "lightning.pytorch.loggers.WandbLogger",
            "init_args": {"save_dir": str(folder), "offline": True},
        },
    ]
    path = folder / "logging.yaml"
    path.write_text(yaml.safe_dump({"trainer": {"logger": loggers}}))
    return path


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> dict:
    """A tiny fit with CSV + offline W&B logs under a temporary folder, then `test` of its best checkpoint given
    the same configs (the README's two commands)."""
    folder = tmp_path_factory.mktemp("fit_then_test")
    logs = [f"--config={logging_overlay(folder)}"]
    fit = main(["fit", "--config=configs/trainer/default.yaml", *TINY, *logs])
    best = str(Path(fit.trainer.checkpoint_callback.best_model_path).resolve())
    test = main(["test", "--config=configs/trainer/default.yaml", *TINY, *logs, "--ckpt_path", best])
    return {"folder": folder, "best": best, "fit": fit, "test": test}


def test_testing_a_checkpoint_continues_the_fits_wandb_run_at_its_last_step(fitted):
    runs = offline_runs(fitted["folder"] / "wandb")
    assert len({run.id for run in runs}) == 1 and len(runs) == 2  # one W&B run: the fit's, then the test's part
    fit_run, test_run = runs
    fit_steps = [row["trainer/global_step"] for row in fit_run.history if "trainer/global_step" in row]
    test_rows = [row for row in test_run.history if "test/score" in row]
    step = test_rows[0]["trainer/global_step"]
    assert step == fitted["fit"].trainer.global_step >= max(fit_steps) > 0  # the test's point is after the fit's
    assert "best/val_score" in test_run.summary and "test/score" in test_run.summary


def test_the_resolved_config_is_saved_to_the_run(fitted):
    fit_run, test_run = offline_runs(fitted["folder"] / "wandb")
    saved = (fit_run.folder / "files" / "config.yaml").read_text()
    assert "class_path: datamodules.EarlyCueClassification" in saved and "LabelSupervisedModule" in saved
    assert (test_run.folder / "files" / "config_test.yaml").is_file()


def test_the_checkpoint_records_the_data_section_and_the_wandb_run(fitted):
    checkpoint = torch.load(fitted["best"], weights_only=True, map_location="cpu")
    record = checkpoint["callbacks"]["RunRecord"]["config"]
    assert record["data"]["class_path"] == "datamodules.EarlyCueClassification"
    assert record["data"]["init_args"]["num_train"] == 32 and record["seed_everything"] == 0
    assert checkpoint["callbacks"]["WandbRuns"]["run"]["id"] == offline_runs(fitted["folder"] / "wandb")[0].id


def test_predict_needs_the_checkpoint_alone(fitted, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing of the repository's configs is at hand
    texts = tmp_path / "texts.txt"
    texts.write_text("ba goal ko ti\nvote ne di fa\n")
    out = tmp_path / "alone.jsonl"
    main(
        [
            "predict",
            "--ckpt_path",
            fitted["best"],
            f"--data.init_args.predict_file={texts}",
            f"--prediction.output_file={out}",
            "--trainer.logger=false",
        ]
    )
    monkeypatch.chdir(ROOT)
    full = tmp_path / "full.jsonl"
    main(
        [
            "predict",
            "--config=configs/trainer/default.yaml",
            *TINY,
            "--ckpt_path",
            fitted["best"],
            f"--data.init_args.predict_file={texts}",
            f"--prediction.output_file={full}",
        ]
    )
    alone, stacked = ([json.loads(line) for line in path.read_text().splitlines()] for path in (out, full))
    assert len(alone) == 2 and alone == stacked


def test_a_checkpoint_given_data_of_another_task_says_so(fitted):
    right_context = [*quick("right_context", "ls_llama"), "--config=configs/debug/smoke.yaml"]
    with pytest.raises(
        ValueError,
        match=r"trained for sequence classification with 4 labels .*now is token "
        r"classification with \d+ labels",
    ):
        main(["test", *right_context, "--model.verify_mask=false", "--ckpt_path", fitted["best"]])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"not a checkpoint at all"), "not a checkpoint written by fit"),
        (lambda p: torch.save({"weights": torch.zeros(2)}, p), "not a Lightning checkpoint (no state_dict)"),
        (lambda p: p.mkdir(), "is a folder; expected a .ckpt file"),
        (lambda p: None, "file not found"),
    ],
)
def test_a_damaged_or_missing_checkpoint_is_one_line(make, message, tmp_path):
    path = tmp_path / "model.ckpt"
    make(path)
    out = subprocess.run(
        [sys.executable, "main.py", "test", *TINY, "--ckpt_path", str(path)], cwd=ROOT, capture_output=True, text=True
    )
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert out.returncode == 2 and len(errors) == 1 and message in errors[0] and str(path) in errors[0], out.stderr


def loud_wandb() -> dict[str, str]:
    """The environment without the tests' WANDB_SILENT: what a user's shell has."""
    return {k: v for k, v in os.environ.items() if k != "WANDB_SILENT"}


def test_a_recipe_fit_as_the_readme_runs_it_is_quiet_too(tmp_path):
    # the recipe's own loggers (no overlay): jsonargparse hands WandbLogger every wandb.init argument, settings=None
    for name in ("configs", "main.py"):
        (tmp_path / name).symlink_to(ROOT / name)
    args = ["fit", "--config=configs/recipe/cpu_small.yaml", *quick("early_cue", "ls_llama")[:4]]
    args += ["--config=configs/debug/tiny_llama.yaml", "--config=configs/debug/smoke.yaml"]
    env = {**loud_wandb(), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "main.py", *args], cwd=tmp_path, env=env, capture_output=True, text=True)
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert out.returncode == 0 and len(lines) <= 25, "\n".join(lines)
    banner_or_summary = ("Tracking run with wandb", "Run history", "Run summary", "View this run")
    assert not any(text in line for line in lines for text in banner_or_summary), "\n".join(lines)


def test_a_smoke_fit_prints_at_most_25_lines(tmp_path):
    args = ["fit", "--config=configs/trainer/default.yaml", *quick("early_cue", "ls_llama")]
    args += ["--config=configs/debug/smoke.yaml", f"--config={logging_overlay(tmp_path)}"]
    out = subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=loud_wandb(), capture_output=True, text=True)
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert out.returncode == 0 and len(lines) <= 25, "\n".join(lines)
    assert not any("Run history" in line or "FLOPs" in line for line in lines)  # no W&B summary, no model summary
    assert sum("W&B run" in line and "finished" in line for line in lines) == 1  # one line instead


def test_wandb_folder_is_where_logs_go(fitted):
    assert Path(offline_runs(fitted["folder"] / "wandb")[0].folder).is_relative_to(fitted["folder"])


def test_a_checkpoint_does_not_hand_its_fits_sampling_to_a_later_test(fitted):
    record = {
        "seed_everything": 0,
        "data": {"class_path": "X", "init_args": {"tokenizer": "t", "max_eval_examples": 8}},
    }
    record["data"]["init_args"]["max_train_examples"] = 32
    assert checkpoint_defaults(record)["data"] == {"class_path": "X", "init_args": {"tokenizer": "t"}}
    # the fit validated on 16 examples (configs/debug/smoke.yaml); its checkpoint alone tests on the whole split
    args = ["test", "--ckpt_path", fitted["best"], "--trainer.limit_test_batches=1", "--trainer.logger=false"]
    test = main([*args, "--trainer.enable_progress_bar=false", "--model.verify_mask=false"])
    assert test.datamodule.max_eval_examples is None and test.datamodule.num_train == 32  # the rest is the fit's
