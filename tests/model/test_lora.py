"""LoRA: only adapters and head train; a checkpoint holds just them and reloads to identical logits."""

from __future__ import annotations

import pytest
import torch
from helpers import TINY_LLAMA, module_for
from lightning.pytorch import Trainer

from datamodules import EarlyCueClassification, RightContextNER
from lightning_modules import BidirectionalMask, LabelSupervisedModule, MaxPooling


def test_only_adapters_and_head_are_trainable():
    data = EarlyCueClassification(num_train=16, num_val=8)
    module = module_for(data, lora_target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    trainable = [name for name, p in module.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name or name.startswith("head.") for name in trainable)
    assert {"head.score.weight"} <= set(trainable) and any("o_proj.lora_A" in name for name in trainable)
    frozen = [name for name, p in module.named_parameters() if not p.requires_grad]
    assert any("embed_tokens" in name for name in frozen) and any("mlp" in name for name in frozen)


def test_paper_lora_defaults():
    module = module_for(EarlyCueClassification(num_train=16, num_val=8))
    lora = module.backbone.peft_config["default"]
    assert (lora.r, lora.lora_alpha, lora.lora_dropout) == (12, 32, 0.1)
    assert set(lora.target_modules) == {"q_proj", "v_proj"}  # peft's llama default, as the authors used


@pytest.mark.parametrize("data_cls", [EarlyCueClassification, RightContextNER])
def test_checkpoint_holds_only_trained_weights_and_round_trips(tmp_path, data_cls):
    data = data_cls(num_train=32, num_val=16, batch_size=8)
    module = module_for(data, mask=BidirectionalMask(), pooling=MaxPooling(), verify_mask=False)
    trainer = Trainer(
        max_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        limit_val_batches=1,
        accelerator="cpu",
    )
    trainer.fit(module, datamodule=data)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)

    state = torch.load(path, weights_only=False)["state_dict"]
    trainable = {name for name, p in module.named_parameters() if p.requires_grad}
    assert set(state) == trainable  # adapters + head, no frozen backbone weight

    reloaded = LabelSupervisedModule.load_from_checkpoint(path)
    assert isinstance(reloaded.mask, BidirectionalMask) and isinstance(reloaded.pooling, MaxPooling)
    batch = data.collate([data.datasets["validation"][i] for i in range(4)])
    module.eval(), reloaded.eval()
    with torch.no_grad():
        expected = module(batch["input_ids"], batch["attention_mask"])
        torch.testing.assert_close(reloaded(batch["input_ids"], batch["attention_mask"]), expected)
        # and the trained weights did matter: a fresh model gives other logits
        fresh = module_for(data, mask=BidirectionalMask(), pooling=MaxPooling(), verify_mask=False).eval()
        assert not torch.allclose(fresh(batch["input_ids"], batch["attention_mask"]), expected)


def test_checkpoint_from_another_setting_is_refused(tmp_path):
    data = EarlyCueClassification(num_train=16, num_val=8)
    module = module_for(data, finetuning="head")
    path = tmp_path / "head.ckpt"
    torch.save({"state_dict": module.trainable_state_dict()}, path)
    lora = module_for(data)
    with pytest.raises(KeyError, match="lacks .* trained weights"):
        lora.on_load_checkpoint(torch.load(path))


def test_a_pretrained_backbone_trains_in_train_mode(tmp_path):
    """`from_pretrained` returns eval mode and Lightning keeps module modes: fit must switch dropout on."""
    from lightning.pytorch import Callback
    from transformers import AutoConfig, AutoModel

    data = EarlyCueClassification(num_train=16, num_val=8, batch_size=8)
    config = AutoConfig.for_model(**dict(TINY_LLAMA, vocab_size=data.vocab_size, pad_token_id=data.pad_token_id))
    AutoModel.from_config(config).save_pretrained(tmp_path / "backbone")
    module = LabelSupervisedModule(
        backbone=str(tmp_path / "backbone"),
        finetuning="full",
        num_labels=data.num_labels,
        verify_mask=False,
        label_names=data.label_names,
        pad_token_id=data.pad_token_id,
        vocab_size=data.vocab_size,
    )
    assert not module.backbone.training  # as transformers hands it over
    modes = []

    class Spy(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            modes.append(all(m.training for m in pl_module.backbone.modules()))

    trainer = Trainer(
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        limit_val_batches=0,
        accelerator="cpu",
        callbacks=[Spy()],
    )
    trainer.fit(module, datamodule=data)
    assert modes == [True]
