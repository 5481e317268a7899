"""Where a suite's runs execute: submitit's executors, on this machine or on a SLURM cluster.

Each run (fit, then test of the checkpoint chosen on validation) is one submitit job that calls back into
`experiments.suite`; the `main.py` commands are that job's child processes. `--launcher local` (the default) runs
`--jobs` of them at a time here (`submitit.LocalExecutor`); `--launcher slurm` submits them all as one job array
(`submitit.SlurmExecutor`, `--array-parallelism` at a time) and waits. Results, logs and W&B runs land in the run
folders either way; submitit's own files (the job pickles, one log per job) in `<runs_dir>/.submitit/`.

Interruptions, on SLURM:
- requeued (`scontrol requeue`, or pre-empted with PreemptMode=REQUEUE): SLURM sends SIGTERM to the job's
  processes. `main.py` (Lightning) finishes the running batch and writes `last-interrupted.ckpt`; the job leaves
  no result, so the runner keeps waiting; the job starts again and the suite's resume rules apply (the fit resumes
  from the newest `last*.ckpt`, a finished fit is only tested, a finished run is not redone).
- near the time limit: submitit's signal (`--signal=USR2@90`) reaches the job, which stops `main.py` the same way
  (SIGTERM, then waits for its checkpoint), and submitit requeues it (at most 3 times).
- cancelled (`scancel`): the same SIGTERM; the job ends without a result, which the runner reports as a failure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

log = logging.getLogger("experiments.launchers")
ROOT = Path(__file__).resolve().parents[1]
LAUNCHERS = ("local", "slurm")
SIGNAL_DELAY_S = 90  # submitit's warning before the time limit (USR2): time to stop main.py and requeue


# ---------------------------------------------------------------------------------------------- options
@dataclass
class SlurmOptions:
    """What each run's job asks SLURM for (`--launcher slurm`)."""

    partition: str | None = None
    time: str | None = None
    gpus_per_run: int = 0
    cpus_per_run: int | None = None
    mem: str | None = None
    array_parallelism: int | None = None
    sbatch: list[str] = field(default_factory=list)
    setup: list[str] = field(default_factory=list)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The runner's launcher options."""
    group = parser.add_argument_group("launcher (each run is one submitit job; see experiments/launchers.py)")
    group.add_argument("--launcher", choices=LAUNCHERS, default="local", help="this machine, or a SLURM job array")
    group.add_argument("--partition", help="SLURM partition")
    group.add_argument("--time", help="SLURM time limit of one run's job, e.g. 8:00:00 or 1-12:00:00 (required)")
    group.add_argument("--gpus-per-run", type=int, default=0, metavar="N", help="GPUs of one run's job (SLURM)")
    group.add_argument("--cpus-per-run", type=int, metavar="N", help="CPUs of one run's job (SLURM)")
    group.add_argument("--mem", help="memory of one run's job, e.g. 64G (SLURM)")
    group.add_argument("--array-parallelism", type=int, metavar="N", help="runs at a time on SLURM (default: all)")
    group.add_argument(
        "--sbatch", action="append", default=[], metavar="KEY=VALUE", help="any other sbatch option, e.g. account=lab"
    )
    group.add_argument(
        "--slurm-setup",
        action="append",
        default=[],
        metavar="LINE",
        help="a shell line before the run, e.g. module load",
    )


def slurm_options(args: argparse.Namespace) -> SlurmOptions:
    """The SLURM options of parsed arguments, checked (a one-line `ValueError` names the option)."""
    # each field is the option of the same name (`--gpus-per-run`: gpus_per_run), `setup` is `--slurm-setup`
    names = {f.name: "slurm_setup" if f.name == "setup" else f.name for f in fields(SlurmOptions)}
    options = SlurmOptions(**{name: getattr(args, option) for name, option in names.items()})
    if args.launcher == "slurm":
        slurm_parameters(options, "check")  # raises on a malformed value
        if not args.dry_run and shutil.which("sbatch") is None:
            raise ValueError("--launcher slurm: no sbatch on this machine (run it from the cluster's login node)")
    return options


