"""Every decoder and encoder family we ship a config for, on tiny random configs (no download).

- The attention probe passes for causal, bidirectional and bidirectional-from-layer-k on eager and sdpa, for a batch
  of one without padding, a right-padded and a left-padded batch (one representative per family in the default run,
  the whole matrix with `-m slow`).
- Our bidirectional model equals plain transformers given a hand-built 4D mask (every real token attends to every
  real token), so the promise is not checked by our own probe alone; our causal model equals plain transformers.
- Sliding windows become symmetric windows (|i - j| <= w) and stay causal windows in the causal layers of
  bidirectional-from-layer-k; Gemma-2's logit soft-capping is kept; what cannot work fails at start-up.
"""

from __future__ import annotations

import pytest
import torch
import yaml
from helpers import ROOT
from tiny_families import DECODERS, ENCODERS, VOCAB, family_of, impls, module
from transformers import AutoConfig, AutoModel

from lightning_modules import (
    AttentionProbeError,
    BidirectionalFromLayer,
    BidirectionalMask,
    CausalMask,
    LabelSupervisedModule,
)

MASKS = {"causal": CausalMask, "bidirectional": BidirectionalMask, "bidir_from_1": lambda: BidirectionalFromLayer(1)}


def probe_cases() -> list:
    """(family, mask, impl): every combination; the default run keeps one per family (bidirectional-from-layer-1,
    which checks causal and bidirectional layers at once, on the family's first implementation; LoRA-wrapped)."""
    cases = []
    for family in DECODERS:
        for mask in MASKS:
            for impl in impls(family):
                default = mask == "bidir_from_1" and impl == impls(family)[0]
                cases.append(pytest.param(family, mask, impl, marks=[] if default else [pytest.mark.slow]))
    return cases


@pytest.mark.parametrize(("family", "mask", "impl"), probe_cases())
def test_probe_passes(family, mask, impl):
    strategy = MASKS[mask]()
    tiny = module(family, strategy, impl, finetuning="lora")
    assert tiny.backbone.config._attn_implementation == impl
    report = tiny.verify_mask()
    assert set(report) == {"batch of 1 without padding", "right-padded batch of 2", "left-padded batch of 2"}
    for changes in report.values():  # moved exactly in the layers where the strategy promises right context
        assert [c > 1e-6 for c in changes] == [strategy.sees_right_context(layer) for layer in range(3)]


# ------------------------------------------------------------------------------ against plain transformers
def padded_batch(length: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) of 3 rows: unpadded, right-padded by 3, left-padded by 2 (pad id 0)."""
    ids = torch.randint(1, VOCAB, (3, length), generator=torch.Generator().manual_seed(seed))
    mask = torch.ones_like(ids)
    mask[1, -3:], mask[2, :2] = 0, 0
    return ids.masked_fill(mask == 0, 0), mask


def all_real_tokens_mask(mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A hand-built additive 4D mask `(B, 1, T, T)`: every query attends to every real key, never to padding."""
    blocked = (mask == 0)[:, None, None, :].expand(-1, 1, mask.shape[1], -1)  # (B, 1, T, T)
    return torch.zeros(blocked.shape, dtype=dtype).masked_fill(blocked, torch.finfo(dtype).min)


def plain_twin(ours: LabelSupervisedModule, **config_overrides) -> torch.nn.Module:
    """Plain transformers `AutoModel` of the same config (causal by default) with our backbone's weights."""
    options = {k: v for k, v in ours.backbone.config.to_dict().items() if k not in ("is_causal", "architectures")}
    config = AutoConfig.for_model(**{**options, **config_overrides})
    config._attn_implementation = ours.backbone.config._attn_implementation
    plain = AutoModel.from_config(config)
    plain.load_state_dict(ours.backbone.state_dict())
    return plain.eval()


def hidden(model, ids, mask, attention_mask=None) -> torch.Tensor:
    """Last hidden states `(B, T, H)`; positions count real tokens (as `LabelSupervisedModule.position_ids`)."""
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    with torch.no_grad():
        given = mask if attention_mask is None else attention_mask
        return model(input_ids=ids, attention_mask=given, position_ids=positions).last_hidden_state


