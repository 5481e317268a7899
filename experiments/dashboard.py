"""The W&B dashboard, built by code: a workspace and a report that compare BERT-family vs LS-LLaMA vs LS-unLLaMA.

    python -m experiments.dashboard --project ls-llama --entity me --suite paper_table4   # saves both (wandb login)
    python -m experiments.dashboard --project ls-llama --suite paper_table4 --dry-run    # writes the spec, offline

(2026-11-29) Reads only what our runs log (`app.wandb_runs.WandbRuns`, the suite runner's tags and `paper` config):

- grouping: config `run.dataset` > `method` (`ls_llama`, `ls_unllama`, `finetune` = BERT family, ...) >
  `run.backbone`, so the runs of one setting (its seeds) form one group, drawn as mean and standard error;
- the workspace: train/val loss and validation score against `trainer/global_step`; test score and best validation
  score per group; the pooling ablation (test score by `run.pooling`); a runs table with our test score beside the
  paper's (`paper.score`, set by the suite runner from experiments/paper_numbers.yaml);
- the report: per dataset of the paper's Tables 2-4 a panel grid (test score bars, curves) and the paper's numbers
  for that dataset as a Markdown table; Table 5 (pooling) for SST-2 and SST-5 the same way.

`--suite S` keeps the runs tagged `suite:S`. `--dry-run` writes the workspace and report as JSON (`--out`) without
network: the report's wire format needs the project's id from the server, so the dry run describes its objects.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import wandb_workspaces.reports.v2 as wr
import wandb_workspaces.workspaces as ws

from experiments.results_table import load_paper_numbers

STEP = "trainer/global_step"
CURVES = ("train/loss", "val/loss", "val/score")
TEST, BEST = "test/score", "best/val_score"
GROUPS = ("run.dataset", "method", "run.backbone")  # config keys, outermost first; a setting's seeds share a group
PAPER = "paper.score"  # config key: the paper's number for the run (experiments.suite.logging_overlay)
LS_METHODS = ("ls_llama", "ls_unllama")
# paper table -> (title, [(data module name, grouping before GROUPS, paper dataset keys)])
TABLES = {
    "2": ("Table 2: text classification (accuracy)", [(d, [], [d]) for d in ("sst2", "sst5", "agnews", "twitter_fin")]),
    "3": (
        "Table 3: multilingual Amazon reviews, product category (accuracy)",
        [("amazon_reviews", ["data.languages"], [f"amazon_reviews_{x}" for x in ("de", "en", "es", "zh", "avg")])],
    ),
    "4": ("Table 4: NER (entity F1)", [(d, [], [d]) for d in ("conll2003", "ontonotes5")]),
}
POOLING_DATASETS = ("sst2", "sst5")


def config_column(key: str) -> str:
    """A runs-table column of a config key (W&B stores each top-level value under `value`: `config:run.value.x`)."""
    first, _, rest = key.partition(".")
    return f"config:{first}.value" + (f".{rest}" if rest else "")


COLUMNS = [f"summary:{TEST}", config_column(PAPER), f"summary:{BEST}", config_column("method")]


def suite_filter(suite: str | None, *more: str) -> str:
    """A W&B filter expression: the suite's runs (tag `suite:<suite>`) and `more` conditions."""
    parts = ([f"Tags in ['suite:{suite}']"] if suite else []) + list(more)
    return " and ".join(parts)


def curve_panels() -> list[Any]:
    """Loss and validation score curves, one line per group (mean, stderr band over its runs)."""
    return [
        wr.LinePlot(title=key, x=STEP, y=[key], groupby_aggfunc="mean", groupby_rangefunc="stderr") for key in CURVES
    ]


def score_panels() -> list[Any]:
    """Test score (of the best-on-validation checkpoint) and best validation score per group."""
    return [
        wr.BarPlot(
            title=f"{key} (mean, stderr over seeds)", metrics=[key], groupby_aggfunc="mean", groupby_rangefunc="stderr"
        )
        for key in (TEST, BEST)
    ]


def workspace(project: str, entity: str, suite: str | None) -> ws.Workspace:
    """The W&B workspace: curves, scores and the pooling ablation, runs grouped by dataset > method > backbone."""
    pooling = wr.BarPlot(
        title=f"pooling ablation: {TEST} by run.pooling",
        metrics=[TEST],
        groupby=wr.Config("run.pooling"),
        groupby_aggfunc="mean",
        groupby_rangefunc="stderr",
    )
    return ws.Workspace(
        entity=entity,
        project=project,
        name=f"LS-LLaMA comparison ({suite or 'all runs'})",
        sections=[
            ws.Section(
                name="Curves (dataset > method > backbone; mean, stderr over seeds)",
                panels=curve_panels(),
                is_open=True,
            ),
            ws.Section(name="Test and best validation scores", panels=score_panels(), is_open=True),
            ws.Section(name="Pooling ablation (paper Table 5)", panels=[pooling], is_open=True),
        ],
        runset_settings=ws.RunsetSettings(
            filters=suite_filter(suite),
            groupby=[ws.Config(key) for key in GROUPS],
            pinned_columns=list(COLUMNS),
        ),
    )


def paper_table(numbers: dict[str, dict[str, Any]], datasets: list[str], table: str) -> str:
    """The paper's numbers of `datasets` in `table` as a Markdown table (`—` where the paper reports none)."""
    lines = ["| paper row (source) | key | paper (%) |", "|---|---|---|"]
    for key, entry in numbers.items():
        if str(entry.get("table")) == table and key.split("/")[0] in datasets:
            value = entry.get("value")
            lines.append(f"| {entry.get('source')} | `{key}` | {'—' if value is None else f'{value:.2f}'} |")
    return "\n".join(lines)