def time_minutes(text: str) -> int:
    """Minutes of a SLURM time limit: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S` (seconds round up).

    Raises:
        ValueError: another format, or zero.
    """
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if match is None:
        raise ValueError(f"--time {text!r}: expected a SLURM time such as 8:00:00, 90 (minutes) or 1-12:00:00")
    days, first, second, third = (int(group) if group else 0 for group in match.groups())
    if match.group(1) is not None or match.group(4) is not None:  # D-H[:M[:S]] or H:M:S
        hours, minutes, seconds = first, second, third
    else:  # M[:S]
        hours, minutes, seconds = 0, first, second
    total = days * 24 * 60 + hours * 60 + minutes + -(-seconds // 60)
    if total <= 0:
        raise ValueError(f"--time {text!r}: the time limit must be positive")
    return total


def slurm_parameters(options: SlurmOptions, name: str) -> dict[str, Any]:
    """submitit `SlurmExecutor` parameters of one run's job.

    Raises:
        ValueError: no --time, or a malformed --time or --sbatch (one line naming it).
    """
    if options.time is None:
        raise ValueError("--launcher slurm needs --time, the time limit of one run's job (e.g. 8:00:00)")
    extra: dict[str, Any] = {"requeue": True}  # requeueable whatever the cluster's JobRequeue default
    for item in options.sbatch:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--sbatch {item!r}: expected KEY=VALUE, e.g. account=mylab")
        extra[key.lstrip("-")] = value
    if options.mem:
        extra["mem"] = options.mem  # as written (submitit's own `mem` wants gigabytes)
    parameters: dict[str, Any] = {
        "job_name": f"ls-llama-{name}",
        "time": time_minutes(options.time),
        "signal_delay_s": SIGNAL_DELAY_S,
        "stderr_to_stdout": True,
        "additional_parameters": extra,
    }
    optional = {
        "partition": options.partition,
        "gpus_per_node": options.gpus_per_run or None,
        "cpus_per_task": options.cpus_per_run,
        "array_parallelism": options.array_parallelism,
        "setup": options.setup or None,
    }
    parameters.update({key: value for key, value in optional.items() if value is not None})
    return parameters


def _python() -> str:
    """How a job starts Python: this interpreter, importing this checkout's `experiments` (whatever the job's working
    folder and other installed copies)."""
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return f"env PYTHONPATH={shlex.quote(path)} {shlex.quote(sys.executable)}"


def sbatch_script(options: SlurmOptions, name: str, folder: Path, runs: int) -> str:
    """The sbatch script that submitit writes for an array of `runs` jobs (shown by `--dry-run`)."""
    from submitit.slurm.slurm import _make_sbatch_string  # submitit's own writer (SlurmExecutor needs `srun`)

    command = f"{_python()} -u -m submitit.core._submit {shlex.quote(str(folder))}"
    parameters = slurm_parameters(options, name)
    return _make_sbatch_string(command=command, folder=folder, map_count=runs, **parameters)


# ------------------------------------------------------------------------------------- inside one job
_children: set[subprocess.Popen] = set()
_stopping = False  # SIGTERM reached this job: it ends without a result (requeued, pre-empted or cancelled)


class Stopped(RuntimeError):
    """The job was told to stop before a command could start."""


def stopping() -> bool:
    """Whether this job received SIGTERM (it will end without a result)."""
    return _stopping


def run_child(args: list[str], cwd: Path, stdout: Any, env: dict[str, str]) -> int:
    """Run `args` to its end as this job's child; its exit status.

    The child starts with SIGUSR2 blocked: SLURM signals every process of a job, and submitit's time-limit warning
    (USR2) would kill `main.py` outright; this job's handler stops it with SIGTERM instead (a checkpoint first).

    Raises:
        Stopped: the job received SIGTERM before.
    """
    if _stopping:
        raise Stopped("stopped (SIGTERM) before the command started")
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
    try:
        child = subprocess.Popen(args, cwd=cwd, stdout=stdout, stderr=subprocess.STDOUT, env=env)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    _children.add(child)
    try:
        return child.wait()
    finally:
        _children.discard(child)


def _on_sigterm(signum: int, frame: Any) -> None:
    """SLURM (requeue, pre-emption, scancel) or the local controller stops this job: pass it on to `main.py`."""
    global _stopping
    _stopping = True
    for child in list(_children):
        try:
            child.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass


def _stop_children(timeout: float) -> None:
    """SIGTERM to the running commands, then wait (at most `timeout` seconds) while they write their checkpoints.

    Called from a signal handler that interrupted `Popen.wait`, whose lock is held: reap with `os.waitpid` here.
    """
    _on_sigterm(signal.SIGTERM, None)
    deadline = time.monotonic() + timeout
    for child in list(_children):
        while time.monotonic() < deadline:
            try:
                pid, status = os.waitpid(child.pid, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                child.returncode = os.waitstatus_to_exitcode(status)
                break
            time.sleep(0.2)


class Job:
    """One run as a submitit job: `work()` (fit and test), its outcome `{"result": ...}` or `{"error": ...}`.

    Checkpointable (submitit calls `checkpoint` at the time-limit warning): it stops `main.py` (a checkpoint) and is
    requeued as it is; the suite's resume rules do the rest. After SIGTERM it leaves no outcome (`os._exit`): SLURM
    requeues it, or the runner reports a job that ended without a result.
    """

    def __init__(self, work: Callable[[], dict[str, Any]]) -> None:
        self.work = work

    def __call__(self) -> dict[str, Any]:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
        signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            return {"result": self.work()}
        except Exception as error:
            log.error("%s", error, exc_info=not isinstance(error, RuntimeError))  # a traceback where unexpected
            if _stopping:
                print(
                    f"stopped by SIGTERM ({error}); no result: the scheduler requeues or cancels this job",
                    file=sys.stderr,
                    flush=True,
                )
                os._exit(143)
            return {"error": str(error)}

    def checkpoint(self) -> Any:
        """submitit's time-limit (or pre-emption) signal: stop `main.py` with a checkpoint, requeue this job."""
        _stop_children(SIGNAL_DELAY_S - 20)
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self)


# ------------------------------------------------------------------------------------------- executors
JOBS = "slurm_jobs.json"  # {run id: SLURM job id} of the latest submissions from a runs folder
FINAL_STATES = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "TIMEOUT"}
GONE = "GONE"  # squeue no longer knows the job (older than MinJobAge): it ended


