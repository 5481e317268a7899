"""Run a suite of experiments: each run fits, then tests the best checkpoint; then tabulate.

    python -m experiments.suite experiments/repro_smollm2/suite.yaml            # run (or resume) every run
    python -m experiments.suite experiments/repro_smollm2/suite.yaml --dry-run  # the commands, pasteable into bash
    python -m experiments.suite SUITE.yaml --only conll2003-smollm2-ls_unllama --force conll2003-smollm2-ls_unllama
    python -m experiments.suite SUITE.yaml -- --data.init_args.data_dir=/data/x   # appended to every command
    python -m experiments.suite SUITE.yaml --launcher slurm --partition gpu --gpus-per-run 1 --time 8:00:00

Each run is one submitit job (`experiments/launchers.py`): `--jobs` at a time on this machine (the default), or all
of them as one SLURM job array (`--launcher slurm`); `--in-process` runs them here, one after the other.

A suite file (YAML: `experiments/suite_spec.py`) lists runs; each run is `python main.py fit --config <base configs>
--config <run configs> --config <logging overlay> <overrides>` followed by `python main.py test ... --ckpt_path <best
checkpoint>`, where the best checkpoint is the one the trainer's `ModelCheckpoint` chose by the VALIDATION score
(`val/...`): the test split is never used for selection. Each run lives in `<runs_dir>/<run id>/`:

    run.json                 the run's arguments (a later invocation with other arguments refuses to mix them)
    fit/version_N/           CSV logs (metrics.csv), hparams, checkpoints/ (best-*.ckpt, last.ckpt)
    test/version_N/          the test's CSV logs
    wandb/                   offline W&B runs (`wandb sync <runs_dir>/*/wandb/offline-run-*` uploads them)
    wandb_id                 the W&B run id that fit and test share (one W&B run per trained model)
    fit.log, test.log        the commands' output (each job's own log: <runs_dir>/.submitit/<job>_0_log.out)
    fit_done.json            best checkpoint and validation score, written when fit succeeded
    result.json              test metrics etc.: the run is finished, a later invocation skips it

A run killed half-way resumes from its newest `last*.ckpt` (`last.ckpt` at each new best, `last-interrupted.ckpt`
on SIGTERM: pre-emption, a requeued SLURM job), or starts again when it had none, and the best checkpoint is chosen
over all the parts of the fit; a run whose fit finished but whose test did not is only tested. After the runs, the
results table (`results.md`, `results.csv`, with the paper's number beside ours) is written into `<runs_dir>`.

W&B: each run's loggers are tagged `suite:<name>` and `run:<id>` (on top of the dataset/backbone/mask/pooling tags
and the dataset group that the CLI adds), so a dashboard filters a suite and compares BERT vs LS-LLaMA vs
LS-unLLaMA by tag.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import secrets
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from experiments import launchers, suite_spec
from experiments.suite_spec import ROOT, STAGES, Run, Suite, SuiteError, load_suite, paper_key

__all__ = ["ROOT", "STAGES", "Options", "Run", "Suite", "SuiteError", "load_suite", "main", "paper_key", "run_suite"]
log = logging.getLogger("experiments.suite")


# ---------------------------------------------------------------------------------------------- commands
def logging_overlay(suite: Suite, run: Run, stage: str, wandb_mode: str, wandb_id: str | None = None) -> dict[str, Any]:
    """The config that sends a run's logs into its folder: CSV (`<run>/<stage>/version_N`) and W&B.

    Fit and test log into one W&B run (`wandb_id`, by default the run's `wandb_run_id`; the test's logger resumes
    it), whose config also holds the paper's number for the run (`paper.key`, `paper.score`, from
    experiments/paper_numbers.yaml).
    """
    run_dir = suite.runs_dir / run.id
    loggers: list[dict[str, Any]] = [
        {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(run_dir), "name": stage}}
    ]
    if wandb_mode != "off":
        wandb_args = {
            "save_dir": str(run_dir),
            "project": suite.project,
            "name": run.id,
            "id": wandb_id or wandb_run_id(run_dir),
            "job_type": "fit",  # the test stage adds its metrics to the fit's run
            "group": f"{suite.name}/{run.group or run.id}",  # the seeds of one setting together
            "tags": [f"suite:{suite.name}", f"run:{run.group or run.id}"]
            + ([] if run.seed is None else [f"seed:{run.seed}"]),
            "config": {"paper": paper_entry(run.paper)},
            "offline": wandb_mode == "offline",
        }
        loggers.append({"class_path": "lightning.pytorch.loggers.WandbLogger", "init_args": wandb_args})
    return {"trainer": {"logger": loggers}}


def wandb_run_id(run_dir: Path) -> str:
    """The W&B run id of a suite run, made once and kept in `<run_dir>/wandb_id`: fit, a resumed fit and test log
    into one W&B run (offline: one `offline-run-*-<id>` folder per stage, which `wandb sync` joins in time order);
    `--force` deletes the folder, so a rerun is a new W&B run."""
    path = run_dir / "wandb_id"
    if path.is_file():
        return path.read_text().strip()
    run_id = secrets.token_hex(6)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run_id + "\n")
    return run_id


def paper_entry(key: str | None) -> dict[str, Any]:
    """`{"key", "score" (percent, None where not reported), "source"}` of a key of experiments/paper_numbers.yaml
    (not `value`: W&B keeps config values under `value`, a nested `value` key would be ambiguous in its filters)."""
    from experiments.results_table import load_paper_numbers  # pandas: only where W&B logs are written

    entry = load_paper_numbers().get(key or "", {})
    return {"key": key, "score": entry.get("value"), "source": entry.get("source")}


def command(
    suite: Suite, run: Run, stage: str, overlay: Path | dict[str, Any], ckpt_path: str | None = None
) -> list[str]:
    """The `main.py` arguments (without the interpreter) of a run's `fit` or `test` stage; `overlay` is the logging
    config's file, or the config itself (written inline: `--config '<json>'`, which jsonargparse reads as well)."""
    args = [stage]
    if isinstance(overlay, dict):
        overlay_arg = json.dumps(overlay)
    else:
        overlay_arg = str(overlay.relative_to(ROOT)) if overlay.is_relative_to(ROOT) else str(overlay)
    for config in [*suite.base_configs, *run.configs, overlay_arg]:
        args += ["--config", config]
    args += suite.overrides + run.overrides
    args += (suite.fit_overrides + run.fit_overrides) if stage == "fit" else (suite.test_overrides + run.test_overrides)
    if ckpt_path:
        args += ["--ckpt_path", ckpt_path]
    return args


