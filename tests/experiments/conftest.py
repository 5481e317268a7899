"""Fixtures of the launcher tests (test_suite_launchers.py): a real single-node SLURM cluster and the tiny 3-run
suite run by the local launcher, each once per session (the tests share one xdist group, hence one worker)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from launcher_helpers import runner, write_cluster_suite
from slurm_cluster import SlurmCluster, missing_binaries


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


@pytest.fixture(scope="session")
def local_runs(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """The cluster suite run by the local launcher, two runs at a time: the runner's output and the runs folder."""
    suite = write_cluster_suite(tmp_path_factory.mktemp("local_launcher"))
    return runner([str(suite), "--jobs", "2"]), suite.parent / "runs"
