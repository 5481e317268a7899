"""Quickstart: LS-LLaMA (causal) vs LS-unLLaMA (bidirectional) on the synthetic right-context NER task.

    python -m experiments.quickstart                 # about 2 minutes on 2 CPU cores
    python -m experiments.quickstart --task sequence # the sequence-classification twin (both should solve it)

Trains both tiny random LLaMAs with the configs in `configs/quickstart/`, then prints their final validation
metrics side by side and writes them to `logs/quickstart/comparison.json` next to the runs' CSV and W&B logs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from main import main

CONFIGS = {
    "token": {
        "LS-LLaMA (causal)": "configs/quickstart/ls_llama.yaml",
        "LS-unLLaMA (bidirectional)": "configs/quickstart/ls_unllama.yaml",
    },
    "sequence": {
        "LS-LLaMA (causal, last)": "configs/quickstart/early_cue_ls_llama.yaml",
        "LS-unLLaMA (bidirectional, max)": "configs/quickstart/early_cue_ls_unllama.yaml",
    },
}


def logger_override(out_dir: str) -> list[str]:
    """The configs' loggers (CSV + offline W&B) writing under `out_dir` (an `init_args` override would only reach
    the last logger of the list)."""
    loggers = [
        {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": out_dir}},
        {
            "class_path": "lightning.pytorch.loggers.WandbLogger",
            "init_args": {"save_dir": out_dir, "project": "ls-llama-quickstart", "offline": True},
        },
    ]
    return [f"--trainer.logger={json.dumps(loggers)}"]


def run(task: str = "token", overrides: list[str] | None = None, out_dir: str = "logs/quickstart") -> dict:
    """Train both models (logs under `out_dir`); return `{model: {"metrics", "seconds", "log_dir"}}`."""
    results = {}
    for label, config in CONFIGS[task].items():
        start = time.perf_counter()
        cli = main(["fit", "--config", config, *logger_override(out_dir), *(overrides or [])])
        metrics = {k: round(float(v), 4) for k, v in cli.trainer.callback_metrics.items() if k.startswith("val/")}
        results[label] = {
            "config": config,
            "metrics": metrics,
            "seconds": round(time.perf_counter() - start, 1),
            "log_dir": cli.trainer.log_dir,
        }
    path = Path(out_dir) / f"comparison_{task}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
    print(format_table(results))
    print(f"\nwritten to {path}")
    return results


def format_table(results: dict) -> str:
    """A Markdown table of the final validation metrics of each run."""
    keys = sorted({k for r in results.values() for k in r["metrics"]})
    lines = ["| model | " + " | ".join(keys) + " | seconds |", "|---" * (len(keys) + 2) + "|"]
    for label, result in results.items():
        values = " | ".join(f"{result['metrics'].get(k, float('nan')):.4f}" for k in keys)
        lines.append(f"| {label} | {values} | {result['seconds']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=sorted(CONFIGS), default="token")
    parser.add_argument("overrides", nargs="*", help="extra CLI arguments, e.g. --trainer.max_epochs=2")
    args = parser.parse_args()
    run(args.task, args.overrides)
