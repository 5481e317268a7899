"""Metrics equal seqeval/torchmetrics on the de-duplicated set; optimizer/scheduler come from the config."""

from __future__ import annotations

import pytest
import torch
from helpers import TINY_LLAMA, quick
from seqeval.metrics import f1_score
from sklearn.metrics import accuracy_score
from sklearn.metrics import f1_score as sk_f1

from lightning_modules import LabelSupervisedModule
from lightning_modules.metrics import ClassificationMetrics, SeqevalMetrics
from main import main

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def test_seqeval_metric_on_words_with_repeated_examples():
    metric = SeqevalMetrics(TAGS)
    gold = torch.tensor([[1, 2, 0, 3], [3, 4, -100, -100]])  # two sentences of 4 and 2 words
    pred = torch.tensor([[1, 2, 0, 0], [3, 4, 0, 0]])
    metric.update(pred, gold, torch.tensor([0, 1]))
    metric.update(pred[:1], gold[:1], torch.tensor([0]))  # a repeat (as a distributed sampler pads) counts once
    expected = f1_score(
        [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "I-LOC"]], [["B-PER", "I-PER", "O", "O"], ["B-LOC", "I-LOC"]]
    )
    assert metric.compute()["f1"].item() == pytest.approx(expected)  # 2 of 3 entities found: P=1, R=2/3
    assert expected == pytest.approx(0.8)


def test_classification_metric_matches_sklearn_and_deduplicates():
    metric = ClassificationMetrics(3)
    preds, target = torch.tensor([0, 2, 1, 1, 0]), torch.tensor([0, 1, 1, 2, 0])
    metric.update(preds, target, torch.arange(5))
    metric.update(preds[:2], target[:2], torch.arange(2))  # repeats
    out = metric.compute()
    assert out["acc"].item() == pytest.approx(accuracy_score(target, preds))
    assert out["f1"].item() == pytest.approx(sk_f1(target, preds, average="macro"))


def test_optimizer_and_scheduler_from_the_config(tmp_path):
    cli = main(
        [
            "fit",
            *quick("right_context", "ls_llama"),
            "--trainer.fast_dev_run=1",
            f"--trainer.default_root_dir={tmp_path}",
            "--model.finetuning=lora",
            "--model.optimizer=torch.optim.SGD",
            "--model.optimizer.lr=0.5",
            "--model.scheduler=torch.optim.lr_scheduler.StepLR",
            "--model.scheduler.step_size=7",
        ]
    )
    optimizer = cli.trainer.optimizers[0]
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["lr"] == 0.5
    scheduler = cli.trainer.lr_scheduler_configs[0].scheduler
    assert isinstance(scheduler, torch.optim.lr_scheduler.StepLR) and scheduler.step_size == 7
    optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
    trainable = {id(p) for p in cli.model.parameters() if p.requires_grad}
    assert optimized == trainable  # never the frozen backbone


def test_default_optimizer_is_the_papers_adamw_with_linear_decay():
    module = LabelSupervisedModule(backbone_config=TINY_LLAMA, vocab_size=50, pad_token_id=0, verify_mask=False)
    module.trainer = type("T", (), {"estimated_stepping_batches": 100})()  # what configure_optimizers reads
    config = module.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["lr"] == 8e-5
    for _ in range(50):
        optimizer.step(), scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(4e-5)  # halfway through the linear decay


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("impl", ["sdpa", "flash_attention_2"])
def test_bidirectional_probe_on_gpu_in_bf16(impl):
    if impl == "flash_attention_2":
        pytest.importorskip("flash_attn", reason="flash-attn is not installed")
    module = LabelSupervisedModule(
        backbone_config=TINY_LLAMA,
        mask="bidirectional",
        attn_implementation=impl,
        dtype="bfloat16",
        vocab_size=50,
        pad_token_id=0,
        verify_mask=False,
    ).cuda()
    module.verify_mask()
