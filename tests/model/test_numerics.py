"""Numerics: a non-finite loss stops training naming the step and batch; precision is chosen by device and logged."""

from __future__ import annotations

import logging
from functools import partial

import pytest
import torch
from helpers import TINY_LLAMA, module_for, quick
from jsonargparse import Namespace
from lightning.pytorch import Callback, Trainer

from app.run_defaults import fill_run_defaults
from datamodules import EarlyCueClassification
from main import main

BASE = ["fit", *quick("early_cue", "ls_llama"), "--config=configs/debug/fdr.yaml"]
BASE += ["--data.init_args.num_train=32", "--data.init_args.num_val=8"]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one thread is several times faster than two on a busy machine, and reproducible."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class CorruptHead(Callback):
    """Sets one head weight to inf before training batch `at` (as a diverging run or a bad kernel would)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.at:
            with torch.no_grad():
                pl_module.head.score.weight[0, 0] = float("inf")


def test_non_finite_loss_stops_training_naming_step_batch_and_examples():
    data = EarlyCueClassification(num_train=48, num_val=8, batch_size=8)
    module = module_for(
        data,
        optimizer=partial(torch.optim.AdamW, lr=1e-3),
        verify_mask=False,
    )
    trainer = Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.callbacks.append(CorruptHead(at=2))
    message = r"training loss is nan at global step 2 \(epoch 0, batch 2, examples \["
    with pytest.raises(FloatingPointError, match=message):
        trainer.fit(module, data)
    assert trainer.global_step == 2  # no optimizer step was taken on the bad loss


def test_precision_defaults_to_fp32_on_cpu_and_is_logged(caplog):
    with caplog.at_level(logging.INFO, logger="app.run_defaults"):
        cli = main(BASE)
    assert cli.trainer.precision == "32-true"
    assert "trainer.precision not set: using 32-true (no bf16-capable GPU)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="app.run_defaults"):
        cli = main([*BASE, "--trainer.precision=bf16-mixed"])  # a setting always wins
    assert cli.trainer.precision == "bf16-mixed" and "trainer.precision not set" not in caplog.text


def test_precision_defaults_to_bf16_mixed_on_a_bf16_gpu(monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    model = Namespace(backbone=None, backbone_config=TINY_LLAMA, mask=None, pooling=None, finetuning="lora")
    data = Namespace(class_path="datamodules.EarlyCueClassification", init_args=Namespace(tokenizer=None))
    config = Namespace(model=model, data=data, trainer=Namespace(precision=None, logger=None))
    with caplog.at_level(logging.INFO, logger="app.run_defaults"):
        fill_run_defaults(config, "fit")
    assert config.trainer.precision == "bf16-mixed"
    assert "trainer.precision not set: using bf16-mixed (GPU with bf16)" in caplog.text
