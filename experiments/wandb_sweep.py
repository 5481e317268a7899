"""A suite as a W&B sweep: one grid definition (the suite YAML), two ways to run it.

    python -m experiments.suite experiments/sweeps/lr_grid_suite.yaml --to-sweep experiments/sweeps/lr_grid.yaml

The sweep is a grid over what differs between the suite's runs (their own `--key=value` overrides; the runs must
be exactly the grid's cells), each cell `main.py fit` with the runs' configs and W&B online
(`experiments/sweeps/wandb_online.yaml`, so that each run reports to the sweep), metric `best/val_score` (the best
validation score, logged by `app`'s WandbRuns). What W&B's grid cannot say is refused with a one-line error: runs
with different config files (one sweep runs one command), seeds (a grid cannot tie `--seed_everything` to the
data module's seed), test-only runs.
"""

from __future__ import annotations

import os
from itertools import product
from pathlib import Path
from typing import Any

import yaml

from experiments.suite_spec import ROOT, STAGES, Suite, SuiteError

ONLINE = "experiments/sweeps/wandb_online.yaml"
METRIC = {"name": "best/val_score", "goal": "maximize"}


def _pairs(run_id: str, args: list[str], where: Path) -> dict[str, str]:
    pairs = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not key.startswith("--") or not sep:
            raise SuiteError(f"{where}: run {run_id}: {arg!r} is not --key=value, which a sweep parameter needs")
        pairs[key[2:]] = value
    return pairs


def _value(text: str) -> Any:
    """A parameter value as jsonargparse would read it (YAML, where `1e-4` is also a number)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def sweep(suite: Suite) -> dict[str, Any]:
    """The W&B sweep config (a grid) of `suite`.

    Raises:
        SuiteError: the suite is no grid of one command (one line naming the file and what differs).
    """
    stacks = {tuple([*suite.base_configs, *run.configs]) for run in suite.runs}
    if len(stacks) > 1:
        raise SuiteError(f"{suite.path}: its runs use {len(stacks)} config stacks; a sweep runs one: split the suite")
    if any(run.seed is not None for run in suite.runs) or any(run.stages != list(STAGES) for run in suite.runs):
        raise SuiteError(f"{suite.path}: seeds and test-only runs have no W&B grid equivalent; drop them for a sweep")
    cells = [_pairs(run.id, run.overrides + run.fit_overrides, suite.path) for run in suite.runs]
    keys = list(cells[0])
    if any(list(cell) != keys for cell in cells):
        raise SuiteError(f"{suite.path}: the runs set different keys; a grid sets the same ones in every run")
    values = {key: list(dict.fromkeys(cell[key] for cell in cells)) for key in keys}
    grid = {key: options for key, options in values.items() if len(options) > 1}
    expected = {tuple(zip(grid, combination)) for combination in product(*grid.values())}
    if len(cells) != len(expected) or {tuple((k, cell[k]) for k in grid) for cell in cells} != expected:
        raise SuiteError(f"{suite.path}: the runs are not every combination of {sorted(grid)}: no grid")
    fixed = [*suite.overrides, *suite.fit_overrides, *(f"--{k}={v[0]}" for k, v in values.items() if k not in grid)]
    configs = [f"--config={config}" for config in [*next(iter(stacks)), ONLINE]]
    return {
        "program": "main.py",
        "name": suite.name,
        "method": "grid",
        "metric": dict(METRIC),
        "parameters": {key: {"values": [_value(v) for v in options]} for key, options in grid.items()},
        "command": ["${env}", "${interpreter}", "${program}", "fit", *configs, *fixed, "${args}"],
    }


def sweep_yaml(suite: Suite, source: str | os.PathLike) -> str:
    """The sweep file's text: a header saying how it was made and how to run it, then `sweep(suite)`."""
    path = Path(source).resolve()
    shown = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    header = [
        f"# Generated from {shown}, the grid's source: edit that, then regenerate this file:",
        f"#   python -m experiments.suite {shown} --to-sweep <this file>",
        "# A W&B grid over what differs between the suite's runs, each `main.py fit` with W&B online; the metric",
        "# best/val_score is the best validation score (the summary's val/score holds {max: ...}).",
        f"#   wandb sweep --project {suite.project} <this file>   # prints the sweep id",
        f"#   wandb agent <entity>/{suite.project}/<sweep id>     # one agent per GPU, from the repository root",
        f"# The same grid offline, each best checkpoint tested: python -m experiments.suite {shown}",
    ]
    body = yaml.safe_dump(sweep(suite), sort_keys=False, width=120)
    return "\n".join(header) + "\n" + body


def write_sweep(suite: Suite, source: str | os.PathLike, out: str) -> None:
    """Print the sweep (`out` = `-`) or write it to `out`."""
    text = sweep_yaml(suite, source)
    if out == "-":
        print(text, end="")
    else:
        Path(out).write_text(text)
