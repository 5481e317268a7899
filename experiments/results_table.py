"""Collect a suite's finished runs into one table, with the paper's number beside ours.

    python -m experiments.results_table experiments/runs/repro_smollm2            # writes results.md/.csv there
    python -m experiments.results_table experiments/runs/repro_smollm2 --out experiments/results/2026-11-25_x

Reads every `<runs_dir>/<run>/result.json` that `experiments.suite` wrote, looks up each run's `paper` key in
`experiments/paper_numbers.yaml`, and writes `results.csv` (every metric, fractions) and `results.md` (percent).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

PAPER_NUMBERS = Path(__file__).resolve().parent / "paper_numbers.yaml"


def load_paper_numbers(path: str | os.PathLike = PAPER_NUMBERS) -> dict[str, dict[str, Any]]:
    """The paper's reported numbers: `{key: {"value": percent or None, "metric", "table", "source", ...}}`."""
    raw = yaml.safe_load(Path(path).read_text())
    numbers = raw.get("numbers") if isinstance(raw, dict) else None
    if not isinstance(numbers, dict):
        raise ValueError(f"{path}: expected a mapping with a 'numbers' mapping")
    for key, entry in numbers.items():
        if not isinstance(entry, dict) or "value" not in entry:
            raise ValueError(f"{path}: numbers.{key}: expected a mapping with 'value' (a percent, or null)")
    return numbers


def load_results(runs_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The `result.json` of every finished run under `runs_dir`, in folder order."""
    return [json.loads(p.read_text()) for p in sorted(Path(runs_dir).glob("*/result.json"))]


def _row(result: dict[str, Any], paper: dict[str, dict[str, Any]]) -> dict[str, Any]:
    entry = paper.get(result.get("paper") or "", {})
    test = result["test"]
    metric = "f1" if "test/precision" in test else "acc"
    row = {
        "run": result["id"],
        "label": result.get("label", result["id"]),
        "metric": metric,
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
    rows = [_row(r, paper) for r in load_results(runs_dir)]
    columns = ["run", "label", "metric", "test_score", "paper_key", "paper_value", "paper_source", "best_val"]
    return pd.DataFrame(rows, columns=None if rows else columns)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def _percent(value: Any) -> str:
    return "" if _missing(value) else f"{100 * float(value):.2f}"


def markdown(frame: pd.DataFrame) -> str:
    """A Markdown table: ours (test, percent), the paper's number, the best validation score, and the run."""
    lines = [
        "| run | model | metric | ours (test) | paper | best val | fit min |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in frame.to_dict("records"):
        key, paper = row.get("paper_key"), row.get("paper_value")
        paper_text = "n/a" if _missing(key) else ("?" if _missing(paper) else f"{float(paper):.2f}")
        lines.append(
            f"| {row['run']} | {row['label']} | {row['metric']} | {_percent(row['test_score'])} | {paper_text} | "
            f"{_percent(row.get('best_val'))} | {row.get('fit_minutes', '')} |"
        )
    notes = [
        "",
        "ours: test-set score (accuracy for classification, seqeval micro entity F1 for NER), in percent, of the "
        "checkpoint with the best validation score. paper: the number the paper reports for the matching 7B/13B "
        "setting (experiments/paper_numbers.yaml); `?` = not verified here, `n/a` = no matching setting.",
    ]
    return "\n".join(lines + notes) + "\n"


def write_tables(runs_dir: str | os.PathLike, out_dir: str | os.PathLike) -> pd.DataFrame:
    """Write `results.csv` and `results.md` of the finished runs under `runs_dir` into `out_dir`."""
    frame = results_frame(runs_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "results.csv", index=False)
    (out / "results.md").write_text(markdown(frame))
    return frame


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs_dir", help="a suite's runs folder (holding <run>/result.json)")
    parser.add_argument("--out", help="output folder (default: runs_dir)")
    args = parser.parse_args()
    table = write_tables(args.runs_dir, args.out or args.runs_dir)
    print(markdown(table))