def grid(project: str, entity: str, name: str, filters: str, groupby: list[str], panels: list[Any]) -> wr.PanelGrid:
    """A report panel grid over one run set (`groupby`: config keys, outermost first)."""
    runset = wr.Runset(
        entity=entity,
        project=project,
        name=name,
        filters=filters,
        groupby=[f"config.{k}" for k in groupby],
        pinned_columns=list(COLUMNS),
    )
    return wr.PanelGrid(runsets=[runset], panels=panels)


def dataset_blocks(project: str, entity: str, suite: str | None, numbers: dict, table: str) -> list[Any]:
    """A paper table's section of the report: per dataset its grid and the paper's numbers."""
    title, datasets = TABLES[table]
    blocks: list[Any] = [wr.H2(title)]
    for dataset, outer, paper_datasets in datasets:
        filters = suite_filter(suite, f"Config('run.dataset') = '{dataset}'")
        panels = [*score_panels()[:1], *curve_panels()]
        blocks += [wr.H3(dataset), grid(project, entity, dataset, filters, [*outer, *GROUPS[1:]], panels)]
        blocks.append(wr.MarkdownBlock(paper_table(numbers, paper_datasets, table)))
    return blocks


def pooling_blocks(project: str, entity: str, suite: str | None, numbers: dict) -> list[Any]:
    """The pooling ablation: LS-LLaMA / LS-unLLaMA test score by pooling on SST-2 and SST-5 (paper Table 5)."""
    blocks: list[Any] = [wr.H2("Table 5: pooling (max, mean, last) with and without the causal mask (accuracy)")]
    methods = ", ".join(f"'{m}'" for m in LS_METHODS)
    for dataset in POOLING_DATASETS:
        filters = suite_filter(suite, f"Config('run.dataset') = '{dataset}'", f"Config('method') in [{methods}]")
        panels = score_panels()[:1]
        blocks += [
            wr.H3(dataset),
            grid(project, entity, f"{dataset} pooling", filters, ["method", "run.pooling"], panels),
        ]
        blocks.append(wr.MarkdownBlock(paper_table(numbers, [dataset], "5")))
    return blocks


INTRO = (
    "Runs are grouped by `run.dataset` > `method` (`ls_llama` = causal decoder, `ls_unllama` = decoder without "
    "its causal mask, `finetune` = BERT family) > `run.backbone`; the seeds of one setting form one group (mean, "
    "standard error). `test/score` is the test accuracy or entity F1 of the checkpoint with the best `val/score`; "
    "the runs tables put the paper's number (`paper.score`, percent) beside ours (a fraction)."
)


def report(project: str, entity: str, suite: str | None, numbers: dict[str, dict[str, Any]]) -> wr.Report:
    """The W&B report: Tables 2-4 per dataset and Table 5, ours beside the paper's."""
    blocks: list[Any] = [wr.MarkdownBlock(INTRO)]
    for table in TABLES:
        blocks += dataset_blocks(project, entity, suite, numbers, table)
    blocks += pooling_blocks(project, entity, suite, numbers)
    title = f"LS-LLaMA vs LS-unLLaMA vs BERT ({suite or project})"
    return wr.Report(project=project, entity=entity, title=title, description=INTRO[:250], blocks=blocks)


def describe(obj: Any) -> Any:
    """A JSON-ready description of wandb-workspaces objects: their type and public fields, recursively."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {"type": type(obj).__name__}
        for item in dataclasses.fields(obj):
            value = describe(getattr(obj, item.name))
            if not item.name.startswith("_") and value not in (None, "", [], {}):
                out[item.name] = value
        return out
    if isinstance(obj, (list, tuple)):
        return [describe(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): describe(v) for k, v in obj.items()}
    return obj if isinstance(obj, (str, int, float, bool)) or obj is None else str(obj)


def build(project: str, entity: str | None, suite: str | None) -> tuple[ws.Workspace, wr.Report]:
    """The workspace and the report (objects only; nothing is sent)."""
    entity = entity or "<entity>"
    return workspace(project, entity, suite), report(project, entity, suite, load_paper_numbers())


def spec(project: str, entity: str | None = None, suite: str | None = None) -> dict[str, Any]:
    """What `--dry-run` writes: the workspace (described, and in W&B's wire format) and the report (described)."""
    space, rep = build(project, entity, suite)
    return {"workspace": describe(space), "workspace_wire": space._spec, "report": describe(rep)}


def save(project: str, entity: str | None, suite: str | None) -> None:
    """Create the workspace and the report in W&B (needs `wandb login`)."""
    import wandb

    space, rep = build(project, entity or wandb.Api().default_entity, suite)
    space.save()
    rep.save()
    print(f"workspace: {space.url}\nreport: {rep.url}")


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", required=True, help="W&B project of the runs")
    parser.add_argument("--entity", help="W&B entity (default: your default entity)")
    parser.add_argument("--suite", help="only the runs of this suite (tag suite:<name>)")
    parser.add_argument("--dry-run", action="store_true", help="write the spec as JSON, send nothing")
    parser.add_argument("--out", default="logs/dashboard_spec.json", help="where --dry-run writes the spec")
    args = parser.parse_args(argv)
    if not args.dry_run:
        save(args.project, args.entity, args.suite)
        return
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(spec(args.project, args.entity, args.suite), indent=2, default=str))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
