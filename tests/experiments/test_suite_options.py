"""The runner's launcher options without a cluster: the sbatch script `--dry-run` shows, one-line errors for bad
values, SLURM time limits."""

from __future__ import annotations

import pytest
from suite_helpers import write_tiny_suite

from experiments import launchers
from experiments import suite as suite_module


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("90", 90), ("1:30", 2), ("8:00:00", 480), ("0:20:00", 20), ("1-12", 2160), ("1-0:30", 1470), ("2-1:0:1", 2941)],
)
def test_slurm_time_limits_in_minutes(text, minutes):
    assert launchers.time_minutes(text) == minutes


def test_dry_run_shows_the_sbatch_script_of_the_array(tmp_path, capsys):
    suite = write_tiny_suite(tmp_path)
    args = [
        str(suite),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--dry-run",
        "--launcher",
        "slurm",
        "--partition",
        "gpu",
        "--gpus-per-run",
        "1",
        "--cpus-per-run",
        "8",
        "--mem",
        "64G",
        "--time",
        "8:00:00",
        "--array-parallelism",
        "8",
        "--sbatch",
        "account=lab",
        "--slurm-setup",
        "module load cuda",
    ]
    assert suite_module.main(args) == 0
    out = capsys.readouterr().out
    sbatch = [line.removeprefix("#   ") for line in out.splitlines() if line.startswith("#   #SBATCH")]
    expected = [
        "--array=0-1%2",
        "--partition=gpu",
        "--gpus-per-node=1",
        "--cpus-per-task=8",
        "--mem=64G",
        "--time=480",
        "--requeue",
        "--signal=USR2@90",
        "--account=lab",
        "--job-name=ls-llama-tiny",
    ]
    assert {f"#SBATCH {option}" for option in expected} <= set(sbatch), sbatch
    assert "#   module load cuda" in out and f"{tmp_path / 'runs' / '.submitit'}" in out
    assert out.count("--launcher slurm") == 2  # each run's runner line, a comment
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--launcher", "slurm"], "--launcher slurm needs --time"),
        (["--launcher", "slurm", "--time", "8h"], "--time '8h': expected a SLURM time such as 8:00:00"),
        (["--launcher", "slurm", "--time", "1:00:00", "--sbatch", "account"], "--sbatch 'account': expected KEY=VALUE"),
        (["--launcher", "slurm", "--time", "1:00:00", "--jobs", "2"], "--jobs is for --launcher local"),
    ],
)
def test_bad_launcher_options_get_one_line(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as stop:
        suite_module.main([str(write_tiny_suite(tmp_path)), "--dry-run", *extra])
    assert stop.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in error and error.startswith("python -m experiments.suite: error:")


def test_the_slurm_launcher_needs_sbatch(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(launchers.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit):
        suite_module.main([str(write_tiny_suite(tmp_path)), "--launcher", "slurm", "--time", "1:00:00"])
    assert "--launcher slurm: no sbatch on this machine" in capsys.readouterr().err
