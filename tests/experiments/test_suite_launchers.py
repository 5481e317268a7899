"""The suite runner's launchers on a tiny 3-run suite (two short fits and a run that fails).

Local (submitit's LocalExecutor): two jobs at a time, the failed run reported with its logs, finished runs not
submitted again. SLURM, on a real single-node cluster that the `slurm_cluster` fixture starts, with the README's
commands: the array in which one run is requeued at the end of its first epoch (`scontrol requeue`, what pre-emption
does) and one gets submitit's time-limit signal (USR2), both ending with the metrics of the local launcher's
uninterrupted runs; a second runner that waits for the first one's job; the multi-node sbatch script as two DDP
processes. Every test here shares one xdist group (one cluster, one local run; `--dist loadgroup` in pyproject);
the fixtures are in conftest.py."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from launcher_helpers import FAILED, ROOT, runner, write_cluster_suite

pytestmark = pytest.mark.xdist_group("slurm")
README = ROOT / "README.md"
RELEASE_AFTER_S = 3  # a requeued job waits this long in PENDING before the test lets it start
SWAPS = {"--partition": "test", "--gpus-per-run": "0", "--time": "0:20:00", "--array-parallelism": "2"}


# ------------------------------------------------------------------------------------------- the local launcher
def test_this_file_runs_on_one_xdist_worker(request):
    """`--dist loadgroup` keeps this file's tests on one worker: with pytest 9.2 and pytest-xdist 3.8 the group is
    silently ignored (pytest-dev/pytest-xdist#1386), and each worker starts its own cluster and suite runs."""
    if getattr(request.config.option, "loadgroup", False):  # an xdist worker of `make test`
        assert request.node.nodeid.endswith("@slurm"), f"{request.node.nodeid}: xdist_group ignored (pytest<9.2)"


def test_two_jobs_at_a_time_and_the_failed_run_reported(local_runs):
    result, runs = local_runs
    assert result.returncode == 1, result.stderr[-4000:]
    started = [line for line in result.stderr.splitlines() if ": started (log " in line]
    first_done = next(i for i, line in enumerate(result.stderr.splitlines()) if ": done, test/score" in line)
    assert len(started) == 3 and result.stderr.splitlines().index(started[1]) < first_done  # two at once
    (failed,) = FAILED.findall(result.stderr)
    run_id, stage, log, job_log = failed
    assert (run_id, stage, Path(log)) == ("broken", "fit", runs / "broken" / "fit.log")
    assert "max_epochs" in Path(log).read_text() and Path(job_log).parent == runs / ".submitit"
    for run_id in ("causal", "bidirectional"):
        done = json.loads((runs / run_id / "result.json").read_text())
        assert done["id"] == run_id and done["best_ckpt"] in " ".join(done["test_command"])
        assert [p.name for p in (runs / run_id / "fit").iterdir()] == ["version_0"]
    assert sorted(p.parent.name for p in runs.glob("*/result.json")) == ["bidirectional", "causal"]


def test_finished_runs_are_not_submitted_again(local_runs):
    _, runs = local_runs
    logs = sorted((runs / ".submitit").glob("*_log.out"))
    again = runner([str(runs.parent / "suite.yaml"), "--only", "causal", "bidirectional"])
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("finished earlier") == 2 and ": started" not in again.stderr
    assert sorted((runs / ".submitit").glob("*_log.out")) == logs


# ----------------------------------------------------------------------------------------------------- SLURM
def readme_commands() -> list[str]:
    """The commands of the README's "On a cluster" section (continuation lines joined, comments dropped)."""
    section = README.read_text().split("## On a cluster", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    joined = re.sub(r"\\\n\s*", " ", "\n".join(blocks))
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def readme_array_command(suite: Path) -> list[str]:
    """The README's SLURM array command with this cluster's parameters and `suite` swapped in."""
    (line,) = [c for c in readme_commands() if "--launcher slurm" in c and "--dry-run" not in c]
    args = shlex.split(line)
    assert args[:3] == ["python", "-m", "experiments.suite"], line
    args[3] = str(suite)
    for i, arg in enumerate(args[:-1]):
        if arg in SWAPS:
            args[i + 1] = SWAPS[arg]
    assert set(SWAPS) <= set(args), f"the README's command lost an option the test swaps: {line}"
    return [sys.executable, *args[1:], "--wandb", "off", "--threads", "1"]  # as the local runs


def interrupt_when_paused(cluster, log: Path, folder: Path, runner: subprocess.Popen) -> dict[str, str]:
    """While the runner waits for the array: requeue `causal` and send `bidirectional` the time-limit signal, each
    while its fit waits at the end of its first epoch (`PauseAfterFirstEpoch`: a fit of seconds would otherwise end
    before the signal reached it), and let them start again as soon as they are pending; returns `{run: job id}`
    of the interrupted jobs."""
    how = {"causal": "requeue", "bidirectional": "USR2"}  # USR2: what `--signal=USR2@90` sends before the limit
    interrupted: dict[str, str] = {}
    pending_since: dict[str, float] = {}
    released: set[str] = set()
    deadline = time.monotonic() + 600
    while runner.poll() is None and time.monotonic() < deadline:
        jobs = dict(re.findall(r"(\w+): SLURM job (\S+), submitted", log.read_text()))
        for run_id in sorted(set(how) - set(interrupted)):
            if run_id in jobs and (folder / "pause" / run_id / "paused").exists():
                if how[run_id] == "requeue":
                    cluster.scontrol("requeue", jobs[run_id])
                else:
                    cluster.signal(jobs[run_id], how[run_id])  # submitit: SIGTERM to main.py, then a requeue
                interrupted[run_id] = jobs[run_id]
        states = cluster.jobs() if set(interrupted.values()) - released else {}
        for job_id in set(interrupted.values()) - released:
            if states.get(job_id) == "PENDING":  # requeued: SLURM would hold it for about two minutes
                pending_since.setdefault(job_id, time.monotonic())
            # not at once: slurmd refuses a job's new credential issued in the second its old one was revoked
            # ("Job credential revoked": the job fails instead of starting again)
            if time.monotonic() - pending_since.get(job_id, time.monotonic()) >= RELEASE_AFTER_S:
                cluster.scontrol("update", f"JobId={job_id}", "StartTime=now")
                released.add(job_id)
        time.sleep(0.1)
    runner.wait(timeout=max(1, deadline - time.monotonic()))
    return interrupted


@pytest.fixture(scope="module")
def slurm_runs(slurm_cluster, tmp_path_factory):
    """The README's array command on the cluster suite, with the two interruptions: (exit status, runner output,
    runs folder, interrupted jobs)."""
    suite = write_cluster_suite(tmp_path_factory.mktemp("slurm_launcher"), pause=True)
    runs = suite.parent / "runs"
    log = suite.parent / "runner.log"
    with log.open("w") as out:
        env = {**os.environ, "LS_LLAMA_ALLOWED_CLASS_PATHS": "tests.experiments.pause_callback"}  # configs are data
        args = readme_array_command(suite)
        runner = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
    interrupted = interrupt_when_paused(slurm_cluster, log, suite.parent, runner)
    return runner.returncode, log.read_text(), runs, interrupted


def _table(runs: Path) -> pd.DataFrame:
    return pd.read_csv(runs / "results.csv").drop(columns=["fit_minutes"]).sort_values("run", ignore_index=True)


@pytest.mark.slurm
def test_the_array_finishes_and_its_table_equals_the_local_launchers(slurm_runs, local_runs):
    status, output, runs, _ = slurm_runs
    assert status == 1, output[-4000:]  # the broken run
    assert re.search(r"causal: SLURM job \d+_0, submitted", output) and re.search(r"broken: SLURM job \d+_2, ", output)
    sbatch = next((runs / ".submitit").glob("*_submission.sh")).read_text()
    assert "#SBATCH --array=0-2%2" in sbatch and "#SBATCH --partition=test" in sbatch and "--requeue" in sbatch
    local_status, local = local_runs
    assert local_status.returncode == 1, local_status.stderr[-4000:]
    pd.testing.assert_frame_equal(_table(runs), _table(local))
    assert sorted(_table(runs)["run"]) == ["bidirectional", "causal"]


def _fits(run_dir: Path) -> list[str]:
    return [line for line in (run_dir / "fit.log").read_text().splitlines() if line.startswith("$ python main.py fit")]


@pytest.mark.slurm
@pytest.mark.parametrize("run_id", ["causal", "bidirectional"], ids=["requeued", "time_limit"])
def test_an_interrupted_run_resumes_from_its_checkpoint_and_matches(run_id, slurm_runs, local_runs):
    _, output, runs, interrupted = slurm_runs
    assert run_id in interrupted, f"{run_id} was not interrupted: {output[-3000:]}"
    fits = _fits(runs / run_id)
    assert len(fits) == 2 and "--ckpt_path" not in fits[0], fits  # started, then resumed
    resumed_from = shlex.split(fits[1])[shlex.split(fits[1]).index("--ckpt_path") + 1]
    assert Path(resumed_from).name.startswith("last") and Path(resumed_from).parent.parent.name == "version_0"
    assert len(list((runs / run_id / "fit").glob("version_*/metrics.csv"))) == 2
    slurm, local = (pd.read_json(r / run_id / "result.json", typ="series") for r in (runs, local_runs[1]))
    assert slurm["best_val"] == pytest.approx(local["best_val"], abs=1e-7)
    assert slurm["test"] == pytest.approx(local["test"], abs=1e-7)  # every test metric, as uninterrupted
    job_log = (runs / ".submitit" / f"{interrupted[run_id]}_0_log.out").read_text()
    if run_id == "bidirectional":  # submitit's signal handler: our checkpoint, then `scontrol requeue`
        assert "Calling checkpoint method" in job_log and "Requeued job" in job_log


@pytest.mark.slurm
def test_a_failing_run_is_reported_with_its_logs(slurm_runs):
    status, output, runs, _ = slurm_runs
    (failed,) = FAILED.findall(output)
    run_id, stage, log, job_log = failed
    assert (run_id, stage, Path(log)) == ("broken", "fit", runs / "broken" / "fit.log")
    assert "max_epochs" in Path(log).read_text()
    assert Path(job_log).parent == runs / ".submitit" and "broken" in Path(job_log).read_text()
    assert not (runs / "broken" / "result.json").exists()


@pytest.mark.slurm
def test_a_second_runner_waits_for_the_jobs_of_the_first_instead_of_resubmitting(slurm_cluster, tmp_path):
    """The runner dies (a login node's session ends) while its job waits in the queue: the same command again
    attaches to that job; cancelling it is then reported as a run that ended without a result."""
    suite = write_cluster_suite(tmp_path)
    args = [
        sys.executable,
        "-m",
        "experiments.suite",
        str(suite),
        "--only",
        "causal",
        "--wandb",
        "off",
        "--launcher",
        "slurm",
        "--partition",
        "test",
        "--time",
        "0:10:00",
        "--sbatch",
        "begin=now+1hour",
    ]
    jobs = tmp_path / "runs" / ".submitit" / "slurm_jobs.json"
    first = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        if jobs.is_file():
            break
        time.sleep(0.1)
    first.kill()
    first.wait()
    (job_id,) = json.loads(jobs.read_text()).values()
    assert slurm_cluster.jobs()[job_id] == "PENDING"
    log = tmp_path / "second.log"
    with log.open("w") as out:
        second = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    attached = f"causal: SLURM job {job_id}, still queued or running from an earlier runner"
    for _ in range(600):
        if attached in log.read_text() or second.poll() is not None:
            break
        time.sleep(0.1)
    subprocess.run(["scancel", job_id], env=slurm_cluster.env, check=True)
    second.wait(timeout=120)
    output = log.read_text()
    assert second.returncode == 1 and attached in output, output
    assert ", submitted" not in output and json.loads(jobs.read_text()) == {"causal": job_id}
    assert re.search(rf"FAILED causal: job {job_id} ended without a result \(state CANCELLED", output), output


# ------------------------------------------------------------------------------------------ one run, two processes
SBATCH_SWAPS = {"--nodes": "1", "--ntasks-per-node": "2", "--cpus-per-task": "1", "--time": "0:10:00"}


def readme_multinode_script(scratch: Path, data: Path) -> str:
    """The README's sbatch script for one run across nodes, on this cluster: one node with two CPU processes (the
    header's counts swapped, GPUs dropped), the CPU recipe, the tiny backbone and data, one epoch."""
    section = README.read_text().split("## On a cluster", 1)[1].split("\n## ", 1)[0]
    (block,) = [b for b in re.findall(r"```bash\n(.*?)```", section, flags=re.S) if "#SBATCH" in b]
    lines = []
    for line in re.sub(r"\\\n\s*", " ", block).splitlines():
        if line.startswith("#SBATCH"):
            options = [o.split("=", 1) for o in line.split("#", 2)[1].split()[1:]]
            kept = [o for o in options if o[0] != "--gpus-per-node"]
            line = "#SBATCH " + " ".join("=".join([o[0], SBATCH_SWAPS.get(o[0], o[-1])][: len(o)]) for o in kept)
        elif line.startswith("srun "):
            line = re.sub(r"configs/recipe/\S+", "configs/recipe/cpu_small.yaml", line)  # the paper's needs a GPU
            line = re.sub(r"configs/data/\S+", str(data), line)
            line = re.sub(r"configs/backbone/\S+", "configs/backbone/tiny-llama.yaml", line)
            line = line.replace("--trainer.num_nodes=2", "--trainer.num_nodes=1")
            line = line.replace("--trainer.devices=8", "--trainer.devices=2")
            line += " --trainer.accelerator=cpu --trainer.max_epochs=1 --model.verify_mask=false"
            line += f" --trainer.enable_progress_bar=false --trainer.default_root_dir={scratch}"
        lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.mark.slurm  # it found two DDP hangs: W&B's config upload and predict asked rank 0 alone for log_dir
def test_the_readme_multinode_script_runs_ddp_under_srun(slurm_cluster, tmp_path):
    for name in ("configs", "main.py"):
        (tmp_path / name).symlink_to(ROOT / name)
    data = write_cluster_suite(tmp_path / "suite").parent / "tiny_data.yaml"
    script = tmp_path / "multinode.sh"
    script.write_text(readme_multinode_script(tmp_path, data))
    env = {**slurm_cluster.env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "WANDB_MODE": "offline"}
    submitted = subprocess.run(
        ["sbatch", "--wait", f"--output={tmp_path / 'job.out'}", str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = (tmp_path / "job.out").read_text()
    assert submitted.returncode == 0, f"{script.read_text()}\n{submitted.stderr}\n{output[-3000:]}"
    assert "MEMBER: 1/2" in output and "MEMBER: 2/2" in output  # two ranks, from SLURM's variables
    (best,) = tmp_path.glob("logs/*/version_0/checkpoints/best-*.ckpt")
    assert best.name == "best-epoch=0-step=6.ckpt"  # the epoch's 12 batches (96 / 8) shared by 2 processes: 6 each
