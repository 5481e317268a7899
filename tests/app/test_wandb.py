"""W&B runs that make comparisons easy (`app.wandb_runs`): one run per trained model, holding its settings, curves,
best validation score and step, and test metrics; none for `predict`. Runs are trained tiny and offline, and what
they logged is read back from their offline folders (`wandb_offline`)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from helpers import ROOT, quick
from lightning.pytorch.loggers import WandbLogger
from suite_helpers import write_tiny_suite
from wandb_offline import offline_runs

from app.wandb_runs import WandbRuns, drop_wandb_loggers
from experiments import quickstart
from experiments.suite import Options, command, load_suite, run_suite
from main import main

TINY = ["--data.init_args.num_train=48", "--data.init_args.num_val=16", "--data.init_args.num_test=16"]
TINY += ["--trainer.max_steps=4", "--trainer.log_every_n_steps=1", "--model.verify_mask=false"]
TINY += ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


@pytest.fixture(scope="module")
def suite_runs(tmp_path_factory) -> Path:
    """The tiny suite (causal and bidirectional LLaMA): fit then test each, in this process, W&B offline."""
    folder = tmp_path_factory.mktemp("wandb_suite")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")
        patch.setenv("WANDB_SILENT", "true")
        suite = load_suite(write_tiny_suite(folder), folder / "runs")
        outcome = run_suite(suite, Options(wandb="offline", in_process=True, fail_fast=True))
    assert not outcome["failed"], outcome["failed"]
    return folder / "runs"


def stages(run_dir: Path) -> list:
    """The offline W&B folders of a suite run, oldest first (fit, then test)."""
    return offline_runs(run_dir / "wandb")


def test_each_model_trained_in_one_process_gets_its_own_run(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    results = quickstart.run("token", TINY, out_dir=str(tmp_path))
    runs = offline_runs(tmp_path)
    assert len(runs) == 2 and runs[0].id != runs[1].id
    assert {r.id for r in runs} == {result["wandb_run"] for result in results.values()}
    assert [r.config["method"] for r in runs] == ["ls_llama", "ls_unllama"]
    for run in runs:
        assert {"train/loss", "val/loss", "val/score", "trainer/global_step"} <= run.history_keys()


def test_config_says_what_was_trained_on_which_data_with_which_budget(suite_runs):
    fit = stages(suite_runs / "causal")[0]
    config = fit.config
    assert config["method"] == "ls_llama" and config["seed"] == 0
    assert config["run"] == {
        **{tag.split(":", 1)[0]: tag.split(":", 1)[1] for tag in fit.tags},  # every key:value tag, as config
        "dataset": "right_context_ner",
        "mask": "causal",
        "pooling": "tokens",
        "task": "token",
        "method": "ls_llama",
        "suite": "tiny",
        "run": "causal",
    }
    assert config["data"]["class"] == "datamodules.synthetic.RightContextNER"
    assert config["data"]["name"] == "right_context_ner"
    assert (config["data"]["train_size"], config["data"]["val_size"]) == (32, 16)
    assert config["data"]["batch_size"] == 8 and config["data"]["max_train_examples"] is None
    assert config["trainer"]["max_epochs"] == 2 and config["trainer"]["precision"] == "32-true"
    assert config["paper"] == {
        "key": "conll2003/llama2-7b/ls_llama",
        "score": 74.76,
        "source": "Table 4, LS-LLaMA-2-7B, CoNLL2003",
    }
    assert config["lora_r"] == 12  # the model's own hyper-parameters, as Lightning logs them
    assert stages(suite_runs / "bidirectional")[0].config["method"] == "ls_unllama"


def test_summary_keeps_the_best_validation_score_and_the_step_of_the_best_checkpoint(suite_runs):
    fit = stages(suite_runs / "causal")[0]
    scores = [row["val/score"] for row in fit.history if "val/score" in row]
    assert len(scores) == 2  # one validation per epoch
    assert fit.summary["val/score"] == {"max": max(scores)}
    assert fit.summary["best/val_score"] == pytest.approx(max(scores))
    best_ckpt = json.loads((suite_runs / "causal" / "fit_done.json").read_text())["best_ckpt"]
    epoch, step = map(int, re.search(r"epoch=(\d+)-step=(\d+)", best_ckpt).groups())
    assert (fit.summary["best/epoch"], fit.summary["best/step"]) == (epoch, step)
    assert fit.metrics["val/score"]["summary"] == ["max"] and fit.metrics["val/loss"]["summary"] == ["min"]
    assert fit.metrics["*"]["step_metric"] == "trainer/global_step"


def test_best_is_the_maximum_not_the_last_validation(tmp_path):
    """Driven by hand: three validations 0.2, 0.7, 0.4 leave 0.7 (and its step) in the summary, not 0.4."""
    logger = WandbLogger(save_dir=str(tmp_path), project="test", offline=True)
    trainer = SimpleNamespace(
        loggers=[logger], is_global_zero=True, sanity_checking=False, state=SimpleNamespace(fn="fit")
    )
    callback = WandbRuns()
    callback.setup(trainer, None, "fit")
    for epoch, (step, score) in enumerate([(10, 0.2), (20, 0.7), (30, 0.4)]):
        logger.log_metrics({"val/score": score}, step=step)
        trainer.callback_metrics, trainer.global_step, trainer.current_epoch = {"val/score": score}, step, epoch
        callback.on_validation_end(trainer, None)
    callback.teardown(trainer, None, "fit")
    (run,) = offline_runs(tmp_path)
    assert run.summary["val/score"] == {"max": 0.7}
    assert (run.summary["best/val_score"], run.summary["best/step"], run.summary["best/epoch"]) == (0.7, 20, 1)
    assert callback.state_dict()["best"]["best/val_score"] == 0.7  # kept in checkpoints for a resumed fit or test


def test_fit_and_test_of_a_suite_run_are_one_wandb_run(suite_runs):
    for run_id in ("causal", "bidirectional"):
        run_dir = suite_runs / run_id
        fit, test = stages(run_dir)
        assert fit.id == test.id == (run_dir / "wandb_id").read_text().strip()
        result = json.loads((run_dir / "result.json").read_text())["test"]
        per_type = {k for k in result if k.startswith("test/f1_")}
        assert per_type == {"test/f1_LOC", "test/f1_MISC", "test/f1_ORG", "test/f1_PER"}
        for key in ["test/score", "test/precision", "test/recall", *per_type]:
            assert test.summary[key] == pytest.approx(result[key]), key
        # the test's part holds the fit's description (from the checkpoint) and the test split's size
        assert (test.config["data"]["train_size"], test.config["data"]["test_size"]) == (32, 24)
        assert test.config["trainer"]["max_epochs"] == 2  # the fit's budget, not the test command's default
        assert test.summary["best/val_score"] == fit.summary["best/val_score"]


def test_fit_then_test_in_one_process_continue_one_run(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    cli = main(["fit", *quick(), *quickstart.logger_override(str(tmp_path)), *TINY])
    cli.trainer.test(cli.model, datamodule=cli.datamodule)
    fit, test = offline_runs(tmp_path)
    assert fit.id == test.id and "test/score" in test.summary and "test/score" not in fit.summary


def test_predict_makes_no_wandb_run(suite_runs, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    suite = load_suite(suite_runs.parent / "suite.yaml", suite_runs)
    run = next(r for r in suite.runs if r.id == "causal")
    best = json.loads((suite_runs / "causal" / "fit_done.json").read_text())["best_ckpt"]
    overlay = suite_runs / "causal" / "logging_test.yaml"
    assert "WandbLogger" in overlay.read_text()  # the overlay asks for W&B; predict leaves it out
    texts = tmp_path / "texts.txt"
    texts.write_text("zorxa vexjun inc went home\nthe city of vexjun\n")
    before = len(stages(suite_runs / "causal"))
    args = ["predict", *command(suite, run, "test", overlay, best)[1:]]
    main([*args, f"--data.init_args.predict_file={texts}", f"--prediction.output_file={tmp_path / 'out.jsonl'}"])
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2
    assert len(stages(suite_runs / "causal")) == before


def test_drop_wandb_loggers_keeps_other_loggers_and_other_subcommands():
    from jsonargparse import Namespace

    def config():
        loggers = yaml.safe_load(
            "[{class_path: lightning.pytorch.loggers.CSVLogger}, {class_path: lightning.pytorch.loggers.WandbLogger}]"
        )
        return Namespace(trainer=Namespace(logger=[Namespace(**item) for item in loggers]))

    predict, fit = config(), config()
    drop_wandb_loggers(predict, "predict")
    drop_wandb_loggers(fit, "fit")
    assert [item.class_path.rsplit(".", 1)[1] for item in predict.trainer.logger] == ["CSVLogger"]
    assert len(fit.trainer.logger) == 2
    only_wandb = Namespace(trainer=Namespace(logger=Namespace(class_path="lightning.pytorch.loggers.WandbLogger")))
    drop_wandb_loggers(only_wandb, "predict")
    assert only_wandb.trainer.logger is False
