"""A suite file: the runs of a study, each a stack of configs and overrides, checked before anything runs.

Suite file format:

    name: repro-smollm2                     # W&B tag and default runs_dir name (experiments/runs/<name>)
    runs_dir: experiments/runs/repro        # optional
    project: ls-llama                       # W&B project (optional)
    base_configs: [configs/trainer/default.yaml]   # before every run's configs (optional)
    overrides: []                           # CLI arguments after every fit and test command (optional)
    fit_overrides: []                       # ... after every fit command only
    test_overrides: []                      # ... after every test command only
    seeds: [0, 1, 2]                        # optional: every run repeated per seed, ids `<id>-s<seed>`, with
                                            # --seed_everything=<seed> --data.init_args.seed=<seed> (a run or a
                                            # matrix block may set its own `seeds`); `{seed}` in a run's
                                            # overrides becomes the seed (a per-seed path of an earlier stage)
    runs:
      - id: conll2003-smollm2-ls_unllama    # unique; names the run folder
        configs: [configs/recipe/cpu_small.yaml, configs/data/conll2003.yaml, configs/backbone/smollm2-135m.yaml,
                  configs/method/ls_unllama.yaml]
        overrides: [--data.init_args.max_train_examples=2000]   # optional, also fit_/test_overrides
        paper: conll2003/llama2-7b/ls_unllama   # optional key into experiments/paper_numbers.yaml; default:
                                                # derived from the configs (see `paper_key`), null for none
        label: LS-unLLaMA (SmolLM2-135M)    # optional, for tables and plots
        stages: [test]                      # optional: `test` only, of the untrained model (zero-shot
                                            # prompting: no fit, no checkpoint); default [fit, test]
    matrix:                                 # optional: data x backbone x method configs (x overlays)
      - recipe: configs/recipe/paper.yaml   # optional: first in every run of the block (not in run ids)
        data: [configs/data/sst2.yaml, configs/data/sst5.yaml]
        backbones: [configs/backbone/llama2-7b.yaml, configs/backbone/llama2-13b.yaml]
        methods: [configs/method/ls_llama.yaml, configs/method/ls_unllama.yaml]
        overlays: [[], [configs/ablation/pooling_mean.yaml]]   # optional: one run per overlay list
        overrides: []
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


class SuiteError(ValueError):
    """A suite file or a run's state that the runner cannot use; the message names the file and field."""


STAGES = ("fit", "test")  # a run's default stages; `stages: [test]` tests an untrained model


@dataclass
class Run:
    """One run of a suite: its configs, overrides and where its paper number is found.

    Args:
        id: unique name of the run (its folder name).
        configs: config files after the suite's base configs, in order (later ones win).
        overrides: CLI arguments for both fit and test.
        fit_overrides: CLI arguments for fit only.
        test_overrides: CLI arguments for test only.
        paper: key into the paper's numbers; None for none.
        label: display name for tables and plots.
        seed: the seed of this repeat (`seed_everything` and the data module's `seed`: initialisation, dropout,
            training subset and order); None = the configs' own.
        group: the run id without its seed suffix: the repeats of one setting share it (tables average over it).
        method: the method's name in results tables (default: the method config's name, e.g. `ls_unllama`).
        stages: `["fit", "test"]` (test the best checkpoint), or `["test"]`: test the model as the configs build
            it, without training (zero-shot prompting).
    """

    id: str
    configs: list[str]
    overrides: list[str] = field(default_factory=list)
    fit_overrides: list[str] = field(default_factory=list)
    test_overrides: list[str] = field(default_factory=list)
    paper: str | None = None
    label: str | None = None
    seed: int | None = None
    group: str | None = None
    method: str | None = None
    stages: list[str] = field(default_factory=lambda: list(STAGES))


@dataclass
class Suite:
    """A parsed suite file (see the module docstring)."""

    name: str
    path: Path
    runs_dir: Path
    runs: list[Run]
    project: str = "ls-llama"
    base_configs: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    fit_overrides: list[str] = field(default_factory=list)
    test_overrides: list[str] = field(default_factory=list)


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SuiteError(f"{where}: expected a list of strings, got {value!r}")
    return list(value)


