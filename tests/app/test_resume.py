"""Exact resume: stop a training run (SIGTERM, SIGKILL), resume it from its checkpoint, get the same run.

The runs train the synthetic task with a tiny LoRA LLaMA and dropout in LoRA and the head, on one CPU thread (so
float sums are reproducible). The default test sends a real SIGTERM to its own process mid-epoch through Lightning's
handler; the slow ones kill `python main.py fit` subprocesses and resume with `--ckpt_path`. Every step's loss and
the final validation metrics must equal the uninterrupted run's to the last printed digit.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from helpers import ROOT, TINY_LLAMA, module_for
from lightning.fabric.utilities.data import _set_sampler_epoch
from lightning.pytorch import Callback, Trainer, seed_everything

from app.checkpointing import (
    AtomicCheckpointIO,
    ResumableTraining,
    capture_rng_states,
    restore_rng_states,
)
from datamodules import EarlyCueClassification

STEPS_PER_EPOCH = 20  # 160 examples, batch 8
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "PYTHONHASHSEED": "0"}


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class StepLosses(Callback):
    """Records every step's loss; sends SIGTERM to this process after step `sigterm_at`."""

    def __init__(self, sigterm_at: int | None = None) -> None:
        self.losses: dict[int, float] = {}
        self.sigterm_at = sigterm_at

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses[trainer.global_step] = outputs["loss"].item()
        if trainer.global_step == self.sigterm_at:
            os.kill(os.getpid(), signal.SIGTERM)  # handled by Lightning: the batch finishes, then it stops


def fit_in_process(folder: Path, sigterm_at: int | None = None, ckpt_path: Path | None = None) -> StepLosses:
    seed_everything(0)
    data = EarlyCueClassification(num_train=160, num_val=9, batch_size=8)
    model = module_for(data, head_dropout=0.1, optimizer=partial(torch.optim.AdamW, lr=3e-3), verify_mask=False)
    record = StepLosses(sigterm_at)
    trainer = Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=folder,
        callbacks=[ResumableTraining(dirpath=str(folder)), record],
    )
    trainer.fit(model, data, ckpt_path=ckpt_path)
    return record


@pytest.mark.parametrize("stop_after", [13, 20], ids=["mid-epoch", "end-of-epoch"])
def test_sigterm_then_resume_gives_the_same_losses(tmp_path, one_thread, stop_after):
    handler = signal.getsignal(signal.SIGTERM)
    reference = fit_in_process(tmp_path / "reference").losses
    assert len(reference) == 2 * STEPS_PER_EPOCH and len(set(reference.values())) > 30
    with pytest.raises(SystemExit):  # Lightning's SIGTERMException, after ResumableTraining saved
        fit_in_process(tmp_path / "killed", sigterm_at=stop_after)
    checkpoint = tmp_path / "killed" / "last-interrupted.ckpt"
    assert checkpoint_step(checkpoint) == (stop_after, stop_after % STEPS_PER_EPOCH or STEPS_PER_EPOCH)
    resumed = fit_in_process(tmp_path / "resumed", ckpt_path=checkpoint).losses
    assert min(resumed) == stop_after + 1
    assert resumed == {step: loss for step, loss in reference.items() if step > stop_after}  # exact floats
    assert signal.getsignal(signal.SIGTERM) is handler  # Lightning put the previous handler back


def write_config(folder: Path) -> Path:
    """A 2-epoch run that checkpoints every 5 steps into `folder/ckpt` and logs every step to `folder/logs`."""
    config = {
        "seed_everything": 0,
        "model": {
            "backbone_config": TINY_LLAMA,
            "attn_implementation": "sdpa",
            "head_dropout": 0.1,
            "optimizer": {"class_path": "torch.optim.AdamW", "init_args": {"lr": 0.003}},
        },
        "data": {
            "class_path": "datamodules.EarlyCueClassification",
            "init_args": {"num_train": 160, "num_val": 25, "batch_size": 8},
        },
        "trainer": {
            "max_epochs": 2,
            "accelerator": "cpu",
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": {
                "class_path": "lightning.pytorch.loggers.CSVLogger",
                "init_args": {"save_dir": str(folder / "logs"), "name": "run", "version": 0},
            },
            "callbacks": [
                {
                    "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                    "init_args": {
                        "dirpath": str(folder / "ckpt"),
                        "every_n_train_steps": 5,
                        "save_top_k": -1,
                        "filename": "{step}",
                    },
                }
            ],
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_fit(folder: Path, *extra: str) -> subprocess.Popen:
    config = write_config(folder)
    log = open(folder / "stdout.txt", "w")
    command = [sys.executable, "main.py", "fit", "--config", str(config), *extra]
    return subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen, folder: Path, timeout: float = 400) -> int:
    code = process.wait(timeout=timeout)
    assert code == 0, f"fit failed ({code}):\n{(folder / 'stdout.txt').read_text()[-3000:]}"
    return code


def metrics(folder: Path) -> tuple[dict[int, str], list[dict[str, str]]]:
    """`{step: train/loss}` exactly as printed in metrics.csv, and the validation rows."""
    rows = list(csv.DictReader(open(folder / "logs" / "run" / "version_0" / "metrics.csv")))
    losses = {int(r["step"]): r["train/loss"] for r in rows if r.get("train/loss")}
    validation = [{k: v for k, v in r.items() if k.startswith(("val/", "step", "epoch")) and v} for r in rows]
    return losses, [r for r in validation if "val/score" in r]