def thread_count(threads: str) -> int | None:
    """Torch threads for the next command: a number, `auto`, or `default` (None: torch's own choice).

    `auto` = 1 while the 1-minute load average is at least the core count (a shared machine: two threads would then
    spin in OpenMP barriers waiting for each other, seen here at twice the wall time and three times the CPU of one
    thread), else every core.
    """
    if threads == "default":
        return None
    if threads == "auto":
        cores = os.cpu_count() or 1
        return 1 if os.getloadavg()[0] >= cores else cores
    return int(threads)


def execute(args: list[str], log_path: Path, in_process: bool, threads: int | None = None) -> float:
    """Run `main.py <args>` (a subprocess, or in this process), its output appended to `log_path`; seconds taken.

    Raises:
        RuntimeError: the command failed; the message holds the end of its log.
    """
    start = time.perf_counter()
    with log_path.open("a") as out:
        out.write(f"\n$ python main.py {shlex.join(args)}\n")
    if in_process:
        from main import main  # imported here: the subprocess mode does not need torch in the runner

        cwd, argv = os.getcwd(), sys.argv
        os.chdir(ROOT)  # config paths are relative to the repository root
        sys.argv = [str(ROOT / "main.py")]  # LightningCLI warns when both sys.argv and args hold arguments
        try:
            main(args)
        except SystemExit as error:  # jsonargparse reports bad arguments with SystemExit
            if error.code:
                raise RuntimeError(f"main.py {args[0]} exited with {error.code}") from error
        except Exception as error:
            raise RuntimeError(f"main.py {args[0]} failed: {type(error).__name__}: {error}") from error
        finally:
            os.chdir(cwd)
            sys.argv = argv
        return time.perf_counter() - start
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with log_path.open("a") as out:
        out.write(f"(torch threads: {threads or 'default'})\n")
        out.flush()
        code = launchers.run_child([sys.executable, "main.py", *args], cwd=ROOT, stdout=out, env=env)
    if code != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-25:])
        raise RuntimeError(f"main.py {args[0]} exited with {code}, log {log_path}\nits end:\n{tail}")
    return time.perf_counter() - start


