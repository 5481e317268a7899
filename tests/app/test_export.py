"""Checkpoints hold only trained weights and load anywhere; exported folders give the model's own logits."""

from __future__ import annotations

import json
from functools import partial

import pytest
import torch
from helpers import module_for, quick, randomize_trained, synthetic_module
from lightning.pytorch import Trainer
from peft import PeftModel
from transformers import AutoModel, AutoModelForSequenceClassification, AutoModelForTokenClassification

from app.checkpointing import AtomicCheckpointIO
from app.export import main as export_main
from core.hub import load_tokenizer
from datamodules import EarlyCueClassification, RightContextNER
from datamodules.synthetic import build_tokenizer
from lightning_modules import BidirectionalFromLayer, BidirectionalMask, LabelSupervisedModule, MeanPooling
from main import main

TEXTS = ["goal ba ko ti", "vote", "atom lu mo sa ne di fa po gu zor", "song ba"]
SENTENCES = [["zorxa", "inc", "ba"], ["ko"], ["wimjun", "kraqui", "city", "ti", "re", "lu"]]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one thread is several times faster than two on a busy machine, and reproducible."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_module(task: str = "sequence", **kwargs) -> LabelSupervisedModule:
    """A tiny LoRA LLaMA whose adapters and head are random (a zero LoRA B would hide a lost adapter)."""
    return randomize_trained(synthetic_module(task, **kwargs))


def right_padded(module: LabelSupervisedModule, source: str | None = None) -> dict[str, torch.Tensor]:
    """A right-padded batch of the test texts, tokenized by `source` (default: the synthetic task's tokenizer)."""
    tokenizer = load_tokenizer(source or build_tokenizer(), padding_side="right")
    texts = TEXTS if module.task == "sequence" else [" ".join(words) for words in SENTENCES]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    assert not batch["attention_mask"].all()  # padding present
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


@torch.no_grad()
def logits(module: LabelSupervisedModule, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return module.eval()(**batch)


# ------------------------------------------------------------------------------------------- checkpoints
def test_cli_checkpoint_holds_only_trained_weights_and_loads_anywhere(tmp_path):
    cli = main(
        [
            "fit",
            *quick("early_cue", "ls_llama"),
            "--config=configs/debug/tiny_llama.yaml",
            "--model.finetuning=lora",
            "--data.init_args.num_train=32",
            "--data.init_args.num_val=8",
            "--trainer.max_steps=2",
            "--trainer.logger=false",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_checkpointing=true",
            "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
            f"--trainer.callbacks.dirpath={tmp_path}",
        ]
    )
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)  # installed by ResumableTraining
    path = next(tmp_path.glob("*.ckpt"))
    checkpoint = torch.load(path, weights_only=True)  # plain tensors and containers only
    trainable = {n for n, p in cli.model.named_parameters() if p.requires_grad}
    assert set(checkpoint["state_dict"]) == trainable
    assert all("lora_" in n or n.startswith("head.") for n in trainable)
    stored = sum(t.numel() * t.element_size() for t in checkpoint["state_dict"].values())
    total = sum(p.numel() * p.element_size() for p in cli.model.parameters())
    assert stored < total / 5
    print(f"checkpoint {path.stat().st_size} bytes: {stored} of trained weights, model {total} bytes")
    loaded = LabelSupervisedModule.load_from_checkpoint(path)
    batch = right_padded(loaded)
    torch.testing.assert_close(logits(loaded, batch), logits(cli.model, batch), rtol=0, atol=0)


def test_python_checkpoint_loads_with_load_from_checkpoint(tmp_path):
    data = EarlyCueClassification(num_train=16, num_val=4, batch_size=8)
    module = module_for(
        data,
        optimizer=partial(torch.optim.SGD, lr=0.1),  # a Python callable: not stored, the default is used on reload
        verify_mask=False,
    )
    trainer = Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(module, data)
    trainer.save_checkpoint(tmp_path / "python.ckpt")
    loaded = LabelSupervisedModule.load_from_checkpoint(tmp_path / "python.ckpt")
    batch = right_padded(loaded)
    torch.testing.assert_close(logits(loaded, batch), logits(module, batch), rtol=0, atol=0)


