"""FSDP (configs/strategy/fsdp.yaml, `lightning_modules.backbone.fsdp`) and the multi-node DDP config.

- The wrap policy: one FSDP unit per transformer block of any family, then the backbone's rest and the head, so
  every trained weight sits in a unit (its gradient is reduced across processes).
- FSDP2 on 2 CPU processes (gloo) trains exactly like DDP on 2 processes (same data shards, seeds, LoRA), and its
  checkpoint holds only the LoRA adapters and the head, as full plain tensors (slow: two subprocess runs).
- A multi-node job's W&B run can be grouped by job from the command line. (2 processes as 2 nodes: test_ddp.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import yaml
from helpers import ROOT, quick
from tiny_families import module

from lightning_modules.backbone.fsdp import LoRAFSDPStrategy, shard_units
from main import main

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}


@pytest.mark.parametrize("family", ["llama", "gemma2", "phi3", "modernbert"])
def test_every_trained_weight_is_in_one_fsdp_unit_per_block(family):
    tiny = module(family, finetuning="lora")
    units = shard_units(tiny)
    blocks = units[:-2]
    assert len(blocks) == tiny.backbone.config.num_hidden_layers
    assert all(
        type(block).__name__.endswith("Layer") for block in blocks
    )  # e.g. LlamaDecoderLayer, ModernBertEncoderLayer
    assert units[-2] is tiny.backbone and units[-1] is tiny.head
    covered = {id(p) for unit in units for p in unit.parameters()}
    assert all(id(p) in covered for p in tiny.parameters() if p.requires_grad)
    lora_in_blocks = {id(p) for block in blocks for n, p in block.named_parameters() if "lora_" in n}
    assert lora_in_blocks and lora_in_blocks == {id(p) for n, p in tiny.named_parameters() if "lora_" in n}


def test_fsdp_config_names_our_strategy():
    raw = yaml.safe_load((ROOT / "configs/strategy/fsdp.yaml").read_text())["trainer"]["strategy"]
    strategy = LoRAFSDPStrategy(**raw["init_args"])
    assert raw["class_path"] == "lightning_modules.backbone.fsdp.LoRAFSDPStrategy"
    assert strategy._tensor_parallel_size == 1 and not strategy._save_distributed_checkpoint


def test_a_jobs_wandb_run_can_be_grouped_by_job(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = [*quick(), "--config=configs/trainer/default.yaml", "--config=configs/strategy/ddp_multinode.yaml"]
    with pytest.raises(SystemExit):
        main(["fit", *args, "--trainer.logger.init_args.group=job-42", "--print_config"])
    trainer = yaml.safe_load(capsys.readouterr().out)["trainer"]
    wandb = [lg for lg in trainer["logger"] if lg["class_path"].endswith("WandbLogger")]
    assert wandb[0]["init_args"]["group"] == "job-42"
    assert trainer["num_nodes"] == 2 and trainer["strategy"] == "ddp"


def fit_two_processes(strategy: list[str], folder) -> dict[str, torch.Tensor]:
    """`main.py fit` on 2 CPU processes (tiny LLaMA, LoRA on q/v, synthetic NER); returns last.ckpt's state dict."""
    data = ["--data.init_args.num_train=64", "--data.init_args.num_val=9", "--data.init_args.batch_size=8"]
    model = ["--model.finetuning=lora", "--model.lora_target_modules=[q_proj,v_proj]", "--model.lora_dropout=0"]
    checkpoint = "--trainer.callbacks=[{class_path: lightning.pytorch.callbacks.ModelCheckpoint, "
    checkpoint += f"init_args: {{dirpath: {folder}, save_last: true}}}}]"
    trainer = ["--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.max_epochs=2", "--trainer.logger=false"]
    trainer += ["--trainer.enable_progress_bar=false", checkpoint]
    args = [*quick("right_context", "ls_unllama"), "--config=configs/debug/tiny_llama.yaml", *data, *model, *trainer]
    command = [sys.executable, "main.py", "fit", *args, *strategy]
    done = subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return torch.load(folder / "last.ckpt", weights_only=True)


@pytest.mark.slow
def test_fsdp_on_two_cpu_processes_trains_like_ddp_and_saves_only_adapters_and_head(tmp_path):
    fsdp = ["--config=configs/strategy/fsdp.yaml", "--trainer.accelerator=cpu", "--trainer.devices=2"]
    fsdp += ["--trainer.strategy.init_args.process_group_backend=gloo"]
    sharded = fit_two_processes(fsdp, tmp_path / "fsdp")
    replicated = fit_two_processes(["--trainer.strategy=ddp"], tmp_path / "ddp")
    assert sharded["global_step"] == replicated["global_step"] == 8  # 8 batches / 2 processes x 2 epochs
    weights = sharded["state_dict"]
    assert set(weights) == set(replicated["state_dict"])
    assert weights and all("lora_" in k or k.startswith("head.") for k in weights)  # no frozen weight saved
    assert all(type(v) is torch.Tensor for v in weights.values())  # gathered, not DTensor shards
    for key, value in weights.items():
        torch.testing.assert_close(value, replicated["state_dict"][key], atol=1e-5, rtol=1e-4)
    assert any(v.abs().sum() > 0 for k, v in weights.items() if "lora_B" in k)  # the adapters trained
