"""Fixtures of the launcher tests: a real single-node SLURM cluster (session scope) and a tiny 3-run suite.

The tests that use the cluster, and those that compare with the local launcher's runs, share one xdist group
(`@pytest.mark.xdist_group("slurm")`, run with `--dist loadgroup` as pyproject's addopts say): one worker starts
the cluster and runs the suite once.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from slurm_cluster import SlurmCluster, missing_binaries
from suite_helpers import TINY_DATA, TINY_OVERRIDES

ROOT = Path(__file__).resolve().parents[2]
RUNS = ("causal", "bidirectional", "broken")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory) -> SlurmCluster:
    """A single-node SLURM cluster of this host, up for the session (`SLURM_CONF` points the clients to it)."""
    missing = missing_binaries()
    if missing:
        pytest.skip(f"SLURM is not installed (no {', '.join(missing)}): `make slurm` installs Debian's packages")
    if os.geteuid() != 0:
        pytest.skip("a test SLURM cluster needs root (slurmd starts jobs as their users)")
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    cluster.start()
    saved = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        os.environ.pop("SLURM_CONF") if saved is None else os.environ.__setitem__("SLURM_CONF", saved)
        cluster.stop()


def write_cluster_suite(folder: Path) -> Path:
    """A tiny suite of 3 runs: causal and bidirectional LS-LLaMA on synthetic NER (6 short epochs, long enough to
    interrupt one after its first checkpoint), and `broken` (a bad value: main.py fit fails); runs in
    `folder/runs`."""
    folder.mkdir(parents=True, exist_ok=True)
    init_args = {**TINY_DATA["data"]["init_args"], "num_train": 96}
    data = {**TINY_DATA, "data": {**TINY_DATA["data"], "init_args": init_args}}
    (folder / "tiny_data.yaml").write_text(yaml.safe_dump(data))
    broken = ["--trainer.max_epochs=oops"]
    suite = {
        "name": "cluster",
        "runs_dir": str(folder / "runs"),
        "base_configs": ["configs/trainer/default.yaml"],
        "overrides": [f"--config={folder / 'tiny_data.yaml'}", *TINY_OVERRIDES],
        "fit_overrides": ["--trainer.max_epochs=6", "--trainer.log_every_n_steps=1"],
        "runs": [
            {"id": "causal", "configs": ["configs/ablation/mask_causal.yaml"]},
            {"id": "bidirectional", "configs": ["configs/ablation/mask_bidirectional.yaml"]},
            {"id": "broken", "configs": ["configs/ablation/mask_causal.yaml"], "fit_overrides": broken},
        ],
    }  # fmt: skip
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def runner(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """`python -m experiments.suite <args>` from the repository root (no W&B, one torch thread: MKL too, or its
    dynamic threads make runs differ), its output captured."""
    command = [sys.executable, "-m", "experiments.suite", *args, "--wandb", "off", "--threads", "1"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, **kwargs)


FAILED = re.compile(r"^FAILED (\S+): main\.py (\w+) exited with \d+, log (\S+) \(job log: (\S+)\)$", re.M)


@pytest.fixture(scope="session")
def local_runs(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """The cluster suite run by the local launcher, two runs at a time: the runner's output and the runs folder."""
    suite = write_cluster_suite(tmp_path_factory.mktemp("local_launcher"))
    return runner([str(suite), "--jobs", "2"]), suite.parent / "runs"
