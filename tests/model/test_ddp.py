"""Lightning DDP, 2 CPU processes (gloo): the same validation metrics as one process, computed over the whole set,
also when the 2 processes are 2 "nodes" (`trainer.num_nodes=2`, configs/strategy/ddp_multinode.yaml).

The validation set has an odd size and the eval sampler gives the processes unequal shares, so metrics computed per
process (or examples repeated to even out the shares) would show. The runs are `python main.py` subprocesses.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from helpers import ROOT, TINY_LLAMA, module_for, quick
from lightning.pytorch import Trainer, seed_everything

from datamodules import RightContextNER
from lightning_modules import BidirectionalMask
from main import main

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
NUM_VAL = 45  # batches of 8: 6 (5 full + 1 of 5); rank 0 gets 3 batches (24 sentences), rank 1 gets 3 (21)
DATA_ARGS = [
    *quick("right_context", "ls_unllama"),
    "--config=configs/debug/tiny_llama.yaml",
    "--data.init_args.tokenizer=null",
]
DATA_ARGS += [f"--data.init_args.num_val={NUM_VAL}", "--data.init_args.eval_batch_size=8"]
METRICS = ("val/f1", "val/precision", "val/recall", "val/word_acc", "val/score")


@pytest.fixture(scope="module")
def ner_checkpoint(tmp_path_factory) -> Path:
    """A briefly trained LS-unLLaMA on the synthetic NER task (F1 well above 0, so equality means something)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    seed_everything(0)
    data = RightContextNER(num_train=800, num_val=NUM_VAL, batch_size=16)
    model = module_for(
        data,
        backbone_config={**TINY_LLAMA, "hidden_size": 64, "intermediate_size": 128},
        mask=BidirectionalMask(),
        finetuning="full",
        optimizer=partial(torch.optim.AdamW, lr=5e-3),
    )  # the task (token) comes from the data module
    trainer = Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(model, data)
    torch.set_num_threads(threads)
    path = tmp_path_factory.mktemp("ddp") / "ner.ckpt"
    trainer.save_checkpoint(path)
    return path


def read_metrics(folder: Path) -> dict[str, float]:
    (path,) = folder.rglob("metrics.csv")
    (row,) = [r for r in csv.DictReader(open(path)) if r.get("val/f1")]
    return {k: float(v) for k, v in row.items() if k.startswith("val/") and v}


