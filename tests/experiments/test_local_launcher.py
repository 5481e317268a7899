"""The local launcher (submitit's LocalExecutor): `--jobs 2` runs two jobs at a time, reports a failed run with its
logs and the exit status, and a second invocation submits nothing for finished runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FAILED, runner

pytestmark = pytest.mark.xdist_group("slurm")  # the SLURM tests compare with these runs: one worker runs both


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
