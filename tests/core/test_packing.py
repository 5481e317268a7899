"""Packed, padding-free batches give the logits, loss and gradients of padded batches, for every strategy."""

from __future__ import annotations

import pytest
import torch
from helpers import TINY_LLAMA, quick

from core.packing import PACKED_KEYS, packed_attention_mask
from datamodules import EarlyCueClassification, RightContextNER
from lightning_modules import BidirectionalFromLayer, BidirectionalMask, CausalMask, LabelSupervisedModule


def batches(data_cls, **kwargs):
    padded, packed = (data_cls(num_train=8, num_val=8, pack_sequences=p, **kwargs) for p in (False, True))
    for data in (padded, packed):
        data.setup("validate")
    features = [padded.datasets["validation"][i] for i in range(6)]
    return padded.collate(features), packed.collate(features), padded


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
@pytest.mark.parametrize("mask", [CausalMask(), BidirectionalMask(), BidirectionalFromLayer(1)], ids=repr)
@pytest.mark.parametrize("data_cls", [EarlyCueClassification, RightContextNER])
def test_packed_equals_padded(data_cls, mask, impl):
    padded, packed, data = batches(data_cls)
    assert packed["packed_input_ids"].shape == (1, int(padded["attention_mask"].sum()))  # no padding at all
    module = LabelSupervisedModule(
        backbone_config=dict(TINY_LLAMA, num_hidden_layers=3),
        mask=mask,
        pooling="max",
        attn_implementation=impl,
        task=data.task,
        num_labels=data.num_labels,
        label_names=data.label_names,
        vocab_size=data.vocab_size,
        pad_token_id=data.pad_token_id,
        verify_mask=False,
    ).eval()
    loss_padded, logits_padded = module._step(padded)
    loss_padded.backward()
    grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
    module.zero_grad()
    loss_packed, logits_packed = module._step(packed)
    loss_packed.backward()
    real = padded["attention_mask"].bool() if data.task == "token" else slice(None)
    torch.testing.assert_close(logits_packed[real], logits_padded[real], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(loss_packed, loss_padded, atol=1e-6, rtol=1e-5)
    for name, grad in grads.items():
        torch.testing.assert_close(dict(module.named_parameters())[name].grad, grad, atol=1e-6, rtol=1e-4)


def test_packed_mask_is_block_diagonal_and_causal_when_asked():
    sequence_ids = torch.tensor([[0, 0, 1, 1, 1]])
    mask = packed_attention_mask(sequence_ids, causal=True, attn_implementation="sdpa", dtype=torch.float32)[0, 0]
    expected = torch.tensor(
        [
            [1, 0, 0, 0, 0],
            [1, 1, 0, 0, 0],
            [0, 0, 1, 0, 0],
            [0, 0, 1, 1, 0],
            [0, 0, 1, 1, 1],
        ]
    ).bool()
    assert torch.equal(mask, expected)
    eager = packed_attention_mask(sequence_ids, causal=False, attn_implementation="eager", dtype=torch.float32)
    assert torch.equal(eager[0, 0] == 0, sequence_ids[0, :, None] == sequence_ids[0, None, :])
    with pytest.raises(ValueError, match="flex_attention"):
        packed_attention_mask(sequence_ids, causal=True, attn_implementation="flex_attention", dtype=torch.float32)


def test_packed_training_through_the_cli(tmp_path):
    from main import main

    cli = main(
        [
            "fit",
            *quick("right_context", "ls_unllama"),
            "--trainer.fast_dev_run=2",
            "--data.init_args.pack_sequences=true",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
    assert cli.trainer.state.finished and all(k in next(iter(cli.datamodule.train_dataloader())) for k in PACKED_KEYS)