@pytest.mark.slow
def test_two_process_validation_equals_one_process(ner_checkpoint, tmp_path):
    logger = "--trainer.logger=lightning.pytorch.loggers.CSVLogger"
    common = [*DATA_ARGS, f"--ckpt_path={ner_checkpoint}", logger, "--trainer.enable_progress_bar=false"]
    one = main(["validate", *common, f"--trainer.logger.save_dir={tmp_path / 'one'}", "--trainer.devices=1"])
    single = {k: v.item() for k, v in one.trainer.callback_metrics.items() if k.startswith("val/")}
    assert single["val/f1"] > 0.1, single
    ddp = ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu"]
    command = [sys.executable, "main.py", "validate", *common, f"--trainer.logger.save_dir={tmp_path / 'two'}", *ddp]
    done = subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in done.stdout + done.stderr
    two = read_metrics(tmp_path / "two")
    for name in METRICS:  # seqeval over all 45 sentences, not a mean of per-process scores
        assert two[name] == pytest.approx(single[name], abs=1e-7), name
    assert two["val/loss"] == pytest.approx(single["val/loss"], abs=1e-5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_of_one_process_each_equal_one_process(ner_checkpoint, tmp_path):
    """`trainer.num_nodes=2` with one process per node, each started by hand with the variables torchrun or SLURM
    set on a real node (NODE_RANK, LOCAL_RANK, MASTER_ADDR/PORT): the metrics of one process, over the whole set."""
    logger = "--trainer.logger=lightning.pytorch.loggers.CSVLogger"
    common = [*DATA_ARGS, f"--ckpt_path={ner_checkpoint}", logger, "--trainer.enable_progress_bar=false"]
    one = main(["validate", *common, f"--trainer.logger.save_dir={tmp_path / 'one'}", "--trainer.devices=1"])
    single = {k: v.item() for k, v in one.trainer.callback_metrics.items() if k.startswith("val/")}
    nodes = ["--trainer.strategy=ddp", "--trainer.num_nodes=2", "--trainer.devices=1", "--trainer.accelerator=cpu"]
    command = [sys.executable, "main.py", "validate", *common, f"--trainer.logger.save_dir={tmp_path / 'two'}", *nodes]
    rendezvous = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "LOCAL_RANK": "0", "WORLD_SIZE": "2"}
    runs = [
        subprocess.Popen(
            command,
            cwd=ROOT,
            env={**ENV, **rendezvous, "NODE_RANK": str(node)},
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for node in (0, 1)
    ]
    outputs = [run.communicate(timeout=500)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in outputs[1]  # node 1's process is global rank 1 of 2
    two = read_metrics(tmp_path / "two")
    for name in METRICS:
        assert two[name] == pytest.approx(single[name], abs=1e-7), name
    assert two["val/loss"] == pytest.approx(single["val/loss"], abs=1e-5)


@pytest.mark.slow
def test_two_process_training_shards_the_batches(tmp_path):
    ddp = ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu", "--trainer.max_epochs=1"]
    data = ["--data.init_args.num_train=64", "--data.init_args.num_val=9", "--data.init_args.batch_size=8"]
    checkpoint = ["--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint"]
    checkpoint += [f"--trainer.callbacks.dirpath={tmp_path}", "--trainer.callbacks.save_last=true"]
    logger = ["--trainer.logger=lightning.pytorch.loggers.CSVLogger", f"--trainer.logger.save_dir={tmp_path}"]
    command = [sys.executable, "main.py", "fit", *DATA_ARGS[:2], *data, *ddp, *checkpoint, *logger]
    done = subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    last = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert last["global_step"] == 4  # 8 batches, 4 per process: Lightning did not replace our sampler
    assert "val/f1" in read_metrics(tmp_path)


@pytest.mark.slow
def test_two_processes_fit_and_predict_with_wandb_and_every_process_gets_evaluation_batches(tmp_path):
    """CSV + W&B (offline) loggers under DDP: W&B's config upload and the prediction writer asked rank 0 alone for
    `trainer.log_dir` (a collective) and hung; 9 validation sentences in batches of 32 are one batch, which the
    sampler now cuts in two so that no process is left without one."""
    ddp = ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu", "--trainer.max_epochs=1"]
    data = ["--data.init_args.num_train=64", "--data.init_args.num_val=9", "--data.init_args.eval_batch_size=32"]
    loggers = [
        {"class_path": f"lightning.pytorch.loggers.{name}", "init_args": {"save_dir": str(tmp_path), **extra}}
        for name, extra in (("CSVLogger", {}), ("WandbLogger", {"offline": True}))
    ]
    fit = [sys.executable, "main.py", "fit", *DATA_ARGS[:2], *data, *ddp, f"--trainer.logger={json.dumps(loggers)}"]
    done = subprocess.run(fit, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run,) = tmp_path.glob("wandb/offline-run-*")
    assert (run / "files" / "config.yaml").is_file()  # rank 0 uploaded the resolved config
    (best,) = tmp_path.rglob("*.ckpt")  # Lightning's default checkpoint (the quickstart has no ModelCheckpoint)
    texts = tmp_path / "texts.txt"
    texts.write_text("".join(f"ba goal ko ti {i}\n" for i in range(5)))
    out = tmp_path / "predictions.jsonl"
    predict = [sys.executable, "main.py", "predict", f"--ckpt_path={best}", *ddp[:3], "--trainer.logger=false"]
    predict += [f"--data.init_args.predict_file={texts}", f"--prediction.output_file={out}"]
    done = subprocess.run(predict, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert len(out.read_text().splitlines()) == 5  # both processes' rows, gathered


def test_lightning_sampler_injection_is_refused_with_a_clear_error():
    data = RightContextNER(num_train=16, num_val=4)
    data.setup("fit")
    connector = SimpleNamespace(use_distributed_sampler=True)
    data.trainer = SimpleNamespace(world_size=2, global_rank=0, _accelerator_connector=connector)
    with pytest.raises(ValueError, match="set trainer.use_distributed_sampler=False"):
        data.train_dataloader()
    connector.use_distributed_sampler = False
    assert len(data.train_dataloader()) == 1  # 2 batches, one per process
