"""A tiny suite (synthetic right-context NER, 2-layer random LLaMA, a few steps) for the suite/notebook tests."""

from __future__ import annotations

from pathlib import Path

import yaml

from experiments.suite import Options, load_suite, run_suite

TINY_DATA = {
    "seed_everything": 0,
    "data": {
        "class_path": "datamodules.RightContextNER",
        "init_args": {"num_train": 32, "num_val": 16, "num_test": 24, "batch_size": 8},
    },
}
TINY_OVERRIDES = [
    "--config=configs/debug/tiny_llama.yaml",
    "--trainer.accelerator=cpu",
    "--model.verify_mask=false",  # the probe has its own tests; skipped here to keep the suite tests fast
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]


def write_tiny_suite(folder: Path, max_epochs: int = 2) -> Path:
    """Write `folder/suite.yaml` (causal vs bidirectional on the tiny task) and its data config; return the suite."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "tiny_data.yaml"
    data.write_text(yaml.safe_dump(TINY_DATA))
    suite = {
        "name": "tiny",
        "base_configs": ["configs/trainer/default.yaml"],
        "overrides": [f"--config={data}", *TINY_OVERRIDES],
        "fit_overrides": [f"--trainer.max_epochs={max_epochs}", "--trainer.log_every_n_steps=1"],
        "runs": [
            {"id": "causal", "configs": ["configs/method/ls_llama.yaml"], "paper": "conll2003/llama2-7b/ls_llama"},
            {"id": "bidirectional", "configs": ["configs/method/ls_unllama.yaml"], "label": "unmasked"},
        ],
    }
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def run_tiny_suite(folder: Path) -> Path:
    """Run the tiny suite in this process (no W&B) unless it already ran there; return its runs folder."""
    runs_dir = folder / "runs"
    if not (runs_dir / "results.csv").is_file():
        suite = load_suite(write_tiny_suite(folder), runs_dir)
        outcome = run_suite(suite, Options(wandb="off", in_process=True, fail_fast=True))
        assert not outcome["failed"], outcome["failed"]
    return runs_dir


def run_seeded_suite(folder: Path) -> Path:
    """LS-LLaMA vs LS-unLLaMA (tiny LLaMA, synthetic NER), 2 seeds each, run by the suite runner in this process
    unless it already ran in `folder`; returns the runs folder."""
    runs_dir = folder / "runs"
    if (runs_dir / "results.csv").is_file():
        return runs_dir
    folder.mkdir(parents=True, exist_ok=True)
    task = {
        "data": {
            "class_path": "datamodules.RightContextNER",
            "init_args": {"num_train": 64, "num_val": 16, "num_test": 40, "batch_size": 16},
        }
    }
    (folder / "task.yaml").write_text(yaml.safe_dump(task))
    configs = ["configs/backbone/tiny-llama.yaml"]
    runs = [
        {"id": f"right_context-tiny-{m}", "configs": [*configs, f"configs/method/{m}.yaml"], "method": m}
        for m in ("ls_llama", "ls_unllama")
    ]
    overrides = [
        f"--config={folder / 'task.yaml'}",
        "--trainer.accelerator=cpu",
        "--model.verify_mask=false",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
    ]
    fit = ["--trainer.max_epochs=1", "--trainer.log_every_n_steps=1"]
    suite = {
        "name": "seeded",
        "base_configs": ["configs/trainer/default.yaml"],
        "seeds": [0, 1],
        "runs": runs,
        "overrides": overrides,
        "fit_overrides": fit,
    }
    (folder / "suite.yaml").write_text(yaml.safe_dump(suite))
    outcome = run_suite(load_suite(folder / "suite.yaml", runs_dir), Options(wandb="off", in_process=True))
    assert not outcome["failed"], outcome["failed"]
    return runs_dir
