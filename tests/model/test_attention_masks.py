"""Mask strategies: the probe passes where the strategy works and catches where it silently does not."""

from __future__ import annotations

import pytest
import torch
from helpers import TINY_LLAMA
from torch import nn

from lightning_modules import (
    AttentionProbeError,
    BidirectionalFromLayer,
    BidirectionalMask,
    CausalMask,
    LabelSupervisedModule,
)

# flex_attention compiles its block masks, slowly on a CPU (~45 s): it runs in the slow suite.
IMPLEMENTATIONS = ["eager", "sdpa", pytest.param("flex_attention", marks=pytest.mark.slow)]
VOCAB = 50


def tiny_module(mask, impl="sdpa", config=None, **kwargs) -> LabelSupervisedModule:
    return LabelSupervisedModule(
        backbone_config=dict(config or TINY_LLAMA, num_hidden_layers=3),
        mask=mask,
        attn_implementation=impl,
        vocab_size=VOCAB,
        pad_token_id=0,
        num_labels=3,
        verify_mask=False,
        **kwargs,
    )


def first_token_moves(module, input_ids, attention_mask, position, layer=-1) -> bool:
    """Does token 0's hidden state (after `layer`) change when the token at `position` changes?"""
    changed = input_ids.clone()
    changed[0, position] = changed[0, position] % (VOCAB - 1) + 1
    with torch.no_grad():
        a = module.hidden_states(input_ids, attention_mask, output_hidden_states=True).hidden_states[layer]
        b = module.hidden_states(changed, attention_mask, output_hidden_states=True).hidden_states[layer]
    return not torch.allclose(a[0, 0], b[0, 0], atol=1e-6, rtol=0)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("mask", [CausalMask(), BidirectionalMask(), BidirectionalFromLayer(2)], ids=repr)
def test_probe_passes_for_every_strategy_and_implementation(mask, impl):
    module = tiny_module(mask, impl).eval()
    report = module.verify_mask()
    assert set(report) == {"batch of 1 without padding", "right-padded batch of 2", "left-padded batch of 2"}
    for changes in report.values():  # per layer: moved exactly where promised
        assert [c > 1e-6 for c in changes] == [mask.sees_right_context(layer) for layer in range(3)]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("padded", [False, True])