def _watcher() -> Any:
    """submitit's SLURM state poller, also where accounting is off (`sacct` fails): `squeue` there."""
    from submitit.slurm.slurm import SlurmInfoWatcher

    class Watcher(SlurmInfoWatcher):
        sacct: bool | None = None

        def _make_command(self) -> list[str] | None:
            command = super()._make_command()
            if command is None:
                return None
            if self.sacct is None:
                self.sacct = subprocess.run(["sacct", "-n", "-X", "-j", "1"], capture_output=True).returncode == 0
            return (
                command
                if self.sacct
                else ["squeue", "--me", "--states=all", "--array", "--noheader", "--format=%i|%T|%N"]
            )

        def read_info(self, string: bytes | str) -> dict[str, dict[str, str]]:
            if self.sacct:
                return super().read_info(string)
            text = string.decode() if isinstance(string, bytes) else string
            rows = [line.split("|") for line in text.splitlines() if line.count("|") == 2]
            info = {job_id: {"JobID": job_id, "State": state, "NodeList": nodes} for job_id, state, nodes in rows}
            return {job_id: info.get(job_id, {"State": GONE}) for job_id in self._registered} | info

        def is_done(self, job_id: str, mode: str = "standard") -> bool:
            state = self.get_state(job_id, mode=mode).split(" ")[0].upper()
            return state in FINAL_STATES or state == GONE

    return Watcher(delay_s=60)