def paper_key(configs: list[str]) -> str | None:
    """Default paper key of a run: `<data>/<backbone>/<method>[/<overlay>...]` from its config paths.

    `configs/data/sst2.yaml` + `configs/backbone/llama2-7b.yaml` + `configs/method/ls_llama.yaml` +
    `configs/ablation/pooling_mean.yaml` gives `sst2/llama2-7b/ls_llama/pooling_mean`; configs of
    `configs/ablation/` are overlays. None without exactly one data, one backbone and one method config.
    """
    found: dict[str, list[str]] = {"data": [], "backbone": [], "method": [], "ablation": []}
    for config in configs:
        path = Path(config)
        if path.parts[:1] == ("configs",) and path.parent.name in found:
            found[path.parent.name].append(path.stem)
    if any(len(found[kind]) != 1 for kind in ("data", "backbone", "method")):
        return None
    return "/".join([found["data"][0], found["backbone"][0], found["method"][0], *found["ablation"]])


MATRIX_PASSED = ("overrides", "fit_overrides", "test_overrides", "seeds", "stages")


def _matrix_runs(block: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """One run per data config x backbone config x method config x overlay list of a `matrix:` block."""
    unknown = set(block) - {"recipe", "data", "backbones", "methods", "overlays", *MATRIX_PASSED}
    if unknown:
        raise SuiteError(f"{where}: unknown keys {sorted(unknown)}")
    axes = {key: _strings(block.get(key), f"{where}.{key}") for key in ("data", "backbones", "methods")}
    if not all(axes.values()):
        raise SuiteError(f"{where}: needs non-empty 'data', 'backbones' and 'methods' lists")
    overlays = [_strings(o, f"{where}.overlays[{i}]") for i, o in enumerate(block.get("overlays") or [[]])]
    recipe = _strings([block["recipe"]] if "recipe" in block else None, f"{where}.recipe")  # first, not in ids
    runs = []
    for data, backbone, method, overlay in product(axes["data"], axes["backbones"], axes["methods"], overlays):
        configs = [data, backbone, method, *overlay]
        runs.append(
            {
                "id": "-".join(Path(c).stem for c in configs),
                "configs": [*recipe, *configs],
                **{k: block[k] for k in MATRIX_PASSED if k in block},
            }
        )
    return runs


def _seeds(value: Any, where: str) -> list[int | None]:
    if value is None:
        return [None]
    if not isinstance(value, list) or not value or not all(isinstance(v, int) and v >= 0 for v in value):
        raise SuiteError(f"{where}: expected a non-empty list of seeds (integers >= 0), got {value!r}")
    if len(set(value)) != len(value):
        raise SuiteError(f"{where}: seeds repeat: {value}")
    return list(value)


def _stages(value: Any, where: str) -> list[str]:
    stages = _strings(value, where) or list(STAGES)
    if stages not in (list(STAGES), ["test"]):
        raise SuiteError(f"{where}: expected [fit, test] (the default) or [test], got {stages}")
    return stages


def _with_seed(raw: dict[str, Any], key: str, seed: int | None, where: str) -> list[str]:
    """A run's `key` overrides with `{seed}` replaced by the seed: a per-seed path, such as the adapter folder that
    an earlier suite's run of the same seed wrote (experiments/mntp/)."""
    values = _strings(raw.get(key), f"{where}.{key}")
    if seed is None and any("{seed}" in value for value in values):
        raise SuiteError(f"{where}.{key}: '{{seed}}' needs seeds (the suite's or the run's `seeds`)")
    return values if seed is None else [value.replace("{seed}", str(seed)) for value in values]


def _parse_run(raw: Any, where: str, default_seeds: list[int] | None = None) -> list[Run]:
    """The runs of one `runs:` entry: one per seed (`<id>-s<seed>`), or one without seeds."""
    if not isinstance(raw, dict):
        raise SuiteError(f"{where}: expected a mapping with 'id' and 'configs', got {raw!r}")
    allowed = {f for f in Run.__dataclass_fields__} - {"seed", "group"} | {"seeds"}
    unknown = set(raw) - allowed
    if unknown:
        raise SuiteError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(allowed)})")
    run_id = raw.get("id")
    if not isinstance(run_id, str) or not run_id or any(c in run_id for c in "/\\ "):
        raise SuiteError(f"{where}.id: expected a name without '/' or spaces, got {run_id!r}")
    configs = _strings(raw.get("configs"), f"{where}.configs")
    if not configs:
        raise SuiteError(f"{where}.configs: at least one config file is needed")
    paper = raw["paper"] if "paper" in raw else paper_key(configs)
    runs = []
    for seed in _seeds(raw.get("seeds", default_seeds), f"{where}.seeds"):
        seeded = [] if seed is None else [f"--seed_everything={seed}", f"--data.init_args.seed={seed}"]
        runs.append(
            Run(
                id=run_id if seed is None else f"{run_id}-s{seed}",
                configs=configs,
                overrides=_with_seed(raw, "overrides", seed, where) + seeded,
                fit_overrides=_with_seed(raw, "fit_overrides", seed, where),
                test_overrides=_with_seed(raw, "test_overrides", seed, where),
                paper=paper,
                label=raw.get("label"),
                seed=seed,
                group=run_id,
                method=raw.get("method"),
                stages=_stages(raw.get("stages"), f"{where}.stages"),
            )
        )
    return runs