def test_bidirectional_sees_right_context_with_and_without_padding(impl, padded):
    ids = torch.randint(1, VOCAB, (2 if padded else 1, 7), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    if padded:
        ids[1, -3:], mask[1, -3:] = 0, 0
    bidirectional, causal = tiny_module(BidirectionalMask(), impl).eval(), tiny_module(CausalMask(), impl).eval()
    assert first_token_moves(bidirectional, ids, mask, position=6)
    assert not first_token_moves(causal, ids, mask, position=6)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_from_layer_k_is_causal_below_and_bidirectional_from_k(impl):
    module = tiny_module(BidirectionalFromLayer(2), impl).eval()
    ids, mask = torch.randint(1, VOCAB, (1, 6), generator=torch.Generator().manual_seed(2)), torch.ones(1, 6).long()
    # hidden_states[l + 1] is the output of layer l
    assert not first_token_moves(module, ids, mask, 5, layer=1) and not first_token_moves(module, ids, mask, 5, layer=2)
    assert first_token_moves(module, ids, mask, 5, layer=3)


@pytest.mark.parametrize("mask", [CausalMask(), BidirectionalMask(), BidirectionalFromLayer(1)], ids=repr)
def test_padding_side_does_not_change_logits(mask):
    """Padding is masked and positions count real tokens: a sequence alone, right- or left-padded, same logits."""
    module = tiny_module(mask, pooling="mean").eval()
    seq = torch.randint(1, VOCAB, (1, 5), generator=torch.Generator().manual_seed(3))
    other = torch.randint(1, VOCAB, (1, 8), generator=torch.Generator().manual_seed(4))
    pad = torch.zeros(1, 3, dtype=torch.long)
    with torch.no_grad():
        alone = module(seq, torch.ones_like(seq))
        right = module(torch.cat([torch.cat([seq, pad], 1), other]), torch.tensor([[1] * 5 + [0] * 3, [1] * 8]))
        left = module(torch.cat([torch.cat([pad, seq], 1), other]), torch.tensor([[0] * 3 + [1] * 5, [1] * 8]))
    torch.testing.assert_close(right[0], alone[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(left[0], alone[0], atol=1e-5, rtol=1e-5)


class SilentlyCausal(BidirectionalMask):
    """A broken 'bidirectional' strategy that forgets to switch the model."""

    def apply(self, model):
        pass


class AttendsToPadding(BidirectionalMask):
    """The authors' flaw: the mask replaced by all-ones, so tokens attend to padding."""

    def apply(self, model):
        super().apply(model)
        stack = model.model if hasattr(model, "model") else model

        def drop_padding(module: nn.Module, args, kwargs):
            if kwargs.get("attention_mask") is not None:
                kwargs["attention_mask"] = torch.ones_like(kwargs["attention_mask"])
            return args, kwargs

        stack.register_forward_pre_hook(drop_padding, with_kwargs=True)


def test_probe_catches_a_strategy_that_stays_causal():
    with pytest.raises(AttentionProbeError, match="did not take effect.*batch of 1 without padding"):
        tiny_module(SilentlyCausal()).verify_mask()


def test_probe_catches_attention_to_padding():
    with pytest.raises(AttentionProbeError, match="attends to padding"):
        tiny_module(AttendsToPadding()).verify_mask()


# Other decoder and encoder families (Mistral, Qwen2/3, Gemma-2/3, Phi-3, ModernBERT, DeBERTa-v3), each also compared
# with plain transformers rather than with our own probe only: tests/model/test_architectures.py.


BERT = {"model_type": "bert", "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4}


def test_encoders_are_bidirectional_and_refuse_causal():
    module = tiny_module(None, config=BERT)
    assert isinstance(module.mask, BidirectionalMask)
    module.verify_mask()
    with pytest.raises(ValueError, match="CausalMask needs a decoder"):
        tiny_module(CausalMask(), config=BERT)


def test_mask_survives_lora_and_probe_runs_through_peft():
    module = tiny_module(BidirectionalMask(), finetuning="lora", lora_target_modules=["q_proj", "v_proj"])
    assert type(module.backbone).__name__ == "PeftModel"
    module.verify_mask()


def test_mask_by_short_name_and_spec():
    assert isinstance(tiny_module("bidirectional").mask, BidirectionalMask)
    spec = {"class_path": "lightning_modules.BidirectionalFromLayer", "init_args": {"layer": 1}}
    assert tiny_module(spec).mask.layer == 1
    with pytest.raises(ValueError, match="is refused: its module can run code"):
        tiny_module({"class_path": "os.system"})


def test_roberta_positions_from_ids_do_not_trip_the_probe():
    """RoBERTa numbers positions from `input_ids != pad`: probing a left-padded batch by changing a pad id would
    shift real positions, so encoders (which pad right) are probed without it."""
    roberta = {
        "model_type": "roberta",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_attention_heads": 4,
        "pad_token_id": 1,
    }
    module = LabelSupervisedModule(
        backbone_config=dict(roberta, num_hidden_layers=2), vocab_size=VOCAB, pad_token_id=1, verify_mask=False
    )
    assert "left-padded batch of 2" not in module.verify_mask()


# --------------------------------------------------------------------------------------------- torch.compile
def compile_cases() -> list:
    """Dynamo's `eager` backend traces the blocks as inductor does, without AOTAutograd or C++ code generation; the
    default run keeps bidirectional-from-layer-2 (causal and bidirectional layers) on it, the rest is slow."""
    masks = [CausalMask(), BidirectionalMask(), BidirectionalFromLayer(2)]
    return [
        pytest.param(
            mask, backend, marks=[] if backend == "eager" and mask.name == "bidir_from" else [pytest.mark.slow]
        )
        for backend in ("eager", "inductor")
        for mask in masks
    ]


@pytest.mark.parametrize(("mask", "backend"), compile_cases(), ids=str)
def test_compiled_backbone_keeps_the_promise_and_trains(mask, backend, monkeypatch):
    import lightning_modules.backbone.compile as compile_module

    monkeypatch.setitem(compile_module.COMPILE_OPTIONS, "backend", backend)
    monkeypatch.setitem(compile_module.COMPILE_OPTIONS, "dynamic", True)  # one graph for every probe shape
    torch._dynamo.reset()
    compiled = tiny_module(mask, compile=True, lora_target_modules=["q_proj", "v_proj"])
    plain = tiny_module(mask, lora_target_modules=["q_proj", "v_proj"])
    assert set(compiled.state_dict()) == set(plain.state_dict())  # checkpoints are unchanged by compilation
    compiled.load_state_dict(plain.state_dict())  # the same head and LoRA initialisation
    layers = compiled.backbone.base_model.model.layers
    assert all(layer._compiled_call_impl is not None for layer in layers)
    compiled.verify_mask()  # the probe runs through the compiled blocks, with and without padding
    ids = torch.randint(1, VOCAB, (2, 7), generator=torch.Generator().manual_seed(5))
    mask_ids = torch.ones_like(ids)
    mask_ids[1, -2:] = 0
    batch = {"input_ids": ids, "attention_mask": mask_ids, "labels": torch.tensor([0, 2])}
    for module in (compiled, plain):
        module.train()
        module.head.dropout.p = 0.0
        for p in module.backbone.modules():
            if isinstance(p, nn.Dropout):
                p.p = 0.0
    losses = [module._step(batch)[0] for module in (compiled, plain)]
    torch.testing.assert_close(losses[0], losses[1], atol=1e-5, rtol=1e-5)  # same weights, same loss
    losses[0].backward()
    assert all(p.grad is not None for n, p in compiled.named_parameters() if p.requires_grad and "lora_A" not in n)
