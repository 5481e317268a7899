"""The W&B dashboard built by code (experiments/dashboard.py), checked offline against a real offline run: every
panel, grouping, filter and column names a key that our runs log. And the learning-rate sweep: the W&B sweep and
its suite twin hold the same grid, and the configs they name exist and parse with that learning rate."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from helpers import ROOT
from suite_helpers import write_tiny_suite
from wandb_offline import offline_runs

from app.wandb_runs import data_description
from experiments import dashboard
from experiments.suite import Options, load_suite, run_suite
from main import LabelSupervisedCLI, main

SWEEP = ROOT / "experiments" / "sweeps" / "lr_grid.yaml"
SWEEP_SUITE = ROOT / "experiments" / "sweeps" / "lr_grid_suite.yaml"
LR = "model.optimizer.init_args.lr"
PAPER_DATASETS = ["sst2", "sst5", "agnews", "twitter_fin", "amazon_reviews", "conll2003", "ontonotes5"]  # Tables 2-4


@pytest.fixture(scope="module")
def logged(tmp_path_factory) -> dict[str, set[str]]:
    """What the tiny suite's runs (fit + test, offline W&B) logged: history, summary and config keys, and tags."""
    folder = tmp_path_factory.mktemp("dashboard_suite")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")
        patch.setenv("WANDB_SILENT", "true")
        suite = load_suite(write_tiny_suite(folder, max_epochs=1), folder / "runs")
        assert not run_suite(suite, Options(wandb="offline", in_process=True, fail_fast=True))["failed"]
    runs = offline_runs(folder / "runs")
    assert len(runs) == 4  # two models, each a fit and a test part
    return {
        "history": set().union(*(r.history_keys() for r in runs)),
        "summary": set().union(*(r.summary for r in runs)),
        "config": set().union(*(r.config_keys() for r in runs)),
        "tags": set().union(*(r.tags for r in runs)),
        "methods": {r.config["method"] for r in runs},
    }


def wire_config_key(name: str) -> str:
    """A config key's W&B wire name back to ours: `run.value.dataset` -> `run.dataset`, `method.value` -> `method`."""
    first, _, rest = name.partition(".value")
    return first + rest


def check_column(column: str, logged: dict[str, set[str]]) -> None:
    section, _, name = column.partition(":")
    if section == "summary":
        assert name in logged["summary"], column
    elif section == "config":
        assert wire_config_key(name) in logged["config"], column
    else:
        assert column == "run:displayName", column


def nodes(tree: Any, kind: str) -> list[dict[str, Any]]:
    """Every described object of type `kind` in a `dashboard.describe` tree."""
    if isinstance(tree, list):
        return [n for item in tree for n in nodes(item, kind)]
    if not isinstance(tree, dict):
        return []
    own = [tree] if tree.get("type") == kind else []
    return own + [n for value in tree.values() for n in nodes(value, kind)]


def test_workspace_panels_groups_filters_and_columns_name_logged_keys(logged):
    spec = dashboard.spec("ls-llama", None, "tiny")
    view = spec["workspace_wire"]["spec"]["section"]
    panels = [p for section in view["panelBankConfig"]["sections"] for p in section["panels"]]
    lines = [p["config"] for p in panels if p["viewType"] == "Run History Line Plot"]
    bars = [p["config"] for p in panels if p["viewType"] == "Bar Chart"]
    assert {m for c in lines for m in c["metrics"]} == {"train/loss", "val/loss", "val/score"}
    for config in lines:
        assert config["xAxis"] == "trainer/global_step" and set(config["metrics"]) <= logged["history"]
    assert {m for c in bars for m in c["metrics"]} == {"test/score", "best/val_score"}
    assert {m for c in bars for m in c["metrics"]} <= logged["summary"]
    assert [wire_config_key(c["groupBy"]) for c in bars if "groupBy" in c] == ["run.pooling"]  # the ablation
    (runset,) = view["runSets"]
    groups = [wire_config_key(g["name"]) for g in runset["grouping"]]
    assert groups == ["run.dataset", "method", "run.backbone"] and set(groups) <= logged["config"]
    (tag_filter,) = runset["filters"]["filters"]
    assert tag_filter["key"] == {"section": "run", "name": "tags"} and tag_filter["value"] == ["suite:tiny"]
    assert "suite:tiny" in logged["tags"]
    for column in runset["runFeed"]["columnOrder"]:
        check_column(column, logged)
    assert "config:paper.value.score" in runset["runFeed"]["columnOrder"]  # the paper's number beside ours


