"""Quickstart: LS-LLaMA (causal) vs LS-unLLaMA (bidirectional) on the synthetic right-context NER task.

    python -m experiments.quickstart                 # about 2 minutes on 2 CPU cores
    python -m experiments.quickstart --task sequence # the sequence-classification twin (both should solve it)

Trains both tiny random LLaMAs with the configs in `configs/quickstart/`, then prints their final validation
metrics side by side and writes them to `logs/quickstart/comparison_<task>.json` next to the runs' CSV and W&B
logs. Each model is its own W&B run (offline: `logs/quickstart/wandb/offline-run-*-<id>`, the id is in the JSON;
`wandb sync` uploads them).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from lightning.pytorch.loggers import WandbLogger

from main import main

TASKS = {"token": "configs/quickstart/right_context.yaml", "sequence": "configs/quickstart/early_cue.yaml"}
BACKBONE = "configs/backbone/tiny-llama.yaml"
METHODS = {
    "token": {"LS-LLaMA (causal)": "ls_llama", "LS-unLLaMA (bidirectional)": "ls_unllama"},
    "sequence": {"LS-LLaMA (causal, last)": "ls_llama", "LS-unLLaMA (bidirectional, max)": "ls_unllama"},
}
CONFIGS = {  # task -> model label -> the stacked configs: the task, the tiny backbone, the method overlay
    task: {label: [TASKS[task], BACKBONE, f"configs/method/{method}.yaml"] for label, method in methods.items()}
    for task, methods in METHODS.items()
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


def run(
    task: str = "token", overrides: list[str] | None = None, out_dir: str = "logs/quickstart", threads: int | None = 1
) -> dict:
    """Train both models (logs under `out_dir`); return `{model: {"metrics", "seconds", "log_dir"}}`.

    `threads` torch threads (1 by default: the same numbers on every run of a machine, since float sums are
    reduced in the same order; a tiny model trains as fast on one thread); None keeps torch's setting."""
    if threads is not None:
        torch.set_num_threads(threads)
    results = {}
    for label, config in CONFIGS[task].items():
        start = time.perf_counter()
        stacked = [arg for path in config for arg in ("--config", path)]
        cli = main(["fit", *stacked, *logger_override(out_dir), *(overrides or [])])
        metrics = {k: round(float(v), 4) for k, v in cli.trainer.callback_metrics.items() if k.startswith("val/")}
        results[label] = {
            "config": config,
            "metrics": metrics,
            "seconds": round(time.perf_counter() - start, 1),
            "log_dir": cli.trainer.log_dir,
            "wandb_run": next((lg.version for lg in cli.trainer.loggers if isinstance(lg, WandbLogger)), None),
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
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: reproducible numbers)")
    parser.add_argument("overrides", nargs="*", help="extra CLI arguments, e.g. --trainer.max_epochs=2")
    args = parser.parse_args()
    run(args.task, args.overrides, threads=args.threads)