def kill_after_checkpoint(process: subprocess.Popen, checkpoint: Path, sig: int) -> None:
    deadline = time.monotonic() + 400
    while not checkpoint.exists():
        assert process.poll() is None, "training ended before the checkpoint appeared"
        assert time.monotonic() < deadline, f"{checkpoint} did not appear"
        time.sleep(0.05)
    process.send_signal(sig)


def checkpoint_step(path: Path) -> tuple[int, int]:
    """`(global step, batches done in the current epoch)` of a checkpoint."""
    checkpoint = torch.load(path, weights_only=True, map_location="cpu")
    progress = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]["processed"]
    return checkpoint["global_step"], progress


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference run, started at once so that it runs while a test kills its twin."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    process = start_fit(folder)
    yield lambda: (finish(process, folder), metrics(folder))[1]
    if process.poll() is None:
        process.kill()


def assert_same_run(reference, before: dict[int, str], resumed_folder: Path, resumed_from: int) -> None:
    """The losses logged before the kill plus those of the resumed run are the reference run's, digit for digit."""
    ref_losses, ref_val = reference
    losses, validation = metrics(resumed_folder)
    assert min(losses) == resumed_from, "the resumed run must continue at the checkpoint's step"
    assert {**before, **losses} == ref_losses  # every step's loss string, no gap, no repeat
    assert len(ref_losses) == 2 * STEPS_PER_EPOCH
    assert validation[-1] == ref_val[-1]  # final val/loss, val/acc, val/f1, val/score, same digits


@pytest.mark.slow
def test_sigterm_mid_epoch_then_resume_reproduces_the_run(uninterrupted, tmp_path):
    killed, resumed = tmp_path / "killed", tmp_path / "resumed"
    process = start_fit(killed)
    kill_after_checkpoint(process, killed / "ckpt" / "step=10.ckpt", signal.SIGTERM)
    finish(process, killed)  # Lightning finishes the batch, we save, it exits cleanly (status 0)
    interrupted = killed / "ckpt" / "last-interrupted.ckpt"
    assert interrupted.exists(), (killed / "stdout.txt").read_text()[-2000:]
    step, in_epoch = checkpoint_step(interrupted)
    assert in_epoch == step % STEPS_PER_EPOCH
    assert 10 <= step < 2 * STEPS_PER_EPOCH
    losses_before, _ = metrics(killed)
    assert max(losses_before) == step - 1  # the killed run stopped right after its checkpoint
    finish(start_fit(resumed, "--ckpt_path", str(interrupted)), resumed)
    assert_same_run(uninterrupted(), losses_before, resumed, step)


@pytest.mark.slow
def test_sigkill_then_resume_from_periodic_checkpoint_reproduces_the_run(uninterrupted, tmp_path):
    killed, resumed = tmp_path / "killed", tmp_path / "resumed"
    process = start_fit(killed)
    kill_after_checkpoint(process, killed / "ckpt" / "step=25.ckpt", signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL
    # every *.ckpt there is complete (a kill mid-save can only leave a hidden temporary file): take the newest
    newest = max((killed / "ckpt").glob("step=*.ckpt"), key=lambda p: int(p.stem.split("=")[1]))
    step, _ = checkpoint_step(newest)
    finish(start_fit(resumed, "--ckpt_path", str(newest)), resumed)
    reference = uninterrupted()
    assert_same_run(reference, {s: loss for s, loss in reference[0].items() if s < step}, resumed, step)


# ------------------------------------------------------------------------------------------------ the parts
def test_atomic_checkpoint_write_leaves_old_or_new_file(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1, "w": torch.ones(3)}, path)

    def torn_save(obj, file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a zip")  # a kill in the middle of writing
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["step"] == 1  # the old file, complete
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temporary left behind
    io.save_checkpoint({"step": 3, "w": torch.zeros(3)}, path)
    assert torch.load(path, weights_only=True)["step"] == 3


def test_rng_states_survive_a_weights_only_checkpoint(tmp_path):
    torch.manual_seed(1), random.seed(2), np.random.seed(3)
    torch.save({"rng": capture_rng_states()}, tmp_path / "rng.pt")
    expected = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(9), random.seed(9), np.random.seed(9)
    restore_rng_states(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    got = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(got[0], expected[0]) and got[1:] == expected[1:]


def test_datamodule_state_continues_the_epoch_after_the_trained_batches():
    data = EarlyCueClassification(num_train=80, num_val=8, batch_size=8, seed=5)
    data.setup("fit")
    loader = data.train_dataloader()
    _set_sampler_epoch(loader, 1)  # what Lightning calls each epoch (on `batch_sampler.sampler`)
    epoch1 = [batch["example_ids"].tolist() for batch in loader]
    assert data._train_sampler.epoch == 1 and len(loader) == len(epoch1) == 10

    # the part of a Trainer that `state_dict` reads: 4 batches of epoch 1 trained
    progress = SimpleNamespace(current=SimpleNamespace(processed=4))
    data.trainer = SimpleNamespace(fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(batch_progress=progress)))
    state = data.state_dict()
    fresh = EarlyCueClassification(num_train=80, num_val=8, batch_size=8, seed=5)
    fresh.setup("fit")
    fresh.load_state_dict(state)
    resumed = fresh.train_dataloader()
    _set_sampler_epoch(resumed, 1)
    assert len(resumed) == 10  # Lightning counts the 4 restored batches towards the epoch
    assert [batch["example_ids"].tolist() for batch in resumed] == epoch1[4:]
    _set_sampler_epoch(resumed, 2)
    assert len([batch for batch in resumed]) == 10  # the next epoch is whole again