def test_report_per_dataset_grids_and_paper_tables_name_logged_keys(logged):
    report = dashboard.spec("ls-llama", "me", "tiny")["report"]
    grids = nodes(report, "PanelGrid")
    names = [grid["runsets"][0]["name"] for grid in grids]
    assert names == [*PAPER_DATASETS, "sst2 pooling", "sst5 pooling"]
    for grid in grids:
        (runset,) = grid["runsets"]
        assert runset["entity"] == "me" and runset["project"] == "ls-llama"
        for key in re.findall(r"Config\('([^']+)'\)", runset["filters"]):
            assert key in logged["config"], runset["filters"]
        assert set(re.findall(r"Tags in \['([^']+)'\]", runset["filters"])) == {"suite:tiny"}
        for group in runset["groupby"]:
            key = group.removeprefix("config.")
            # `data.languages` is logged by the Amazon reviews data module only (the tiny run's has none)
            assert key in logged["config"] or key == "data.languages", group
        for column in runset["pinned_columns"]:
            check_column(column, logged)
    for plot in nodes(report, "LinePlot"):
        assert plot["x"] == "trainer/global_step" and set(plot["y"]) <= logged["history"]
    for plot in nodes(report, "BarPlot"):
        assert set(plot["metrics"]) <= logged["summary"]
    pooling_filter = grids[-1]["runsets"][0]["filters"]
    assert "Config('method') in ['ls_llama', 'ls_unllama']" in pooling_filter
    assert {"ls_llama", "ls_unllama"} <= logged["methods"]  # the method values the filter names are ours


def test_data_languages_is_logged_for_amazon_reviews():
    from datamodules import AmazonReviews

    assert data_description(AmazonReviews(languages=["de"]))["languages"] == ["de"]


def test_report_puts_the_papers_numbers_beside_each_dataset():
    report = dashboard.spec("ls-llama", "me", None)["report"]
    texts = [block["text"] for block in nodes(report, "MarkdownBlock")]
    conll = next(t for t in texts if "`conll2003/llama2-7b/ls_unllama`" in t)
    assert "| Table 4, LS-unLLaMA-2-7B, CoNLL2003 | `conll2003/llama2-7b/ls_unllama` | 93.19 |" in conll
    assert "| — |" in conll  # GPT-3.5-Turbo on CoNLL-2003: not reported
    amazon = next(t for t in texts if "amazon_reviews_de" in t)
    assert all(f"amazon_reviews_{lang}/" in amazon for lang in ("de", "en", "es", "zh"))
    pooling = [t for t in texts if "pooling_max" in t]
    assert len(pooling) == 2 and "97.36" in pooling[0] and "60.50" in pooling[1]  # SST-2, SST-5 LS-unLLaMA max
    assert "Tags in" not in json.dumps(nodes(report, "Runset"))  # no suite given: every run of the project


def test_dry_run_writes_the_spec_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # any network use would fail
    out = tmp_path / "spec.json"
    dashboard.main(["--project", "ls-llama", "--suite", "tiny", "--dry-run", "--out", str(out)])
    spec = json.loads(out.read_text())
    assert spec["workspace"]["name"] == "LS-LLaMA comparison (tiny)"
    assert spec["report"]["title"] == "LS-LLaMA vs LS-unLLaMA vs BERT (tiny)"


# -------------------------------------------------------------------------------------------------- the sweep
class _Stop(Exception):
    pass


def cli_parser(monkeypatch) -> Any:
    """The parser of `main.py`'s CLI, as `main()` builds it."""

    def stop(self, parser, args) -> None:
        raise _Stop(parser)

    monkeypatch.setattr(LabelSupervisedCLI, "parse_arguments", stop)
    with pytest.raises(_Stop) as stopped:
        main(["fit"])
    return stopped.value.args[0]


def test_sweep_and_its_suite_hold_the_same_grid_and_configs(monkeypatch):
    monkeypatch.chdir(ROOT)
    sweep = yaml.safe_load(SWEEP.read_text())
    assert sweep["program"] == "main.py" and sweep["method"] == "grid"
    assert sweep["metric"] == {"name": "best/val_score", "goal": "maximize"}
    grid = sweep["parameters"][LR]["values"]
    assert 8e-5 in grid and min(grid) == 1e-5 and max(grid) == 2e-4
    command = sweep["command"]
    assert command[:4] == ["${env}", "${interpreter}", "${program}", "fit"] and command[-1] == "${args}"
    configs = [arg.removeprefix("--config=") for arg in command[4:-1]]
    assert all((ROOT / c).is_file() for c in configs), configs
    suite = load_suite(SWEEP_SUITE)  # checks that its config files exist
    assert {tuple([*suite.base_configs, *r.configs]) for r in suite.runs} == {tuple(configs[:-1])}
    suite_grid = [float(o.split("=", 1)[1]) for r in suite.runs for o in r.overrides if o.startswith(f"--{LR}=")]
    assert suite_grid == grid and len(suite.runs) == len(grid)
    # what an agent runs parses, with the grid's learning rate (configs/debug/tiny_llama.yaml: no hub download)
    args = ["fit", *(f"--config={c}" for c in configs), "--config=configs/debug/tiny_llama.yaml", f"--{LR}={grid[0]}"]
    parsed = cli_parser(monkeypatch).parse_args(args).fit
    assert parsed.model.init_args.optimizer.init_args.lr == grid[0]
    wandb_logger = parsed.trainer.logger[-1]
    assert wandb_logger.class_path.endswith("WandbLogger") and wandb_logger.init_args.offline is False
