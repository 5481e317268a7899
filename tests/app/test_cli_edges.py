"""The rough edges a new user hits with the CLI: what --print_config shows, one-line errors, --help and the
allowlist agreeing, callbacks that a later config drops, and the evaluation loss of token tasks."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import torch
import torch.nn.functional as F
import yaml
from helpers import ROOT, module_for, quick
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from datamodules import RightContextNER
from main import main

FAST = ["--trainer.fast_dev_run=1", "--trainer.accelerator=cpu"]


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "main.py", *args]
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
    )


def test_print_config_shows_the_run_name_tags_precision_and_default_components():
    out = cli("fit", "--config=configs/trainer/default.yaml", *quick("right_context", "ls_unllama"), "--print_config")
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load(out.stdout)
    assert config["trainer"]["precision"] == "32-true"  # picked for this CPU machine, not `null`
    csv, wandb = config["trainer"]["logger"][:2]
    assert csv["init_args"]["name"] == "right_context_ner-llama-random-2L64H-bidirectional-tokens"
    assert {"method:ls_unllama", "mask:bidirectional", "dataset:right_context_ner"} <= set(wandb["init_args"]["tags"])
    assert wandb["init_args"]["group"] == "right_context_ner"
    # no method overlay: the backbone's default mask and pooling are written in, as the model will build them
    stack = ["--config=configs/quickstart/early_cue.yaml", "--config=configs/backbone/tiny-llama.yaml"]
    config = yaml.safe_load(cli("fit", *stack, "--print_config").stdout)
    components = config["model"]["init_args"]
    assert components["mask"]["class_path"] == "lightning_modules.CausalMask"
    assert components["pooling"]["class_path"] == "lightning_modules.LastTokenPooling"


def test_errors_are_one_line_naming_the_cause_unless_debugging(tmp_path):
    stack = ["configs/data/sst2.yaml", "configs/backbone/smollm2-135m.yaml", "configs/method/ls_llama.yaml"]
    args = ["fit", *(f"--config={c}" for c in stack), "--config=configs/debug/tiny_llama.yaml", *FAST]
    out = cli(*args, f"--data.init_args.data_dir={tmp_path / 'nowhere'}")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "nowhere" in last and "LS_LLAMA_DEBUG=1" in last
    debugged = cli(*args, f"--data.init_args.data_dir={tmp_path / 'nowhere'}", env={"LS_LLAMA_DEBUG": "1"})
    assert debugged.returncode != 0 and "Traceback" in debugged.stderr
    refused = cli(*args, "--model.init_args.optimizer.class_path=bitsandbytes.optim.AdamW8bit")
    last = refused.stderr.strip().splitlines()[-1]
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "'bitsandbytes.optim.AdamW8bit'" in last and "LS_LLAMA_ALLOWED_CLASS_PATHS=bitsandbytes.optim" in last


def test_help_lists_only_classes_a_config_may_name():
    out = cli("fit", "--model.help", "LabelSupervisedModule")
    assert out.returncode == 0 and "torch.optim.AdamW" in out.stdout
    assert "accelerate." not in out.stdout  # accelerate's optimizers are imported (transformers) but not allowed
    allowed = cli("fit", "--model.help", "LabelSupervisedModule", env={"LS_LLAMA_ALLOWED_CLASS_PATHS": "accelerate"})
    assert "accelerate.optimizer.AcceleratedOptimizer" in allowed.stdout.replace("\n", "").replace(" ", "")


def test_early_stopping_overlay_keeps_the_checkpoints(tmp_path):
    stack = ["--config=configs/trainer/default.yaml", "--config=configs/trainer/early_stopping.yaml"]
    run = main(["fit", *stack, *quick("right_context", "ls_llama"), *FAST, f"--trainer.default_root_dir={tmp_path}"])
    kinds = [type(c) for c in run.trainer.callbacks]
    assert kinds.count(ModelCheckpoint) == 2 and EarlyStopping in kinds


def test_a_later_config_that_drops_the_checkpoint_callback_is_named_in_a_warning(tmp_path, caplog):
    overlay = tmp_path / "stop.yaml"
    stop = {"class_path": "EarlyStopping", "init_args": {"monitor": "val/score"}}
    overlay.write_text(yaml.safe_dump({"trainer": {"callbacks": [stop]}}))
    args = ["fit", "--config=configs/trainer/default.yaml", *quick("right_context", "ls_llama"), f"--config={overlay}"]
    args += ["--trainer.max_steps=1", "--trainer.limit_val_batches=1", "--data.init_args.num_train=16"]
    with caplog.at_level(logging.WARNING, logger="app.cli_hooks"):
        main([*args, "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}"])
    assert "lost the ModelCheckpoint of configs/trainer/default.yaml" in caplog.text


def test_the_evaluation_loss_of_a_token_task_is_the_mean_over_labelled_tokens():
    torch.manual_seed(0)
    data = RightContextNER(num_train=8, num_val=19, batch_size=4, eval_batch_size=4)  # batches of unequal length
    module = module_for(data, verify_mask=False, head_dropout=0.0).eval()
    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    (logged,) = trainer.validate(module, data, verbose=False)
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in data.val_dataloader():
            logits = module(batch["input_ids"], batch["attention_mask"])  # (B, T, C)
            labels = batch["labels"]
            total += F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="sum").item()
            count += int((labels != -100).sum())
    sentence_weighted = []  # what weighting each batch by its sentences would have logged
    assert abs(logged["val/loss"] - total / count) < 1e-5
    for batch in data.val_dataloader():
        with torch.no_grad():
            loss, _ = module._step(batch)
        sentence_weighted.append((loss.item(), len(batch["labels"])))
    wrong = sum(v * n for v, n in sentence_weighted) / sum(n for _, n in sentence_weighted)
    assert abs(wrong - total / count) > 1e-4  # the case distinguishes the two weightings


def test_a_run_prints_no_library_noise(tmp_path):
    stack = ["--config=configs/trainer/default.yaml", *quick("right_context", "ls_unllama")]
    out = cli(
        "fit",
        *stack,
        "--config=configs/debug/smoke.yaml",
        f"--trainer.default_root_dir={tmp_path}",
        env={"WANDB_MODE": "offline"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    noise = ["💡 Tip", "anonymous setting has no effect", "git root", "LeafSpec", "UndefinedMetricWarning"]
    assert [n for n in noise if n in out.stderr + out.stdout] == []
    assert "INFO: attention probe passed" in out.stderr  # our own messages are shown