# ----------------------------------------------------------------------------------------------- export
def test_adapter_export_loads_with_from_pretrained_and_peft(tmp_path):
    module = tiny_module(lora_dropout=0.1, head_dropout=0.1)
    folder = module.save_pretrained(tmp_path / "adapter", tokenizer=build_tokenizer())
    files = {p.name for p in folder.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "head.safetensors", "ls_llama.json"} <= files
    assert "README.md" not in files  # peft's blank template is dropped (app.export writes the model card)
    assert "tokenizer.json" in files
    config = json.loads((folder / "ls_llama.json").read_text())
    assert config["format"] == "adapter" and config["model"]["label_names"] == module.label_names
    loaded = LabelSupervisedModule.from_pretrained(folder)
    batch = right_padded(module)
    torch.testing.assert_close(logits(loaded, batch), logits(module, batch), rtol=0, atol=1e-6)
    # plain peft reads the adapter onto the same base backbone
    base = LabelSupervisedModule(**{**config["model"], "finetuning": "head"}).backbone
    peft_model = PeftModel.from_pretrained(base, folder).eval()
    with torch.no_grad():
        states = peft_model(**batch, position_ids=module.position_ids(batch["attention_mask"])).last_hidden_state
        ours = module.hidden_states(**batch).last_hidden_state
    torch.testing.assert_close(states, ours, rtol=0, atol=1e-6)


@pytest.mark.parametrize("mask", [None, BidirectionalMask()], ids=["causal", "bidirectional"])
def test_merged_sequence_export_is_a_transformers_classifier(tmp_path, mask):
    module = tiny_module(mask=mask)
    folder = module.save_pretrained(tmp_path / "merged", merge=True)
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"]
    assert config["id2label"] == {str(i): n for i, n in enumerate(module.label_names)}
    assert config["is_causal"] is (mask is None)
    hf = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    assert hf.config.is_causal is (mask is None)
    batch = right_padded(module)
    with torch.no_grad():
        torch.testing.assert_close(hf(**batch).logits, logits(module, batch), rtol=0, atol=1e-5)
    reloaded = LabelSupervisedModule.from_pretrained(folder)  # the same folder through our class
    torch.testing.assert_close(logits(reloaded, batch), logits(module, batch), rtol=0, atol=1e-5)


def test_merged_token_export_is_a_transformers_token_classifier(tmp_path):
    module = tiny_module("token", mask=BidirectionalMask())
    folder = module.save_pretrained(tmp_path / "merged", merge=True)
    hf = AutoModelForTokenClassification.from_pretrained(folder).eval()
    batch = right_padded(module)
    real = batch["attention_mask"].bool()
    with torch.no_grad():
        torch.testing.assert_close(hf(**batch).logits[real], logits(module, batch)[real], rtol=0, atol=1e-5)


@pytest.mark.parametrize("kwargs", [{"pooling": MeanPooling()}, {"mask": BidirectionalFromLayer(1)}])
def test_remote_code_export_loads_with_from_pretrained(tmp_path, kwargs):
    module = tiny_module(**kwargs)
    folder = module.save_pretrained(tmp_path / "merged", merge=True)
    assert json.loads((folder / "ls_llama.json").read_text())["format"] == "remote_code"
    assert json.loads((folder / "config.json").read_text())["model_type"] == "ls_llama"
    assert not (folder / "backbone").exists()  # one copy of the weights: model.safetensors
    loaded = LabelSupervisedModule.from_pretrained(folder)
    assert not any("lora_" in name for name, _ in loaded.named_parameters())
    batch = right_padded(module)
    torch.testing.assert_close(logits(loaded, batch), logits(module, batch), rtol=0, atol=1e-5)
    # training on: a fresh LoRA over the exported weights (its base layers get them), the same logits at the start
    again = LabelSupervisedModule.from_pretrained(folder, finetuning="lora")
    assert any("lora_" in name for name, _ in again.named_parameters())
    torch.testing.assert_close(logits(again, batch), logits(module, batch), rtol=0, atol=1e-5)


class TwoEndsPooling(MeanPooling):
    """A pooling of our own (the mean of the first and last real token), unknown to the shipped modeling code."""

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(hidden.shape[0])
        last = (torch.arange(hidden.shape[1]) * attention_mask.bool()).argmax(1)
        return (hidden[rows, attention_mask.int().argmax(1)] + hidden[rows, last]) / 2


