"""The MNTP adaptation stage (adaptation/mntp.py, mntp_data.py) and label supervision starting from its adapter
(`LabelSupervisedModule(init_adapter=...)`, builders.merge_adapter), the plain-text data module, the suite runner's
`{seed}` placeholder and the experiment's two suites."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from helpers import ROOT, TINY_LLAMA
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModelForCausalLM

from app.run_defaults import method_of
from core.hub import load_tokenizer
from datamodules import PlainText, RightContextNER
from experiments.suite import SuiteError, load_suite
from lightning_modules import LabelSupervisedModule, MaskedNextTokenModule
from lightning_modules.adaptation.mntp_data import (
    MaskedTextEncoder,
    choose_masked,
    mask_tokens,
    maskable_positions,
    mntp_loss,
    resolve_mask_token,
)
from lightning_modules.backbone.builders import apply_lora, build_backbone, merge_adapter
from main import main

VOCAB = 64
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TRAINER = "configs/trainer/default.yaml"
SYNTHETIC_DATA = "experiments/repro_smollm2/right_context_ner.yaml"
TINY = ["--config", "configs/debug/tiny_llama.yaml", "--data.init_args.tokenizer=null"]  # the synthetic tokenizer


# ------------------------------------------------------------------------------------------ masking, targets
def test_masking_and_shifted_targets_on_a_hand_built_batch():
    pad, bos, mask_id = 0, 1, 99
    ids = torch.tensor(
        [
            [bos, 11, 12, 13, 14],  # a tokenizer that adds BOS
            [21, 22, 23, pad, pad],  # right padding, no BOS
            [pad, pad, 31, 32, 33],  # left padding
        ]
    )
    attention = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 0, 1, 1, 1]])
    special = torch.tensor([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
    maskable = maskable_positions(attention, special)
    # never BOS, padding, or a text's first token (no state to its left predicts it)
    assert maskable.tolist() == [
        [False, True, True, True, True],
        [False, True, True, False, False],
        [False, False, False, True, True],
    ]
    chosen = choose_masked(maskable, 1.0, torch.rand(3, 5))
    assert torch.equal(chosen, maskable)
    masked, labels = mask_tokens(ids, chosen, mask_id, torch.rand(2, 3, 5))  # 100% mask token
    assert masked.tolist() == [[bos, 99, 99, 99, 99], [21, 99, 99, pad, pad], [pad, pad, 31, 99, 99]]
    assert labels.tolist() == [
        [-100, 11, 12, 13, 14],
        [-100, 22, 23, -100, -100],
        [-100, -100, -100, 32, 33],
    ]
    hidden = torch.randn(3, 5, 100)  # with an identity head, the logits ARE the predicting states
    loss, logits, targets = mntp_loss(hidden, labels, nn.Identity())
    assert targets.tolist() == [11, 12, 13, 14, 22, 23, 32, 33]
    predictors = [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (2, 2), (2, 3)]  # position i-1 for token i
    assert torch.equal(logits, torch.stack([hidden[b, i] for b, i in predictors]))
    naive = F.cross_entropy(hidden[:, :-1].reshape(-1, 100), labels[:, 1:].reshape(-1), ignore_index=-100)
    torch.testing.assert_close(loss, naive)  # transformers' causal-LM shift, over the whole (B, T, V)


def test_masking_rates_replacements_and_a_mask_in_every_text():
    generator = torch.Generator().manual_seed(0)
    maskable = torch.ones(4000, 20, dtype=torch.bool)
    maskable[:, 0] = False
    maskable[-1] = False  # a text with nothing to mask
    chosen = choose_masked(maskable, 0.2, torch.rand(4000, 20, generator=generator))
    assert chosen[:-1, 1:].float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert not chosen[:, 0].any() and not chosen[-1].any()
    ids = torch.randint(100, 200, (4000, 20), generator=generator)
    masked, labels = mask_tokens(ids, chosen, 7, torch.rand(2, 4000, 20, generator=generator), 0.1, 0.1, 1000)
    assert torch.equal(masked[~chosen], ids[~chosen]) and (labels[~chosen] == -100).all()
    assert torch.equal(labels[chosen], ids[chosen])
    as_mask = (masked[chosen] == 7).float().mean().item()
    kept = (masked[chosen] == ids[chosen]).float().mean().item()
    assert as_mask == pytest.approx(0.8, abs=0.02) and kept == pytest.approx(0.1, abs=0.02)
    assert ((masked[chosen] >= 0) & (masked[chosen] < 1000)).all()
    few = choose_masked(maskable, 1e-9, torch.rand(4000, 20, generator=generator))
    assert (few[:-1].sum(-1) == 1).all() and not few[-1].any()  # at least one target per text that has one


@pytest.fixture(scope="module")
def synthetic():
    """The synthetic NER data module (its own tokenizer; a token task, so its words are joined by spaces)."""
    return RightContextNER(num_train=16, num_val=8, num_test=8, batch_size=4)


def encoded(encoder: MaskedTextEncoder, data, split: str) -> list[dict]:
    raw = data.load_split(split)[:]
    columns = encoder.encode(raw, list(range(len(raw["tokens"]))), split, data)
    return [dict(zip(columns, row)) for row in zip(*columns.values())]


def real_part(batch: dict, row: int) -> tuple[list[int], list[int]]:
    keep = batch["attention_mask"][row].bool()
    return batch["input_ids"][row][keep].tolist(), batch["labels"][row][keep].tolist()


def test_encoder_reads_words_as_text_and_fixes_evaluation_masks(synthetic):
    encoder = MaskedTextEncoder(probability=0.3)
    validation = encoded(encoder, synthetic, "validation")
    words = synthetic.load_split("validation")[0]["tokens"]
    assert validation[0]["input_ids"] == synthetic.tokenizer(" ".join(words))["input_ids"]
    first, second = encoder.collate(validation[:4], synthetic), encoder.collate(validation[2:6], synthetic)
    assert real_part(first, 2) == real_part(second, 0)  # the same masks whatever the batch
    assert (first["labels"] != -100).sum() > 0
    train = encoded(encoder, synthetic, "train")
    one, two = encoder.collate(train[:4], synthetic), encoder.collate(train[:4], synthetic)
    assert not torch.equal(one["labels"], two["labels"])  # new masks at every step


# ---------------------------------------------------------------------------------------------- mask token
def test_mask_token_rule_llama2(llama2_tokenizer):
    tokenizer = load_tokenizer(llama2_tokenizer)
    assert resolve_mask_token(tokenizer, None)[0] == tokenizer.unk_token_id == 0  # no mask, no free special
    assert resolve_mask_token(tokenizer, "_")[0] == tokenizer.convert_tokens_to_ids("_")  # LLM2Vec's choice
    with pytest.raises(ValueError, match="model.mask_token='no such token'"):
        resolve_mask_token(tokenizer, "no such token")


def test_mask_token_rule_minilm_and_smollm2(minilm_dir, smollm2):
    minilm = load_tokenizer(minilm_dir)
    assert resolve_mask_token(minilm, None)[0] == minilm.mask_token_id
    tokenizer = load_tokenizer(smollm2)
    token_id, why = resolve_mask_token(tokenizer, None)
    assert tokenizer.convert_ids_to_tokens(token_id) == "<repo_name>" and "special" in why
    assert token_id not in tokenizer("a text <|im_end|> with <|endoftext|> specials")["input_ids"]


# ---------------------------------------------------------------------------- label supervision from MNTP
def tiny_mntp(**kwargs) -> MaskedNextTokenModule:
    return MaskedNextTokenModule(backbone_config=TINY_LLAMA, vocab_size=VOCAB, pad_token_id=0, **kwargs)


def trained_adapter(folder: Path, **kwargs) -> MaskedNextTokenModule:
    """A tiny MNTP module whose LoRA is not a no-op (random B), saved to `folder`."""
    module = tiny_mntp(lora_target_modules=ALL_LINEAR, **kwargs)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, weight in module.named_parameters():
            if "lora_B" in name:
                weight.normal_(std=0.5)
    module.save_adapter(folder)
    return module.eval()


def tiny_ls(**kwargs) -> LabelSupervisedModule:
    kwargs = {"mask": "bidirectional", "pooling": "max", "num_labels": 3, **kwargs}
    return LabelSupervisedModule(backbone_config=TINY_LLAMA, vocab_size=VOCAB, pad_token_id=0, **kwargs).eval()


PROBE_IDS = torch.tensor([[0, 0, 5, 6, 7, 8], [9, 10, 11, 12, 13, 14]])
PROBE_MASK = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])


def test_label_supervision_starts_from_the_adapter(tmp_path):
    adapter = trained_adapter(tmp_path / "adapter")
    expected = adapter.hidden_states(PROBE_IDS, PROBE_MASK).last_hidden_state  # (B, T, H): the adapter's states
    adapted = tiny_ls(init_adapter=str(tmp_path / "adapter"))
    fresh = tiny_ls()
    fresh.head.load_state_dict(adapted.head.state_dict())  # the same head: only the backbones differ
    with torch.no_grad():
        hidden = adapted.hidden_states(PROBE_IDS, PROBE_MASK).last_hidden_state
        # merged W + BA vs W x + B(A x): equal up to float32 rounding (states of size ~3, differences ~1e-5)
        torch.testing.assert_close(hidden, expected, atol=1e-4, rtol=1e-4)
        logits = adapted(PROBE_IDS, PROBE_MASK)  # step 0: the fresh LoRA (B = 0) adds nothing yet
        torch.testing.assert_close(logits, adapted.head(expected, PROBE_MASK), atol=1e-4, rtol=1e-4)
        assert not torch.allclose(logits, fresh(PROBE_IDS, PROBE_MASK), atol=1e-3)
    assert adapted.backbone.config.merged_adapters == [str(tmp_path / "adapter")]
    assert adapted.verify_mask()  # the probe still checks the mask on the merged backbone
    lora = {n for n, p in adapted.named_parameters() if p.requires_grad}
    assert lora and all("lora_" in n or n.startswith("head.") for n in lora)  # a fresh LoRA + head train


def test_full_finetuning_from_an_adapter_trains_every_weight(tmp_path):
    trained_adapter(tmp_path / "adapter")
    module = tiny_ls(init_adapter=str(tmp_path / "adapter"), finetuning="full")
    assert all(p.requires_grad for p in module.parameters())


def test_adapter_of_a_bare_backbone_merges_the_same(tmp_path):
    """LLM2Vec saves its MNTP LoRA from the bare model (`base_model.model.layers...`); ours from the causal LM."""
    trained_adapter(tmp_path / "causal")
    bare = apply_lora(build_backbone(None, TINY_LLAMA, vocab_size=VOCAB), 16, 32, 0.0, ALL_LINEAR)
    weights = load_file(tmp_path / "causal" / "adapter_model.safetensors")
    bare_weights = {k.replace("base_model.model.model.", "base_model.model."): v for k, v in weights.items()}
    bare.load_state_dict({k.replace(".weight", ".default.weight"): v for k, v in bare_weights.items()}, strict=False)
    bare.save_pretrained(tmp_path / "bare")
    assert set(load_file(tmp_path / "bare" / "adapter_model.safetensors")) == set(bare_weights)
    from_causal = merge_adapter(build_backbone(None, TINY_LLAMA, vocab_size=VOCAB), tmp_path / "causal")
    from_bare = merge_adapter(build_backbone(None, TINY_LLAMA, vocab_size=VOCAB), tmp_path / "bare")
    plain = build_backbone(None, TINY_LLAMA, vocab_size=VOCAB).state_dict()
    for key, value in from_causal.state_dict().items():
        assert torch.equal(value, from_bare.state_dict()[key]), key
    assert not torch.equal(
        from_causal.state_dict()["layers.0.self_attn.q_proj.weight"], plain["layers.0.self_attn.q_proj.weight"]
    )


def test_adapter_keys_that_do_not_land_fail_loudly(tmp_path):
    lm = build_backbone(None, TINY_LLAMA, vocab_size=VOCAB, auto_class=AutoModelForCausalLM)
    apply_lora(lm, 4, 8, 0.0, ["q_proj", "lm_head"]).save_pretrained(tmp_path / "head")
    with pytest.raises(ValueError, match=r"outside the backbone.*lm_head"):
        merge_adapter(build_backbone(None, TINY_LLAMA, vocab_size=VOCAB), tmp_path / "head")
    trained_adapter(tmp_path / "renamed")
    file = tmp_path / "renamed" / "adapter_model.safetensors"
    weights = load_file(file)
    key = next(k for k in weights if "layers.1.self_attn.q_proj.lora_A" in k)
    weights[key.replace("q_proj", "qq_proj")] = weights.pop(key)
    save_file(weights, file)
    with pytest.raises(ValueError, match=r"1 adapter weights land nowhere.*qq_proj.*1 LoRA weights get no value"):
        merge_adapter(build_backbone(None, TINY_LLAMA, vocab_size=VOCAB), tmp_path / "renamed")
    with pytest.raises(FileNotFoundError, match="model.init_adapter"):
        merge_adapter(build_backbone(None, TINY_LLAMA, vocab_size=VOCAB), tmp_path / "missing")


def test_adapter_of_another_backbone_is_refused(tmp_path):
    trained_adapter(tmp_path / "adapter", backbone_seed=1)
    with pytest.raises(ValueError, match="trained on another backbone"):
        tiny_ls(init_adapter=str(tmp_path / "adapter"))


def test_merged_export_is_not_merged_again(tmp_path):
    trained_adapter(tmp_path / "adapter")
    module = tiny_ls(init_adapter=str(tmp_path / "adapter"), task="token", label_names=["O", "B-X", "I-X"])
    module.save_pretrained(tmp_path / "export", merge=True)
    loaded = LabelSupervisedModule.from_pretrained(tmp_path / "export")
    with torch.no_grad():
        torch.testing.assert_close(loaded(PROBE_IDS, PROBE_MASK), module(PROBE_IDS, PROBE_MASK), atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------------------------- the CLI
def test_mntp_config_trains_and_label_supervision_starts_from_its_adapter(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    csv = json.dumps([{"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(tmp_path)}}])
    stack = ["--config", TRAINER, "--config", SYNTHETIC_DATA, "--config", "configs/backbone/smollm2-135m.yaml"]
    two_steps = ["--trainer.max_steps=2", "--trainer.val_check_interval=2", "--trainer.limit_val_batches=2"]
    cli = main(["fit", *stack, "--config", "configs/adapt/mntp.yaml", *TINY, f"--trainer.logger={csv}", *two_steps])
    assert isinstance(cli.model, MaskedNextTokenModule) and cli.trainer.global_step == 2
    assert method_of(cli.config.fit) == "mntp" and cli.model.mask.name == "bidirectional"
    assert cli.datamodule.encoder is cli.model.text_encoder  # the data module batches with the model's encoder
    adapter = Path(cli.trainer.log_dir) / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert sorted(config["target_modules"]) == sorted(ALL_LINEAR) and config["r"] == 16
    checkpoint = torch.load(cli.trainer.checkpoint_callback.last_model_path, weights_only=False)
    assert checkpoint["state_dict"] and all("lora_" in key for key in checkpoint["state_dict"])
    reloaded = MaskedNextTokenModule.load_from_checkpoint(cli.trainer.checkpoint_callback.last_model_path)
    reloaded.save_adapter(tmp_path / "from_checkpoint")
    saved, again = (load_file(f / "adapter_model.safetensors") for f in (adapter, tmp_path / "from_checkpoint"))
    assert saved.keys() == again.keys() and all(torch.equal(saved[k], again[k]) for k in saved)

    fast = ["--trainer.fast_dev_run=1", "--trainer.logger=false", "--trainer.callbacks=[]"]
    start = f"--model.init_args.init_adapter={adapter}"
    ls = main(["fit", *stack, "--config", "configs/method/ls_unllama.yaml", *TINY, *fast, start])
    assert ls.trainer.global_step == 1 and method_of(ls.config.fit) == "ls_unllama"
    assert ls.model.backbone.config.merged_adapters == [str(adapter)]


def test_plain_text_config_trains_one_batch(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    texts = tmp_path / "texts.txt"
    texts.write_text("".join(f"sentence number {i} about nothing much\n" for i in range(20)))
    fast = ["--trainer.fast_dev_run=1", "--trainer.logger=false", "--trainer.callbacks=[]"]
    configs = ["configs/adapt/plain_text.yaml", "configs/backbone/smollm2-135m.yaml", "configs/adapt/mntp.yaml"]
    stack = [arg for config in [TRAINER, *configs, "configs/debug/tiny_llama.yaml"] for arg in ("--config", config)]
    cli = main(["fit", *stack, f"--data.init_args.train_file={texts}", *fast])
    assert cli.trainer.global_step == 1
    assert len(cli.datamodule.datasets["train"]) == 19 and len(cli.datamodule.datasets["validation"]) == 1
    with pytest.raises(ValueError, match="data.init_args.test_file"):
        PlainText(train_file=str(texts)).load_split("test")


# ------------------------------------------------------------------------------------------ the experiment
def test_seed_placeholder_in_suite_overrides(tmp_path):
    run = {"id": "x", "configs": [TRAINER], "fit_overrides": ["--model.init_args.init_adapter=a/x-s{seed}/adapter"]}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "seeds": [0, 3], "runs": [run]}))
    runs = load_suite(path, tmp_path).runs
    assert [r.fit_overrides for r in runs] == [[f"--model.init_args.init_adapter=a/x-s{s}/adapter"] for s in (0, 3)]
    path.write_text(yaml.safe_dump({"name": "t", "runs": [run]}))
    with pytest.raises(SuiteError, match=r"fit_overrides: '\{seed\}' needs seeds"):
        load_suite(path, tmp_path)


def _option(overrides: list[str], name: str) -> str | None:
    found = [o.split("=", 1)[1] for o in overrides if o.startswith(f"--model.init_args.{name}=")]
    return found[0] if found else None


def test_every_mntp_arm_reads_an_adapter_that_stage_one_writes_on_the_same_data():
    adapt = load_suite(ROOT / "experiments/mntp/adapt.yaml")
    suite = load_suite(ROOT / "experiments/mntp/suite.yaml")
    written = {_option(r.overrides + r.fit_overrides, "adapter_dir"): r for r in adapt.runs}
    arms = [r for r in suite.runs if _option(r.overrides, "init_adapter")]
    assert len(arms) == len(adapt.runs) == 12  # 4 budgets x 3 seeds
    data_options = re.compile(r"--data\.init_args\.(max_train_examples|max_length|seed)=")
    for arm in arms:
        stage_one = written[_option(arm.overrides, "init_adapter")]
        assert stage_one.seed == arm.seed
        assert stage_one.configs[0] == arm.configs[0]  # the same data config
        same = [o for o in stage_one.overrides + stage_one.fit_overrides if data_options.match(o)]
        assert sorted(same) == sorted(o for o in arm.overrides + arm.fit_overrides if data_options.match(o))
