"""Collect a suite's finished runs into tables: per run, per setting over seeds (mean ± std, n, a bootstrap interval),
paired differences between methods, each with the paper's number beside ours.

    python -m experiments.results_table experiments/runs/repro_seeds                  # writes results.md there
    python -m experiments.results_table experiments/runs/repro_seeds --out experiments/results/x --copy-runs
    python -m experiments.results_table experiments/results/x                         # rebuild from committed files

Reads every `<dir>/<run>/result.json` that `experiments.suite` wrote, and each run's per-example test outcomes
(`<run>/test/version_*/test_examples.csv`). `--copy-runs` also copies the small per-run files (result.json, the
resolved configs, metrics.csv, test_examples.csv: no checkpoints) into `--out`, so that the committed folder
rebuilds its tables and curves in a fresh clone.

Settings and methods: a run's setting is its id without the seed suffix (`-s<seed>`); its method is its method
config's name (`configs/method/ls_unllama.yaml`: `ls_unllama`), or `result.json`'s `method`. Two settings are
compared when their ids differ only in the method name (`conll2003-smollm2-ls_unllama` vs `...-ls_llama`): the
difference is paired by seed and by test example (`experiments.stats.bootstrap_interval`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from experiments.stats import bootstrap_interval, mean_std, t_interval

PAPER_NUMBERS = Path(__file__).resolve().parent / "paper_numbers.yaml"
# (method, baseline): differences reported where both are present (ids that differ only in the method name)
COMPARISONS = [("ls_unllama", "ls_llama"), ("ls_llama", "instruction_tuning")]
SMALL_FILES = ("metrics.csv", "config.yaml", "test_examples.csv", "test_answers.jsonl")  # answers: prompting runs
# an absolute path into a checkout (`/work/exp/experiments/runs/...`) or to the shared folder beside it: committed
# files say `experiments/runs/...` and `../shared/...`, which hold in every clone
MACHINE_PATH = re.compile(r"(?:/work|/tmp|/root|/home)(?:/[^/\s\"',]+)*?/(?=(?:experiments|configs|logs)/)")
SHARED_PATH = re.compile(r"(?:/work|/root|/home)(?:/[^/\s\"',]+)*?/shared/")
OVERLAY_FOLDERS = ("trainer", "recipe", "debug", "ablation", "quickstart")  # configs that name no data/backbone/method


def load_paper_numbers(path: str | os.PathLike = PAPER_NUMBERS) -> dict[str, dict[str, Any]]:
    """The paper's reported numbers: `{key: {"value": percent or None, "metric", "table", "source", ...}}`."""
    raw = yaml.safe_load(Path(path).read_text())
    numbers = raw.get("numbers") if isinstance(raw, dict) else None
    if not isinstance(numbers, dict):
        raise ValueError(f"{path}: expected a mapping with a 'numbers' mapping")
    for key, entry in numbers.items():
        if isinstance(entry, dict) and entry.get("reported") is False:
            entry.setdefault("value", None)  # a cell the paper prints as "—"
        if not isinstance(entry, dict) or "value" not in entry:
            raise ValueError(
                f"{path}: numbers.{key}: expected a mapping with 'value' (a percent), or 'reported: false' and no value"
            )
    return numbers