def assert_real_close(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> None:
    real = mask.bool()
    torch.testing.assert_close(a[real], b[real], atol=2e-5, rtol=2e-5)


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
@pytest.mark.parametrize("family", DECODERS)
def test_bidirectional_equals_plain_transformers_with_an_all_real_tokens_mask(family, impl):
    if impl not in impls(family):
        pytest.skip(f"{family} does not run on {impl} in transformers (see test_gemma2_refuses_sdpa)")
    ids, mask = padded_batch()
    ours = module(family, BidirectionalMask(), impl)
    plain = plain_twin(ours)
    expected = hidden(plain, ids, mask, attention_mask=all_real_tokens_mask(mask))
    assert_real_close(hidden(ours.backbone, ids, mask), expected, mask)
    # the comparison has teeth: the plain model with its own (causal) mask differs on the same input
    assert not torch.allclose(hidden(plain, ids, mask)[mask.bool()], expected[mask.bool()], atol=1e-4)


@pytest.mark.parametrize("family", DECODERS)
def test_causal_equals_plain_transformers(family):
    ids, mask = padded_batch()
    ours = module(family, CausalMask())
    assert_real_close(hidden(ours.backbone, ids, mask), hidden(plain_twin(ours), ids, mask), mask)


@pytest.mark.parametrize("family", ENCODERS)
def test_encoders_equal_plain_transformers_and_pass_the_probe(family):
    ids, mask = padded_batch()
    ids, mask = ids[:2], mask[:2]  # encoders pad on the right
    ours = module(family)
    assert isinstance(ours.mask, BidirectionalMask) and ours.is_encoder
    assert_real_close(hidden(ours.backbone, ids, mask), hidden(plain_twin(ours), ids, mask), mask)
    report = ours.verify_mask()
    assert "left-padded batch of 2" not in report and all(c > 1e-6 for c in report["right-padded batch of 2"])


@pytest.mark.parametrize("family", ENCODERS)
@pytest.mark.parametrize("mask", [CausalMask(), BidirectionalFromLayer(1)], ids=repr)
def test_encoders_refuse_causal_strategies_at_start_up(family, mask):
    with pytest.raises(ValueError, match="needs a decoder backbone"):
        module(family, mask)


@pytest.mark.slow
@pytest.mark.parametrize("family", ENCODERS)
def test_encoders_train_with_lora_on_their_fused_projections(family):
    tiny = module(family, finetuning="lora")
    adapted = {name.rsplit(".", 2)[0] for name, _ in tiny.backbone.named_parameters() if "lora_A" in name}
    assert adapted and tiny.verify_mask()


# ---------------------------------------------------------------------------------------- sliding windows
WINDOWED = {  # a window of 2 in every layer of a 1-layer model, in each family's own way of asking for it
    "mistral": {"sliding_window": 2},
    "phi3": {"sliding_window": 2},
    "qwen2": {"use_sliding_window": True, "sliding_window": 2, "max_window_layers": 0},
    "qwen3": {"use_sliding_window": True, "sliding_window": 2, "max_window_layers": 0},
    "gemma2": {"sliding_window": 2, "layer_types": ["sliding_attention"]},
    "gemma3": {"sliding_window": 2, "layer_types": ["sliding_attention"]},
}
WINDOW_CASES = [(family, impl) for family in WINDOWED for impl in impls(family)]


def moves(model, ids: torch.Tensor, query: int, key: int, layer: int = -1) -> bool:
    """Does token `query`'s hidden state (after `layer`) change when token `key` changes? (one unpadded row)"""
    changed = ids.clone()
    changed[0, key] = changed[0, key] % (VOCAB - 1) + 1
    mask = torch.ones_like(ids)
    with torch.no_grad():
        a = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[layer]
        b = model(input_ids=changed, attention_mask=mask, output_hidden_states=True).hidden_states[layer]
    return not torch.allclose(a[0, query], b[0, query], atol=1e-6, rtol=0)


@pytest.mark.parametrize(("family", "impl"), WINDOW_CASES)
def test_bidirectional_sliding_window_is_symmetric(family, impl):
    """Window w = 2: the causal layer sees 1 token to the left; the bidirectional one sees 2 on each side."""
    ids = torch.randint(1, VOCAB, (1, 8), generator=torch.Generator().manual_seed(5))
    causal = module(family, CausalMask(), impl, layers=1, **WINDOWED[family]).backbone
    assert [moves(causal, ids, 4, k) for k in (2, 3, 5)] == [False, True, False]
    bidirectional = module(family, BidirectionalMask(), impl, layers=1, **WINDOWED[family]).backbone
    assert [moves(bidirectional, ids, 4, k) for k in (1, 2, 3, 5, 6, 7)] == [False, True, True, True, True, False]


@pytest.mark.parametrize(("family", "impl"), WINDOW_CASES)
def test_bidirectional_sliding_window_equals_plain_transformers_with_a_symmetric_window_mask(family, impl):
    ids, mask = padded_batch(length=8, seed=6)
    ours = module(family, BidirectionalMask(), impl, layers=1, **WINDOWED[family])
    distance = (torch.arange(8)[:, None] - torch.arange(8)[None, :]).abs()
    hand = all_real_tokens_mask(mask).masked_fill(distance > 2, torch.finfo(torch.float32).min)
    assert_real_close(hidden(ours.backbone, ids, mask), hidden(plain_twin(ours), ids, mask, attention_mask=hand), mask)


@pytest.mark.parametrize(("family", "impl"), WINDOW_CASES)
def test_from_layer_k_keeps_the_causal_window_below_k(family, impl):
    """Layer 0 (causal, window 2) must see exactly one token to its left; layer 1 is bidirectional (window 2 or
    full), so token 6 reaches token 4 there."""
    overrides = dict(WINDOWED[family])
    if "layer_types" in overrides:
        overrides["layer_types"] = ["sliding_attention", "full_attention"]
    ids = torch.randint(1, VOCAB, (1, 8), generator=torch.Generator().manual_seed(7))
    backbone = module(family, BidirectionalFromLayer(1), impl, layers=2, **overrides).backbone
    assert [moves(backbone, ids, 4, k, layer=1) for k in (2, 3, 5)] == [False, True, False]
    assert moves(backbone, ids, 4, 6, layer=2)


def test_probe_length_fits_a_short_window():
    """With a window shorter than the probe's 9 tokens, the probe shortens itself instead of failing."""
    tiny = module("mistral", BidirectionalMask(), "sdpa", layers=2, sliding_window=4)
    report = tiny.verify_mask()
    assert all(c > 1e-6 for changes in report.values() for c in changes)


# ------------------------------------------------------------------------------- soft-capping and Gemma
def test_gemma2_bidirectional_keeps_logit_soft_capping():
    ids, mask = padded_batch(seed=8)
    capped = module("gemma2", BidirectionalMask(), "eager", attn_logit_softcapping=0.02)
    uncapped = plain_twin(capped, attn_logit_softcapping=None)
    expected = hidden(plain_twin(capped), ids, mask, attention_mask=all_real_tokens_mask(mask))
    assert_real_close(hidden(capped.backbone, ids, mask), expected, mask)
    other = hidden(uncapped, ids, mask, attention_mask=all_real_tokens_mask(mask))
    assert not torch.allclose(other[mask.bool()], expected[mask.bool()], atol=1e-4)  # the capping did something


def test_gemma2_refuses_sdpa_at_start_up():
    with pytest.raises(ValueError, match="does not support an attention implementation through"):
        module("gemma2", BidirectionalMask(), "sdpa")


def test_gemma3_built_bidirectional_by_its_config():
    """`use_bidirectional_attention=True` fixes the attention at construction: our causal strategies refuse it,
    and our bidirectional mask on the ordinary config equals it (window longer than the input)."""
    native = {"use_bidirectional_attention": True}
    for strategy in (CausalMask(), BidirectionalFromLayer(1)):
        with pytest.raises(ValueError, match="use_bidirectional_attention"):
            module("gemma3", strategy, "sdpa", **native)
    ids, mask = padded_batch(seed=9)
    ours = module("gemma3", BidirectionalMask(), "sdpa")
    theirs = plain_twin(ours, **native)
    assert_real_close(hidden(ours.backbone, ids, mask), hidden(theirs, ids, mask), mask)
    module("gemma3", BidirectionalMask(), "sdpa", **native).verify_mask()


def test_probe_catches_a_family_left_causal():
    """Were a family's attention not steered by `config.is_causal`, the probe would stop the run at start-up."""
    tiny = module("phi3", CausalMask(), "sdpa")
    tiny.mask = BidirectionalMask()  # promises right context, but the model was configured causal
    with pytest.raises(AttentionProbeError, match="did not take effect"):
        tiny.verify_mask()


# ---------------------------------------------------------------------------------------- shipped configs
BACKBONE_FAMILIES = {  # configs/backbone/<file>: the family whose tiny config stands in for it in the tests
    "llama3.1-8b.yaml": "llama",
    "mistral-7b.yaml": "mistral",
    "qwen2.5-7b.yaml": "qwen2",
    "qwen3-8b.yaml": "qwen3",
    "gemma2-9b.yaml": "gemma2",
    "gemma3-1b.yaml": "gemma3",
    "phi3-mini.yaml": "phi3",
    "modernbert-base.yaml": "modernbert",
    "modernbert-large.yaml": "modernbert",
    "deberta-v3-base.yaml": "deberta-v3",
    "deberta-v3-large.yaml": "deberta-v3",
}


@pytest.mark.parametrize("name", sorted(BACKBONE_FAMILIES))
def test_backbone_config_names_its_checkpoint_targets_and_pad_token(name):
    path = ROOT / "configs" / "backbone" / name
    text = path.read_text()
    raw = yaml.safe_load(text)["model"]
    family = BACKBONE_FAMILIES[name]
    assert family_of(raw["backbone"]) == family and "/" in raw["backbone"]  # a hub name
    assert "pad" in text.lower() and text.startswith("# ")  # the launch command and the pad token are stated
    assert raw.get("attn_implementation") in impls(family)
    targets = raw.get("lora_target_modules")  # decoders name theirs; encoders are fully finetuned (recipe/bert.yaml)
    if targets is not None:
        tiny = module(family, finetuning="lora", lora=targets)
        adapted = {
            n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in tiny.backbone.named_parameters() if ".lora_A" in n
        }
        assert adapted == set(targets), f"{name}: LoRA targets {targets} adapted {sorted(adapted)}"


def test_every_backbone_config_of_a_new_family_is_covered():
    shipped = sorted((ROOT / "configs" / "backbone").glob("*.yaml"))
    for path in shipped:
        source = str(yaml.safe_load(path.read_text())["model"].get("backbone"))
        assert family_of(source) is None or path.name in BACKBONE_FAMILIES, f"{path.name}: add it to BACKBONE_FAMILIES"
    assert set(BACKBONE_FAMILIES) <= {path.name for path in shipped}