# ------------------------------------------------------------------------------------------ run state
def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)  # atomic: a killed runner never leaves half a marker


def newest_last_checkpoint(run_dir: Path) -> Path | None:
    """The newest `last.ckpt` under `<run_dir>/fit/version_*/checkpoints/`, or None."""
    found = sorted((run_dir / "fit").glob("version_*/checkpoints/last*.ckpt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def _fit_parts(run_dir: Path) -> list[list[Path]]:
    """Per `fit/version_N` (one per start of the fit, in order), its `last*.ckpt` files, oldest first."""
    versions = sorted((run_dir / "fit").glob("version_*"), key=lambda p: int(p.name.split("_")[-1]))
    return [sorted(v.glob("checkpoints/last*.ckpt"), key=lambda p: p.stat().st_mtime) for v in versions]


def _interrupted(run_dir: Path) -> bool:
    """Whether the newest part of a fit ended with the SIGTERM checkpoint (`last-interrupted.ckpt`)."""
    parts = _fit_parts(run_dir)
    return bool(parts and parts[-1]) and parts[-1][-1].name.startswith("last-interrupted")


def best_checkpoint(last_ckpt: Path) -> tuple[str, float, str, bool] | None:
    """`(path, score, monitor, maximize)` of the best checkpoint that the fit's `ModelCheckpoint` recorded in
    `last_ckpt`; None before its first validation.

    Raises:
        SuiteError: no ModelCheckpoint monitors a validation metric, or its best file is missing.
    """
    import torch

    state = torch.load(last_ckpt, map_location="cpu", weights_only=False)
    for key, value in state.get("callbacks", {}).items():
        monitor = value.get("monitor") if isinstance(value, dict) else None
        if key.startswith("ModelCheckpoint") and monitor:
            if not monitor.startswith("val/"):
                raise SuiteError(f"{last_ckpt}: ModelCheckpoint monitors {monitor!r}; select on a val/ metric")
            path = value.get("best_model_path")
            if path and not Path(path).is_file():
                raise SuiteError(f"{last_ckpt}: the best checkpoint {path} it records is missing")
            return (path, float(value["best_model_score"]), monitor, "'mode': 'min'" not in key) if path else None
    raise SuiteError(
        f"{last_ckpt}: no ModelCheckpoint with a monitor; the trainer config needs "
        "ModelCheckpoint(monitor='val/score', mode='max', save_last=True), as in configs/trainer/default.yaml"
    )


def best_of_fit(run_dir: Path) -> tuple[str, float, str]:
    """`(path, score, monitor)` of the best checkpoint over every part of a fit: a resumed fit logs into a new
    `fit/version_N`, and Lightning restores a `ModelCheckpoint`'s best scores only into the same folder, so each
    part knows its own best (ties go to the earlier part, as one uninterrupted fit keeps the first best).

    Raises:
        SuiteError: no part recorded a best checkpoint (see `best_checkpoint`).
    """
    found = [best for lasts in _fit_parts(run_dir) if lasts and (best := best_checkpoint(lasts[-1]))]
    if not found:
        raise SuiteError(f"{run_dir}/fit: no ModelCheckpoint recorded a best checkpoint (no validation ran?)")
    sign = 1 if found[0][3] else -1
    path, score, monitor, _ = max(found, key=lambda best: (sign * best[1], -found.index(best)))
    return path, score, monitor


def test_metrics(run_dir: Path) -> dict[str, float]:
    """The test metrics logged by the newest test stage (`<run_dir>/test/version_*/metrics.csv`)."""
    import pandas as pd

    files = sorted((run_dir / "test").glob("version_*/metrics.csv"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise SuiteError(f"{run_dir}/test: the test stage logged no metrics.csv")
    frame = pd.read_csv(files[-1])
    metrics = {c: float(frame[c].dropna().iloc[-1]) for c in frame.columns if c.startswith("test/")}
    if "test/score" not in metrics:
        raise SuiteError(f"{files[-1]}: no test/score column (columns: {list(frame.columns)})")
    return metrics


def machine() -> dict[str, Any]:
    """Where the run ran: host, CPU model, cores, torch version and GPU."""
    import torch

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"host": platform.node(), "cpu": cpu, "nproc": os.cpu_count(), "torch": torch.__version__, "gpu": gpu}


# ------------------------------------------------------------------------------------------------ running
@dataclass
class Options:
    """How to run a suite (see `python -m experiments.suite --help`); `rerun` is the runner's command line for
    one run (without `--only`), which `--dry-run` prints."""

    only: list[str] | None = None
    seeds: list[int] | None = None
    force: list[str] = field(default_factory=list)
    dry_run: bool = False
    wandb: str = "offline"
    in_process: bool = False
    threads: str = "default"
    fail_fast: bool = False
    jobs: int = 1
    launcher: str = "local"
    slurm: launchers.SlurmOptions = field(default_factory=launchers.SlurmOptions)
    rerun: list[str] | None = None


def _check_arguments(run_dir: Path, arguments: dict[str, Any]) -> None:
    recorded = _read_json(run_dir / "run.json")
    if recorded is not None and recorded.get("arguments") != arguments:
        raise SuiteError(
            f"{run_dir}/run.json: this run was started with other arguments ({recorded.get('arguments')}); "
            f"now {arguments}. Rerun it from scratch with --force {run_dir.name}, or give it another id."
        )


def prepare(suite: Suite, run: Run, options: Options) -> dict[str, Any] | None:
    """Check a run against what an earlier invocation left (`--force` deletes it first) and write its run.json and
    logging configs; returns its result if it finished earlier (nothing is written then, nor on a dry run)."""
    run_dir = suite.runs_dir / run.id
    if run.id in options.force and run_dir.exists() and not options.dry_run:
        import shutil

        shutil.rmtree(run_dir)
    arguments = {k: v for k, v in asdict(run).items() if k not in {"label", "paper", "seed", "group", "method"}}
    if run.stages == list(STAGES):
        del arguments["stages"]  # the default: runs.json of runs started before `stages` existed stay valid
    arguments.update(base_configs=suite.base_configs, suite_overrides=suite.overrides)
    arguments.update(suite_fit_overrides=suite.fit_overrides, suite_test_overrides=suite.test_overrides)
    _check_arguments(run_dir, arguments)
    done = _read_json(run_dir / "result.json")
    if done is not None:
        log.info("%s: finished earlier (test/score %.4f), skipped", run.id, done["test"]["test/score"])
        return done
    if options.dry_run:
        return None
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_json(run_dir / "run.json", {"id": run.id, "suite": suite.name, "arguments": arguments})
    for stage in ("fit", "test"):
        overlay = logging_overlay(suite, run, stage, options.wandb)
        (run_dir / f"logging_{stage}.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
    return None


def run_stages(suite: Suite, run: Run, options: Options) -> dict[str, Any]:
    """Fit and test a prepared run, resuming what an earlier attempt left (a requeued job: a finished run is
    returned as it is, a finished fit is only tested, a fit resumes from its newest `last*.ckpt`)."""
    run_dir = suite.runs_dir / run.id
    done = _read_json(run_dir / "result.json")
    if done is not None:
        return done
    overlays = {stage: run_dir / f"logging_{stage}.yaml" for stage in ("fit", "test")}
    if "fit" not in run.stages:
        return _test(suite, run, run_dir, overlays["test"], {}, options)  # the untrained model, no checkpoint
    fit = _read_json(run_dir / "fit_done.json") or _fit(suite, run, run_dir, overlays["fit"], options)
    return _test(suite, run, run_dir, overlays["test"], fit, options)


def _fit(suite: Suite, run: Run, run_dir: Path, overlay: Path, options: Options) -> dict[str, Any]:
    resume = newest_last_checkpoint(run_dir)
    log.info("%s: fit%s", run.id, f" (resuming from {resume})" if resume else "")
    args = command(suite, run, "fit", overlay, str(resume) if resume else None)
    threads = thread_count(options.threads)
    seconds = execute(args, run_dir / "fit.log", options.in_process, threads)
    last = newest_last_checkpoint(run_dir)
    if last is None:
        raise SuiteError(
            f"{run_dir}: fit wrote no last.ckpt; the trainer config needs checkpointing on (no fast_dev_run) and "
            "ModelCheckpoint(monitor='val/score', mode='max', save_last=True)"
        )
    if launchers.stopping() or _interrupted(run_dir):  # main.py exits 0 after its SIGTERM checkpoint
        raise RuntimeError(f"main.py fit was interrupted (SIGTERM) and saved {last}: the next start resumes there")
    best, score, monitor = best_of_fit(run_dir)
    fit = {"best_ckpt": best, "best_val": score, "monitor": monitor, "fit_seconds": seconds, "fit_command": args}
    fit["fit_threads"] = threads
    _write_json(run_dir / "fit_done.json", fit)
    log.info("%s: fit done in %.1f min; best %s %.4f (%s)", run.id, seconds / 60, monitor, score, best)
    return fit


def _test(suite: Suite, run: Run, run_dir: Path, overlay: Path, fit: dict, options: Options) -> dict[str, Any]:
    args = command(suite, run, "test", overlay, fit.get("best_ckpt"))
    seconds = execute(args, run_dir / "test.log", options.in_process, thread_count(options.threads))
    result = {
        "id": run.id,
        "label": run.label or run.id,
        "suite": suite.name,
        "paper": run.paper,
        "group": run.group or run.id,
        "seed": run.seed,
        **({"method": run.method} if run.method else {}),
        "configs": [*suite.base_configs, *run.configs],
        **fit,
        "test": test_metrics(run_dir),
        "test_seconds": seconds,
        "test_command": args,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
    }
    _write_json(run_dir / "result.json", result)
    log.info("%s: test/score %.4f (%.1f min)", run.id, result["test"]["test/score"], seconds / 60)
    return result


def print_dry_run(suite: Suite, runs: list[Run], options: Options) -> None:
    """Print what running `runs` would execute, as a script that runs when pasted into bash: per run the runner's
    line (a comment) and the exact `main.py` commands, with the logging configs inline and the test's checkpoint
    found after the fit; then, for `--launcher slurm`, the sbatch script of the array (comments)."""
    rerun = options.rerun or [str(suite.path), "--runs-dir", str(suite.runs_dir)]
    split = rerun.index("--") if "--" in rerun else len(rerun)
    print(f"cd {shlex.quote(str(ROOT))}")
    for run in runs:
        run_dir = suite.runs_dir / run.id
        wandb_id = (run_dir / "wandb_id").read_text().strip() if (run_dir / "wandb_id").is_file() else None
        wandb_id = wandb_id or secrets.token_hex(6)  # not written: the runner makes the run's own
        print(f"# {run.id}: {' then '.join(run.stages)}. The runner does it and keeps the run's state:")
        print(f"#   python -m experiments.suite {shlex.join([*rerun[:split], '--only', run.id, *rerun[split:]])}")
        print("# or by hand, the same commands:")
        fit = _read_json(run_dir / "fit_done.json") if "fit" in run.stages else {}  # {}: tests an untrained model
        for stage in run.stages:
            overlay = logging_overlay(suite, run, stage, options.wandb, wandb_id)
            resume = newest_last_checkpoint(run_dir) if stage == "fit" and fit is None else None
            line = f"python main.py {shlex.join(command(suite, run, stage, overlay, str(resume) if resume else None))}"
            print(line + (f" --ckpt_path {_best_after_fit(run_dir, fit)}" if stage == "test" and fit != {} else ""))
    if options.launcher == "slurm" and runs:
        script = launchers.sbatch_script(options.slurm, suite.name, suite.runs_dir / ".submitit", len(runs))
        print(f"# SLURM: one job array of {len(runs)} runs; the sbatch script that submitit writes:")
        print("\n".join(f"#   {line}" if line else "#" for line in script.splitlines()))


def _best_after_fit(run_dir: Path, fit: dict[str, Any] | None) -> str:
    """The test's `--ckpt_path` in a pasteable script: the fit's best checkpoint, or the shell expression that finds
    it once the fit has run (the newest `best-*.ckpt`: ModelCheckpoint(monitor=val/score) writes one at each new
    best, configs/trainer/default.yaml)."""
    if fit:
        return shlex.quote(fit["best_ckpt"])
    return f'"$(ls -t {shlex.quote(str(run_dir))}/fit/version_*/checkpoints/best-*.ckpt | head -1)"'


def run_suite(suite: Suite, options: Options) -> dict[str, Any]:
    """Run (or resume) every selected run, each a submitit job (`options.launcher`), or one after the other in this
    process (`options.in_process`); returns `{"results": [...], "failed": {id: error}}`."""
    selected = [r for r in suite.runs if options.only is None or r.id in options.only or r.group in options.only]
    selected = [r for r in selected if options.seeds is None or r.seed in options.seeds]
    unknown = set(options.only or []) - {r.id for r in suite.runs} - {r.group for r in suite.runs}
    if unknown:
        raise SuiteError(f"{suite.path}: --only names runs that the suite lacks: {sorted(unknown)}")
    finished = {run.id: prepare(suite, run, options) for run in selected}
    todo = [run for run in selected if finished[run.id] is None]
    if options.dry_run:
        print_dry_run(suite, todo, options)
        return {"results": [], "failed": {}}
    outcomes: dict[str, dict[str, Any]] = {}

    def report(run_id: str, outcome: dict[str, Any]) -> bool:
        outcomes[run_id] = outcome
        if "error" in outcome:
            log.error("%s failed: %s", run_id, outcome["error"])
            return not options.fail_fast
        log.info("%s: done, test/score %.4f", run_id, outcome["result"]["test"]["test/score"])
        return True

    for i, run in enumerate(todo if options.in_process else [], 1):
        log.info("[%d/%d] %s", i, len(todo), run.id)
        try:
            report(run.id, {"result": run_stages(suite, run, options)})
        except (RuntimeError, SuiteError) as error:
            if options.fail_fast:
                raise
            report(run.id, {"error": str(error)})
    if todo and not options.in_process:
        work = {run.id: partial(run_stages, suite, run, options) for run in todo}
        launchers.launch(
            work, options.launcher, suite.runs_dir / ".submitit", suite.name, options.jobs, options.slurm, report
        )
    failed = {run_id: _failure(outcome) for run_id, outcome in outcomes.items() if "error" in outcome}
    if failed and options.fail_fast:
        raise RuntimeError(f"{next(iter(failed))}: {next(iter(failed.values()))}")
    outcomes.update({run_id: {"result": done} for run_id, done in finished.items() if done is not None})
    results = [outcomes[r.id]["result"] for r in selected if "result" in outcomes.get(r.id, {})]
    if any(suite.runs_dir.glob("*/result.json")):
        from experiments.results_table import write_tables

        write_tables(suite.runs_dir, suite.runs_dir)
    return {"results": results, "failed": failed}


def _failure(outcome: dict[str, Any]) -> str:
    """A failed run's error, its first line naming the job's log (the commands' logs are in the run folder)."""
    first, _, rest = outcome["error"].partition("\n")
    return first + (f" (job log: {outcome['log']})" if outcome.get("log") else "") + (f"\n{rest}" if rest else "")


NOT_RERUN = {"help", "suite", "only", "seeds", "force", "dry_run", "to_sweep"}  # left out of `Options.rerun`


def rerun_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The runner's command line for the same runs folder and settings, without the run selection."""
    line = [args.suite]
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if action.dest in NOT_RERUN or value == action.default:
            continue
        if isinstance(action, argparse._StoreTrueAction):
            line.append(action.option_strings[0])
        else:
            line += [
                str(x)
                for item in (value if isinstance(action, argparse._AppendAction) else [value])
                for x in (action.option_strings[0], item)
            ]
    return line + (["--", *args.overrides] if args.overrides else [])


def parser() -> argparse.ArgumentParser:
    """The runner's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m experiments.suite",
        description=f"{__doc__}\n{suite_spec.__doc__}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("suite", help="suite YAML file")
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these run ids (or ids without -s<n>)")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="N", help="run only the repeats of these seeds")
    parser.add_argument("--force", nargs="+", default=[], metavar="ID", help="delete these runs' folders first")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--runs-dir", help="where the runs go (default: the suite's runs_dir)")
    parser.add_argument("--wandb", choices=["offline", "online", "off"], default="offline", help="W&B logging mode")
    parser.add_argument("--in-process", action="store_true", help="run main.py in this process (tests, debugging)")
    parser.add_argument(
        "--threads", default="default", help="torch threads per command: N, `auto` (1 on a busy machine), `default`"
    )
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first failed run")
    parser.add_argument(
        "--jobs", type=int, default=1, help="runs at a time here (--launcher local; give each --threads cores / jobs)"
    )
    parser.add_argument(
        "--to-sweep", nargs="?", const="-", metavar="OUT", help="write the equivalent W&B sweep to OUT (or print it)"
    )
    launchers.add_arguments(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The runner's parsed command line; `overrides` holds what follows `--`, `rerun` its `Options.rerun`."""
    cli = parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)  # after `--`: CLI arguments for every fit and test
    args = cli.parse_args(argv[:split])
    args.overrides = argv[split + 1 :]
    if args.launcher == "slurm" and args.jobs != 1:
        cli.error("--jobs is for --launcher local; on SLURM, --array-parallelism N runs N at a time")
    try:
        args.slurm = launchers.slurm_options(args)
    except ValueError as error:
        cli.error(str(error))
    args.rerun = rerun_args(cli, args)
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (1 when a run failed)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    suite = load_suite(args.suite, args.runs_dir, args.only)
    suite.overrides += args.overrides
    if args.to_sweep:
        from experiments.wandb_sweep import write_sweep

        write_sweep(suite, args.suite, args.to_sweep)
        return 0
    options = Options(**{f.name: getattr(args, f.name) for f in fields(Options)})  # each option its field
    outcome = run_suite(suite, options)
    for run_id, error in outcome["failed"].items():
        print(f"FAILED {run_id}: {error.splitlines()[0]}", file=sys.stderr)
    return 1 if outcome["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