def load_results(runs_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The `result.json` of every finished run under `runs_dir`, in folder order.

    Raises:
        FileNotFoundError: no finished run there (a table of nothing is never written silently).
    """
    found = sorted(Path(runs_dir).glob("*/result.json"))
    if not found:
        raise FileNotFoundError(f"{runs_dir}: no finished runs (<run>/result.json); is it a suite's runs folder?")
    return [json.loads(p.read_text()) for p in found]


def describe(result: dict[str, Any]) -> dict[str, Any]:
    """Setting, seed, dataset, backbone and method of a run, from its id and config paths.

    Config paths follow `configs/{data,backbone,method}/<name>.yaml`; runs before 2026-11-29 used
    `configs/<backbone>/<method>.yaml`, read the same way."""
    found: dict[str, str] = {}
    for config in result.get("configs", []):
        path = Path(config)
        if path.parts[:1] != ("configs",) or path.parent.name in OVERLAY_FOLDERS:
            continue
        kind = path.parent.name if path.parent.name in ("data", "backbone", "method") else None
        if kind:
            found.setdefault(kind, path.stem)
        else:  # the old single model config
            found.setdefault("backbone", path.parent.name)
            found.setdefault("method", path.stem)
    seed = result.get("seed")
    setting = result.get("group") or re.sub(r"-s\d+$", "", result["id"])
    return {
        "setting": setting,
        "seed": seed,
        "dataset": found.get("data"),
        "backbone": found.get("backbone"),
        "method": result.get("method") or found.get("method"),
    }


def test_examples(run_dir: Path) -> pd.DataFrame | None:
    """The newest test stage's per-example outcomes of a run, or None when it wrote none."""
    files = sorted((run_dir / "test").glob("version_*/test_examples.csv"), key=lambda p: int(p.parent.name[8:]))
    return pd.read_csv(files[-1]) if files else None


def _row(result: dict[str, Any], paper: dict[str, dict[str, Any]]) -> dict[str, Any]:
    entry = paper.get(result.get("paper") or "", {})
    test = result["test"]
    row = {
        "run": result["id"],
        **describe(result),
        "label": result.get("label", result["id"]),
        "metric": "f1" if "test/precision" in test else "acc",
        "test_score": test["test/score"],
        "paper_key": result.get("paper"),
        "paper_value": entry.get("value"),
        "paper_source": entry.get("source"),
        "best_val": result.get("best_val"),
        "fit_minutes": round(result.get("fit_seconds", float("nan")) / 60, 1),
        "best_ckpt": Path(result.get("best_ckpt", "")).name,
    }
    row.update({k.removeprefix("test/"): v for k, v in test.items() if k != "test/score"})
    return row


def results_frame(runs_dir: str | os.PathLike, paper_numbers: str | os.PathLike = PAPER_NUMBERS) -> pd.DataFrame:
    """One row per finished run: our test score (fraction), the paper's (percent), validation score, metrics."""
    paper = load_paper_numbers(paper_numbers)
    return pd.DataFrame([_row(r, paper) for r in load_results(runs_dir)])


def _examples_by_run(runs_dir: Path, runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    out = {}
    for run in runs["run"]:
        examples = test_examples(runs_dir / run)
        if examples is not None:
            out[run] = examples
    return out


def settings_frame(runs_dir: str | os.PathLike, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per setting (its runs over seeds): mean ± std and n of the test score, a 95% bootstrap interval of
    the mean over test examples pooled over seeds (when every run left its test examples), the paper's number."""
    examples = _examples_by_run(Path(runs_dir), runs)
    rows = []
    for setting, group in runs.groupby("setting", sort=False):
        mean, std, n = mean_std(group["test_score"])
        row = {"setting": setting, **group.iloc[0][["dataset", "backbone", "method", "label", "metric"]].to_dict()}
        row.update(n=n, mean=mean, std=std, seeds=" ".join(str(s) for s in group["seed"] if pd.notna(s)))
        _, row["t_low"], row["t_high"] = t_interval(group["test_score"])
        if all(run in examples for run in group["run"]):
            _, row["ci_low"], row["ci_high"] = bootstrap_interval([examples[r] for r in group["run"]])
        row.update(paper_key=group.iloc[0]["paper_key"], paper_value=group.iloc[0]["paper_value"])
        rows.append(row)
    return pd.DataFrame(rows)


def differences_frame(
    runs_dir: str | os.PathLike, runs: pd.DataFrame, comparisons: list[tuple[str, str]] = COMPARISONS
) -> pd.DataFrame:
    """Paired differences `method - baseline` for settings whose ids differ only in the method name: per-seed
    differences (mean ± std, n) and a 95% bootstrap interval over test examples pooled over the shared seeds."""
    examples = _examples_by_run(Path(runs_dir), runs)
    rows = []
    for method, baseline in comparisons:
        for setting, group in runs[runs["method"] == method].groupby("setting", sort=False):
            other = runs[runs["setting"] == setting.replace(method, baseline)]
            pairs = group.merge(other, on="seed", suffixes=("", "_base"))
            if other.empty or pairs.empty:
                continue
            mean, std, n = mean_std(pairs["test_score"] - pairs["test_score_base"])
            row = {"comparison": f"{method} - {baseline}", "setting": setting.replace(method, "*"), "n": n}
            row.update(mean=mean, std=std, metric=group.iloc[0]["metric"])
            _, row["t_low"], row["t_high"] = t_interval(pairs["test_score"] - pairs["test_score_base"])
            ours, base = list(pairs["run"]), list(pairs["run_base"])
            if all(r in examples for r in ours + base):
                estimate, row["ci_low"], row["ci_high"] = bootstrap_interval(
                    [examples[r] for r in ours], [examples[r] for r in base]
                )
            rows.append(row)
    return pd.DataFrame(rows)


METHOD_ORDER = ["zero_shot", "instruction_tuning", "ls_llama", "ls_unllama", "ls_unllama_mntp", "finetune"]


def methods_frame(settings: pd.DataFrame) -> pd.DataFrame:
    """One row per data budget (the first `-`-separated part of a setting id: `sst5`, `conll2003_600`), one column
    per method: `mean ± std (n)` in percent, the paper's number in brackets; then the methods ranked by our mean
    and by the paper's number (`>` between them, best first)."""
    if settings.empty:
        return pd.DataFrame()
    table = settings.assign(data=settings["setting"].str.split("-").str[0])
    # a run whose configs name no method file (a suite of custom configs) is a column of its own, named by its label
    table["method"] = table["method"].fillna(table["label"]).fillna(table["setting"]).astype(str)
    methods = [m for m in METHOD_ORDER if m in set(table["method"])]
    methods += sorted(set(table["method"]) - set(methods))
    rows = []
    for data, group in table.groupby("data", sort=False):
        row: dict[str, Any] = {"data": data}
        by_method = {r["method"]: r for r in group.to_dict("records")}
        for method in methods:
            r = by_method.get(method)
            paper = "" if r is None or _missing(r.get("paper_value")) else f" ({float(r['paper_value']):.1f})"
            spread = f" ± {_percent(r['std'])}" if r is not None and r["n"] > 1 else ""  # no spread from one seed
            row[method] = "" if r is None else f"{_percent(r['mean'])}{spread} (n={r['n']}){paper}"
        ours = sorted(by_method, key=lambda m: -by_method[m]["mean"])
        row["ours, best first"] = " > ".join(ours)
        known = [m for m in ours if not _missing(by_method[m].get("paper_value"))]
        row["paper, best first"] = " > ".join(sorted(known, key=lambda m: -float(by_method[m]["paper_value"])))
        rows.append(row)
    return pd.DataFrame(rows)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def _percent(value: Any, signed: bool = False) -> str:
    return "" if _missing(value) else f"{100 * float(value):{'+' if signed else ''}.2f}"


def _paper(row: dict[str, Any]) -> str:
    key, value = row.get("paper_key"), row.get("paper_value")
    return "n/a" if _missing(key) else ("?" if _missing(value) else f"{float(value):.2f}")


def _interval(row: dict[str, Any], signed: bool = False, prefix: str = "ci") -> str:
    low, high = row.get(f"{prefix}_low"), row.get(f"{prefix}_high")
    return "" if _missing(low) else f"[{_percent(low, signed)}, {_percent(high, signed)}]"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def markdown(runs: pd.DataFrame, settings: pd.DataFrame | None = None, differences: pd.DataFrame | None = None) -> str:
    """The tables as Markdown, scores in percent: methods per data, per setting, paired differences, per run."""
    lines: list[str] = []
    methods = methods_frame(settings) if settings is not None else pd.DataFrame()
    if len(methods.columns) > 4:  # more than one method somewhere: the side-by-side view
        lines += [*_table(list(methods.columns), methods.values.tolist()), ""]
    if settings is not None and not settings.empty:
        header = [
            "setting",
            "model",
            "metric",
            "n",
            "mean ± std",
            "t-interval (seeds)",
            "bootstrap (examples)",
            "paper",
        ]
        rows = [
            [
                r["setting"],
                r["label"],
                r["metric"],
                r["n"],
                f"{_percent(r['mean'])} ± {_percent(r['std'])}",
                _interval(r, prefix="t"),
                _interval(r),
                _paper(r),
            ]
            for r in settings.to_dict("records")
        ]
        lines += [*_table(header, rows), ""]
    if differences is not None and not differences.empty:
        header = ["comparison", "setting", "metric", "n seeds", "mean ± std (per seed)", "t-interval (seeds)"]
        header.append("bootstrap (examples)")
        rows = [
            [
                r["comparison"],
                r["setting"],
                r["metric"],
                r["n"],
                f"{_percent(r['mean'], True)} ± {_percent(r['std'])}",
                _interval(r, signed=True, prefix="t"),
                _interval(r, signed=True),
            ]
            for r in differences.to_dict("records")
        ]
        lines += [*_table(header, rows), ""]
    header = ["run", "model", "metric", "ours (test)", "paper", "best val", "fit min"]
    rows = [
        [
            r["run"],
            r["label"],
            r["metric"],
            _percent(r["test_score"]),
            _paper(r),
            _percent(r.get("best_val")),
            "" if _missing(r.get("fit_minutes")) else r["fit_minutes"],
        ]  # no fit: a zero-shot run
        for r in runs.to_dict("records")
    ]
    lines += _table(header, rows)
    notes = [
        "",
        "Scores in percent: accuracy for classification, seqeval micro entity F1 for NER, on the test set, of the "
        "checkpoint with the best validation score. mean ± std: over seeds (sample std). t-interval: 95% Student's t "
        "over seeds (n - 1 degrees of freedom; none for one seed). bootstrap: 95% percentile bootstrap over test "
        "examples pooled over seeds (2,000 resamples; paired by seed and example for differences): test-set noise, "
        "with seed noise averaged out; the t-interval holds the seed noise. "
        "paper: the paper's number for the matching setting (experiments/paper_numbers.yaml; in "
        "brackets in the first table, whose rows are the first part of the run ids: data and budget); `?` = none, "
        "`n/a` = no matching setting.",
    ]
    return "\n".join(lines + notes) + "\n"


def portable(text: str) -> str:
    """`text` with absolute paths into a checkout made relative to its root, and to the shared folder `../shared/`."""
    return SHARED_PATH.sub("../shared/", MACHINE_PATH.sub("", text))


def copy_run_files(runs_dir: str | os.PathLike, out_dir: str | os.PathLike) -> int:
    """Copy each finished run's small files (result.json, configs, metrics.csv, test_examples.csv, a prompting
    run's test_answers.jsonl) from `runs_dir` to `out_dir/<run>/` with the same layout, machine paths made relative
    (`portable`); returns the number of files."""
    runs_dir, out_dir = Path(runs_dir), Path(out_dir)
    copied = 0
    for result in sorted(runs_dir.glob("*/result.json")):
        files = [result, *(p for name in SMALL_FILES for p in result.parent.glob(f"*/version_*/{name}"))]
        for path in files:
            target = out_dir / path.relative_to(runs_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix in (".json", ".yaml"):
                target.write_text(portable(path.read_text()))
            else:
                shutil.copy2(path, target)
            copied += 1
    return copied


def write_tables(runs_dir: str | os.PathLike, out_dir: str | os.PathLike) -> pd.DataFrame:
    """Write `results.md`, `results.csv` (per run), `settings.csv` and `differences.csv` into `out_dir`."""
    runs = results_frame(runs_dir)
    settings, differences = settings_frame(runs_dir, runs), differences_frame(runs_dir, runs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out / "results.csv", index=False)
    settings.to_csv(out / "settings.csv", index=False)
    differences.to_csv(out / "differences.csv", index=False)
    (out / "results.md").write_text(markdown(runs, settings, differences))
    return runs


def main(argv: list[str] | None = None) -> int:
    """Command line; returns the exit status (2 when the folder holds no finished run)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs_dir", help="a suite's runs folder, or a committed results folder (<run>/result.json)")
    parser.add_argument("--out", help="output folder (default: runs_dir)")
    parser.add_argument("--copy-runs", action="store_true", help="also copy the runs' small files into --out")
    args = parser.parse_args(argv)
    out = args.out or args.runs_dir
    try:
        if args.copy_runs and Path(out).resolve() != Path(args.runs_dir).resolve():
            print(f"copied {copy_run_files(args.runs_dir, out)} files to {out}")
        write_tables(args.runs_dir if not args.copy_runs else out, out)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print((Path(out) / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
