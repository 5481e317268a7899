"""QLoRA (`model.quantization`): the config handed to transformers, and a 4-bit backbone with LoRA that trains.

bitsandbytes (the `qlora` extra) runs 4-bit layers on CPU since 0.46: where it is installed, the tests build NF4
backbones for real (a tiny LLaMA saved to a folder, then loaded quantized, as a hub checkpoint would be); without it
they skip with the reason, and the plumbing test still checks what `from_pretrained` receives.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from helpers import TINY_LLAMA
from transformers import AutoConfig, AutoModel, BitsAndBytesConfig

import core.hub
import lightning_modules.backbone.quantization as quantization
from lightning_modules import BidirectionalMask, LabelSupervisedModule

HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None
needs_bnb = pytest.mark.skipif(not HAS_BNB, reason="bitsandbytes is not installed (pip install -e '.[qlora]')")
VOCAB = 64
LORA = ["q_proj", "v_proj"]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> str:
    """A tiny random LLaMA saved like a hub checkpoint (weights + config)."""
    options = dict(TINY_LLAMA, hidden_size=64, intermediate_size=128)
    config = AutoConfig.for_model(options.pop("model_type"), vocab_size=VOCAB, pad_token_id=0, **options)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_llama")
    AutoModel.from_config(config).save_pretrained(folder)
    return str(folder)


def qlora_module(source: str | None, **kwargs) -> LabelSupervisedModule:
    options = {"backbone_config": dict(TINY_LLAMA, hidden_size=64, intermediate_size=128)} if source is None else {}
    return LabelSupervisedModule(
        backbone=source,
        **options,
        quantization="nf4",
        lora_target_modules=LORA,
        vocab_size=VOCAB,
        pad_token_id=0,
        num_labels=3,
        verify_mask=False,
        **kwargs,
    )


class _Stop(Exception):
    pass


@pytest.mark.parametrize(("dtype", "compute"), [("bfloat16", torch.bfloat16), ("float32", torch.float32)])
def test_from_pretrained_receives_an_nf4_bitsandbytes_config(tiny_folder, monkeypatch, dtype, compute):
    """Runs without bitsandbytes: the config plumbing, up to the call that would quantize."""
    received, original = {}, core.hub._from_pretrained

    def capture(loader, source, what, **kwargs):
        if what != "backbone":  # the config is read as usual
            return original(loader, source, what, **kwargs)
        received.update(kwargs)
        raise _Stop

    monkeypatch.setattr(quantization, "require_bitsandbytes", lambda name: None)
    monkeypatch.setattr(core.hub, "_from_pretrained", capture)
    with pytest.raises(_Stop):
        qlora_module(tiny_folder, dtype=dtype)
    config = received["quantization_config"]
    assert isinstance(config, BitsAndBytesConfig) and config.load_in_4bit and not config.load_in_8bit
    assert config.bnb_4bit_quant_type == "nf4" and config.bnb_4bit_use_double_quant
    assert config.bnb_4bit_compute_dtype == compute
    assert received["device_map"] == {"": torch.device("cuda", 0) if torch.cuda.is_available() else "cpu"}
    assert received["dtype"] == compute


def test_missing_bitsandbytes_and_full_finetuning_fail_at_start_up(monkeypatch):
    with pytest.raises(ValueError, match="use model.finetuning: lora"):
        qlora_module(None, finetuning="full")
    with pytest.raises(ValueError, match="must be one of nf4, fp4, int8"):
        quantization.bnb_config("nf2", torch.float32)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[qlora\]'"):
        quantization.bnb_config("nf4", torch.float32)


@needs_bnb
def test_nf4_backbone_with_lora_trains_and_keeps_the_mask_promise(tiny_folder):
    import bitsandbytes as bnb
    from peft.tuners.lora.bnb import Linear4bit as LoraLinear4bit

    module = qlora_module(tiny_folder, mask=BidirectionalMask())
    linears = [m for m in module.backbone.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(linears) == 2 * 7  # every linear layer of both blocks is 4-bit
    assert quantization.quantized_linears(module.backbone) >= len(linears)
    assert sum(isinstance(m, LoraLinear4bit) for m in module.backbone.modules()) == 2 * len(LORA)
    assert {p.dtype for p in module.backbone.parameters() if not p.requires_grad} >= {torch.uint8}
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("head.") for n in trainable)
    module.verify_mask()  # bidirectional on the quantized model too

    ids = torch.randint(1, VOCAB, (4, 7), generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.tensor([0, 1, 2, 1])}
    optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-2)
    module.train()
    losses = []
    for _ in range(5):
        loss, _ = module._step(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    lora_b = [p for n, p in module.named_parameters() if "lora_B" in n]
    assert all(p.abs().sum() > 0 for p in lora_b)  # the adapters on the 4-bit layers were trained


@needs_bnb
def test_qlora_checkpoint_holds_adapters_and_head_and_reloads(tiny_folder):
    module = qlora_module(tiny_folder).eval()
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.1)
    state = module.trainable_state_dict()
    assert state and all("lora_" in k or k.startswith("head.") for k in state)
    fresh = qlora_module(tiny_folder).eval()
    fresh.load_state_dict(state, strict=False)
    ids = torch.randint(1, VOCAB, (2, 6), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(fresh(ids, torch.ones_like(ids)), module(ids, torch.ones_like(ids)))


@needs_bnb
def test_random_backbone_is_quantized_through_a_saved_copy():
    module = qlora_module(None)
    assert quantization.quantized_linears(module.backbone) >= 2 * 7
    assert getattr(module.backbone.base_model.model, "is_loaded_in_4bit", False)