def executor(launcher: str, folder: Path, name: str, slurm: SlurmOptions) -> Any:
    """A submitit executor writing its files under `folder`."""
    import submitit

    python = _python()
    if launcher == "local":
        local = submitit.LocalExecutor(folder, python=python)
        local.update_parameters(timeout_min=60 * 24 * 365, stderr_to_stdout=True)  # no time limit here
        return local
    cluster = submitit.SlurmExecutor(folder, python=python)
    cluster.update_parameters(**slurm_parameters(slurm, name))
    return cluster


def _outcome(job: Any) -> dict[str, Any]:
    """A finished job's `{"result": ...}` or `{"error": ...}`; the error names the job's log."""
    try:
        outcome = job.result()
    except Exception as error:  # submitit: the job ended without a result (killed, cancelled, node failure)
        state = getattr(job, "state", "?")
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return {"error": f"job {job.job_id} ended without a result (state {state}): {first}", "log": job.paths.stdout}
    return {**outcome, "log": job.paths.stdout}


def _live_jobs(folder: Path) -> dict[str, str]:
    """`{run id: job id}` of the jobs an earlier runner submitted from `folder` that SLURM still queues or runs."""
    recorded = json.loads((folder / JOBS).read_text()) if (folder / JOBS).is_file() else {}
    if not recorded:
        return {}
    queue = subprocess.run(["squeue", "--me", "--array", "--noheader", "--format=%i"], capture_output=True, text=True)
    active = set(queue.stdout.split())
    return {run_id: job_id for run_id, job_id in recorded.items() if job_id in active}


def _submit_array(runner: Any, work: dict[str, Callable[[], dict[str, Any]]], folder: Path) -> dict[str, Any]:
    """Submit `work` as one job array, except runs whose job from an earlier runner still lives: wait for those."""
    from submitit.slurm.slurm import SlurmJob

    live = _live_jobs(folder)
    todo = [run_id for run_id in work if run_id not in live]
    submitted = {}
    if todo:
        with runner.batch():
            submitted = {run_id: runner.submit(Job(work[run_id])) for run_id in todo}
    jobs = {**{run_id: SlurmJob(folder, live[run_id]) for run_id in work if run_id in live}, **submitted}
    recorded = json.loads((folder / JOBS).read_text()) if (folder / JOBS).is_file() else {}
    (folder / JOBS).write_text(json.dumps({**recorded, **{r: job.job_id for r, job in jobs.items()}}, indent=1))
    watcher = _watcher()
    for run_id, job in jobs.items():
        job.watcher = watcher  # this job's state comes from our poller (sacct, else squeue)
        watcher.register_job(job.job_id)
        how = "still queued or running from an earlier runner" if run_id in live else "submitted"
        log.info("%s: SLURM job %s, %s (log %s)", run_id, job.job_id, how, job.paths.stdout)
    return jobs


def launch(
    work: dict[str, Callable[[], dict[str, Any]]],
    launcher: str,
    folder: Path,
    name: str,
    jobs: int = 1,
    slurm: SlurmOptions | None = None,
    on_done: Callable[[str, dict[str, Any]], bool] | None = None,
    poll_s: float = 1.0,
) -> dict[str, dict[str, Any]]:
    """Run each `work[id]` as a submitit job, `jobs` at a time here or all as one SLURM array; their outcomes.

    `on_done(id, outcome)` sees each outcome as its job ends; returning False cancels the rest (fail fast).
    """
    runner = executor(launcher, folder, name, slurm or SlurmOptions())
    queue, running, outcomes = list(work), {}, {}
    if launcher == "slurm":  # all at once: one array, throttled by SLURM (--array-parallelism)
        running = _submit_array(runner, work, folder)
        queue = []
    while queue or running:
        while queue and len(running) < max(1, jobs):
            run_id = queue.pop(0)
            running[run_id] = runner.submit(Job(work[run_id]))
            log.info("%s: started (log %s)", run_id, running[run_id].paths.stdout)
        for run_id, job in list(running.items()):
            if not job.done():
                continue
            del running[run_id]
            outcomes[run_id] = _outcome(job)
            if on_done is not None and not on_done(run_id, outcomes[run_id]):
                for other in running.values():
                    other.cancel(check=False)
                return outcomes
        time.sleep(poll_s)
    return outcomes