def test_merged_export_of_an_own_pooling_keeps_the_backbone_folder(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("LS_LLAMA_ALLOWED_CLASS_PATHS", TwoEndsPooling.__module__)
    module = tiny_module(pooling=TwoEndsPooling())
    with caplog.at_level("WARNING"):
        folder = module.save_pretrained(tmp_path / "own", merge=True)
    assert "pipeline() cannot" in caplog.text
    assert json.loads((folder / "ls_llama.json").read_text())["format"] == "merged"
    loaded = LabelSupervisedModule.from_pretrained(folder)
    batch = right_padded(module)
    torch.testing.assert_close(logits(loaded, batch), logits(module, batch), rtol=0, atol=1e-5)
    plain = AutoModel.from_pretrained(folder / "backbone").eval()  # a plain transformers backbone, merged weights
    with torch.no_grad():
        states = plain(**batch, position_ids=module.position_ids(batch["attention_mask"])).last_hidden_state
        torch.testing.assert_close(states, module.hidden_states(**batch).last_hidden_state, rtol=0, atol=1e-5)


def test_bert_token_export_is_a_transformers_token_classifier(tmp_path, minilm_dir):
    tokenizer = load_tokenizer(minilm_dir)
    labels = RightContextNER.default_label_names
    module = LabelSupervisedModule(
        backbone=minilm_dir,
        task="token",
        num_labels=len(labels),
        label_names=labels,
        pad_token_id=tokenizer.pad_token_id,
        vocab_size=len(tokenizer),
        lora_target_modules=["query", "value"],
        verify_mask=False,
    )
    for name, parameter in module.named_parameters():
        if parameter.requires_grad:
            parameter.data.normal_(0, 0.05)
    folder = module.save_pretrained(tmp_path / "bert", merge=True)
    hf = AutoModelForTokenClassification.from_pretrained(folder).eval()
    batch = right_padded(module.eval(), minilm_dir)
    real = batch["attention_mask"].bool()
    with torch.no_grad():
        torch.testing.assert_close(hf(**batch).logits[real], module(**batch)[real], rtol=0, atol=1e-5)


def test_export_command_from_a_checkpoint(tmp_path):
    module = tiny_module()
    trainer = Trainer(logger=False, enable_progress_bar=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    folder = export_main(
        ["--ckpt_path", str(tmp_path / "model.ckpt"), "--output_dir", str(tmp_path / "out"), "--merge"]
    )
    hf = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    batch = right_padded(module)
    with torch.no_grad():
        torch.testing.assert_close(hf(**batch).logits, logits(module, batch), rtol=0, atol=1e-5)


@pytest.mark.slow
def test_gguf_backbone_exports_merged_and_adapter(tmp_path, smollm2):
    tokenizer = load_tokenizer(smollm2, padding_side="right")  # transformers' classifier numbers positions 0..T-1
    module = LabelSupervisedModule(
        backbone=smollm2,
        task="sequence",
        num_labels=2,
        label_names=["negative", "positive"],
        pad_token_id=tokenizer.pad_token_id,
        vocab_size=len(tokenizer),
        verify_mask=False,
    )
    for parameter in module.parameters():
        if parameter.requires_grad:
            parameter.data.normal_(0, 0.02)
    batch = tokenizer(["a fine film", "dull, overlong and badly acted"], padding=True, return_tensors="pt")
    batch = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    expected = logits(module, batch)
    adapter = LabelSupervisedModule.from_pretrained(module.save_pretrained(tmp_path / "adapter"))
    torch.testing.assert_close(logits(adapter, batch), expected, rtol=0, atol=1e-4)
    folder = module.save_pretrained(tmp_path / "merged", merge=True)
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    hf = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        torch.testing.assert_close(hf(**batch).logits, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize(("finetuning", "kind"), [("head", "head"), ("full", "hf")])
def test_head_only_and_full_finetuning_export_formats(tmp_path, finetuning, kind):
    module = tiny_module(finetuning=finetuning)
    folder = module.save_pretrained(tmp_path / finetuning)
    assert json.loads((folder / "ls_llama.json").read_text())["format"] == kind
    assert not (folder / "adapter_model.safetensors").exists()
    loaded = LabelSupervisedModule.from_pretrained(folder)
    batch = right_padded(module)
    torch.testing.assert_close(logits(loaded, batch), logits(module, batch), rtol=0, atol=1e-5)


def test_export_help_says_what_merge_writes(capsys):
    with pytest.raises(SystemExit):
        export_main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "standard HF folder" not in text
    for option in ("--merge", "--metrics", "--push_to_hub", "--private", "trust_remote_code=True", "pipeline()"):
        assert option in text