def load_suite(
    path: str | os.PathLike, runs_dir: str | os.PathLike | None = None, only: list[str] | None = None
) -> Suite:
    """Parse and check a suite file; config paths are relative to the repository root.

    Args:
        path: the suite file.
        runs_dir: where the runs go; None = the file's `runs_dir` (relative to the repository root) or
            `experiments/runs/<name>`.
        only: check that the config files exist for these runs only (None = all runs).

    Raises:
        SuiteError: naming the file and field, for a malformed file, duplicate run ids or missing config files.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise SuiteError(f"{path}: cannot read the suite file: {error}") from error
    allowed = {f for f in Suite.__dataclass_fields__} - {"path"} | {"matrix", "seeds"}
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise SuiteError(f"{path}: expected a mapping with a 'name' (string) and 'runs' and/or 'matrix'")
    if set(raw) - allowed:
        raise SuiteError(f"{path}: unknown keys {sorted(set(raw) - allowed)} (allowed: {sorted(allowed)})")
    raw_runs = list(raw.get("runs") or [])
    for i, block in enumerate(raw.get("matrix") or []):
        raw_runs += _matrix_runs(block, f"{path}: matrix[{i}]")
    seeds = raw.get("seeds")
    runs = [run for i, r in enumerate(raw_runs) for run in _parse_run(r, f"{path}: runs[{i}]", seeds)]
    # seed-major order: every setting's first seed before any second seed, so a partial suite is balanced
    runs.sort(key=lambda run: -1 if run.seed is None else run.seed)
    if not runs:
        raise SuiteError(f"{path}: no runs ('runs' and 'matrix' are empty)")
    seen: set[str] = set()
    for run in runs:
        if run.id in seen:
            raise SuiteError(f"{path}: run id {run.id!r} appears twice")
        seen.add(run.id)
    if runs_dir is not None:
        runs_dir = Path(runs_dir).resolve()
    else:
        runs_dir = ROOT / (raw.get("runs_dir") or f"experiments/runs/{raw['name']}")
    suite = Suite(
        name=raw["name"],
        path=path,
        runs_dir=runs_dir,
        runs=runs,
        project=raw.get("project", "ls-llama"),
        base_configs=_strings(raw.get("base_configs"), f"{path}: base_configs"),
        overrides=_strings(raw.get("overrides"), f"{path}: overrides"),
        fit_overrides=_strings(raw.get("fit_overrides"), f"{path}: fit_overrides"),
        test_overrides=_strings(raw.get("test_overrides"), f"{path}: test_overrides"),
    )
    checked = [r for r in runs if only is None or r.id in only or r.group in only]
    missing = [c for r in checked for c in [*suite.base_configs, *r.configs] if not (ROOT / c).is_file()]
    if missing:
        raise SuiteError(f"{path}: config files not found (relative to {ROOT}): {sorted(set(missing))}")
    return suite
