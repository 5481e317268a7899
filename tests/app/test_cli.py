"""The CLI driven from Python: shipped quickstart configs, stacking, links, defaults, run names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, TINY_LLAMA, quick
from transformers import AutoConfig, AutoModel, AutoTokenizer

from datamodules.synthetic import build_tokenizer
from experiments.quickstart import logger_override
from main import main

TASKS = sorted(p.stem for p in (ROOT / "configs" / "quickstart").glob("*.yaml"))
FAST = ["--trainer.fast_dev_run=1", "--trainer.accelerator=cpu"]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("method", ["ls_llama", "ls_unllama"])
def test_quickstart_configs_run_one_batch(task, method, tmp_path):
    cli = main(["fit", *quick(task, method), *FAST, f"--trainer.default_root_dir={tmp_path}"])
    assert cli.trainer.state.finished
    assert cli.model.hparams.num_labels == cli.datamodule.num_labels  # linked from the data module
    assert cli.model.hparams.vocab_size == len(cli.datamodule.tokenizer)


def test_stacked_configs_and_debug_overlay(tmp_path):
    cli = main(
        [
            "fit",
            "--config",
            "configs/trainer/default.yaml",
            *quick("right_context", "ls_unllama"),
            "--config",
            "configs/debug/fdr.yaml",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
    assert cli.trainer.fast_dev_run == 1 and cli.trainer.state.finished


def test_run_name_group_and_tags_identify_the_run(tmp_path):
    cli = main(
        [
            "fit",
            *quick("right_context", "ls_llama"),
            "--trainer.max_steps=1",
            "--trainer.limit_val_batches=1",
            "--trainer.log_every_n_steps=1",
            *logger_override(str(tmp_path)),
            "--data.init_args.num_train=16",
        ]
    )
    csv_logger, wandb_logger = cli.trainer.loggers
    assert csv_logger.name == "right_context_ner-llama-random-2L64H-causal-tokens"
    assert csv_logger.log_dir.startswith(str(tmp_path))
    run = wandb_logger.experiment
    assert run.name == csv_logger.name and run.group == "right_context_ner"
    assert {"mask:causal", "dataset:right_context_ner", "backbone:llama-random-2L64H"} <= set(run.tags)
    metrics = (Path(csv_logger.log_dir) / "metrics.csv").read_text()
    assert "train/loss" in metrics and "val/score" in metrics
    assert cli.trainer.precision == "32-true"  # picked automatically on a CPU


def test_tokenizer_defaults_to_the_backbone_folder(tmp_path):
    """A local backbone folder (save_pretrained) also provides the tokenizer when data.tokenizer is unset."""
    tokenizer = AutoTokenizer.from_pretrained(build_tokenizer())
    config = AutoConfig.for_model(**dict(TINY_LLAMA, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id))
    AutoModel.from_config(config).save_pretrained(tmp_path / "backbone")
    tokenizer.save_pretrained(tmp_path / "backbone")
    cli = main(
        [
            "fit",
            *quick("right_context", "ls_llama"),
            *FAST,
            "--model.backbone_config=null",
            f"--trainer.default_root_dir={tmp_path}",
            f"--model.backbone={tmp_path / 'backbone'}",
            "--data.init_args.tokenizer=null",
        ]
    )
    assert cli.datamodule.tokenizer_source == str(tmp_path / "backbone")
    assert cli.model.pad_token_id == tokenizer.pad_token_id and cli.model.hparams.vocab_size == len(tokenizer)


def test_missing_backbone_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        main(
            [
                "fit",
                *quick("right_context", "ls_llama"),
                *FAST,
                "--model.backbone=./does-not-exist",
                f"--trainer.default_root_dir={tmp_path}",
            ]
        )


def test_print_config_and_help_from_the_command_line():
    run = [sys.executable, "main.py", "fit", *quick("right_context", "ls_unllama"), "--print_config"]
    out = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "lightning_modules.BidirectionalMask" in out.stdout and "RightContextNER" in out.stdout
    helped = subprocess.run(
        [sys.executable, "main.py", "fit", "--model.help", "LabelSupervisedModule"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert helped.returncode == 0 and "attention-mask strategy" in helped.stdout  # docstrings become --help
    data_help = [sys.executable, "main.py", "fit", "--data.help", "RightContextNER"]
    helped = subprocess.run(data_help, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "--data.max_length" in helped.stdout  # base arguments through **kwargs
