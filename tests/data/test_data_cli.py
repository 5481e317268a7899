"""Every shipped data config: builds, and (for the shared datasets) trains a tiny LLaMA a few steps from the CLI."""

from __future__ import annotations

import importlib
import json

import pytest
import yaml
from helpers import ROOT, SHARED_DATA, TINY_LLAMA

from main import main

DATA_CONFIGS = sorted((ROOT / "configs" / "data").glob("*.yaml"))


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory):
    return str(tmp_path_factory.getbasetemp() / "ls-llama-data-cache")


@pytest.mark.parametrize("config", DATA_CONFIGS, ids=lambda p: p.stem)
def test_data_configs_build_their_data_module(config):
    """Class path and arguments are valid (hub-backed configs too: nothing is loaded when a module is built)."""
    text = config.read_text()
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert text.startswith("#") and any("  python main.py " in line for line in header)  # the launch command
    spec = yaml.safe_load(text)["data"]
    module, name = spec["class_path"].rsplit(".", 1)
    data = getattr(importlib.import_module(module), name)(tokenizer="unused", **spec["init_args"])
    assert data.num_labels == len(data.label_names) > 1


def cli(subcommand, config, tmp_path, tokenizer, cache, *extra):
    return main(
        [
            subcommand,
            "--config",
            str(ROOT / "configs" / "data" / config),
            f"--model.backbone_config={json.dumps(TINY_LLAMA)}",
            f"--data.init_args.tokenizer={tokenizer}",
            f"--data.init_args.cache_dir={cache}",
            "--data.init_args.max_train_examples=8",
            "--data.init_args.max_eval_examples=16",  # one epoch = 2 steps
            "--data.init_args.batch_size=4",
            "--data.init_args.max_length=48",
            "--trainer.max_steps=2",
            "--trainer.limit_val_batches=2",
            "--trainer.limit_test_batches=2",
            "--trainer.num_sanity_val_steps=0",
            "--trainer.logger=false",
            "--trainer.enable_checkpointing=false",
            "--trainer.accelerator=cpu",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
            f"--trainer.default_root_dir={tmp_path}",
            *extra,
        ]
    )


SHARED_RUNS = [
    ("sst2.yaml", "sst2", "sequence", 2),
    ("sst5.yaml", "sst5", "sequence", 5),
    ("twitter_fin.yaml", "twitter_fin", "sequence", 3),
    ("conll2003.yaml", "conll2003", "token", 9),
    ("ontonotes5.yaml", "ontonotes5", "token", 37),
]


@pytest.mark.parametrize(("config", "folder", "task", "num_labels"), SHARED_RUNS, ids=[r[1] for r in SHARED_RUNS])
def test_fit_a_few_steps_on_each_shared_dataset(
    config, folder, task, num_labels, tmp_path, llama2_tokenizer, data_cache
):
    if not (SHARED_DATA / folder).exists():
        pytest.skip(f"{SHARED_DATA / folder} is absent")
    run = cli("fit", config, tmp_path, llama2_tokenizer, data_cache)
    assert run.trainer.state.finished and run.trainer.global_step == 2
    assert run.model.hparams.task == task and run.model.hparams.num_labels == num_labels
    assert run.model.hparams.label_names == run.datamodule.label_names
    assert "val/score" in run.trainer.callback_metrics
    assert len(run.datamodule.datasets["train"]) == 8 and len(run.datamodule.datasets["validation"]) == 16
    assert "test" not in run.datamodule.datasets  # fitting never touches the test split


def test_agnews_test_only_folder_runs_test_and_refuses_fit(tmp_path, llama2_tokenizer, data_cache):
    if not (SHARED_DATA / "agnews_partial").exists():
        pytest.skip(f"{SHARED_DATA / 'agnews_partial'} is absent")
    run = cli("test", "agnews_local_test.yaml", tmp_path, llama2_tokenizer, data_cache)
    assert run.trainer.state.finished and "test/score" in run.trainer.callback_metrics
    assert run.model.hparams.label_names == ["World", "Sports", "Business", "Sci/Tech"]
    with pytest.raises(FileNotFoundError, match=r"train_texts\.txt: file not found.*hub"):
        cli("fit", "agnews_local_test.yaml", tmp_path, llama2_tokenizer, data_cache)


def test_data_help_documents_the_base_arguments(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--data.help", "OntoNotes5"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for argument in (
        "--data.lsllama_official",
        "--data.separator",
        "--data.cache_dir",
        "--data.tokenizer",
        "--data.max_length",
        "--data.batch_size",
        "--data.max_train_examples",
    ):
        assert argument in out
    assert "first-token-only" in out  # docstrings become --help


@pytest.mark.parametrize("name", ["SST5", "TwitterFin", "CoNLL2003"])
def test_data_help_documents_the_split_and_encoding_options_of_every_file_dataset(name, capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--data.help", name])
    out = " ".join(capsys.readouterr().out.split())
    for argument in ("--data.validation_fraction", "--data.validation_seed", "--data.encoding"):
        assert argument in out
    assert "part of train held out as `validation`" in out and "text encoding of the files read from disk" in out
