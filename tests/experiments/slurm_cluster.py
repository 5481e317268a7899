"""A real single-node SLURM cluster for tests: this host with its cores, one partition, state in a folder.

Debian's `munge`, `slurmctld`, `slurmd` and `slurm-client` (`make slurm` installs them) start as root in about a
second with a minimal `slurm.conf`: `proctrack/linuxproc` and `task/none` (no cgroups), no accounting (the
launcher reads job states from `squeue` then), its own munge key and socket and free ports, so that nothing of a
system-wide installation is used or disturbed. `stop()` ends exactly the daemons `start()` started (their pid files),
after cancelling the jobs left on this cluster.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol", "scancel", "srun")
PARTITION = "test"


def missing_binaries() -> list[str]:
    """The SLURM/munge programs this machine lacks."""
    return [name for name in (*DAEMONS, *CLIENTS) if shutil.which(name) is None]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SlurmCluster:
    """The cluster's files live in `folder`; `env` is what a client (sbatch, squeue, ...) needs to reach it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.host = socket.gethostname().split(".")[0]
        self.cores = os.cpu_count() or 1
        self.conf = folder / "slurm.conf"
        self.pids: dict[str, int] = {}
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def config(self) -> str:
        """The minimal slurm.conf."""
        f = self.folder
        return "\n".join(
            [
                "ClusterName=lsllamatest",
                f"SlurmctldHost={self.host}",
                "SlurmUser=root",
                "SlurmdUser=root",
                "AuthType=auth/munge",
                "CredType=cred/munge",
                f"AuthInfo=socket={f / 'munge.socket'}",
                f"SlurmctldPort={_free_port()}",
                f"SlurmdPort={_free_port()}",
                f"StateSaveLocation={f / 'state'}",
                f"SlurmdSpoolDir={f / 'spool'}",
                f"SlurmctldPidFile={f / 'slurmctld.pid'}",
                f"SlurmdPidFile={f / 'slurmd.pid'}",
                f"SlurmctldLogFile={f / 'slurmctld.log'}",
                f"SlurmdLogFile={f / 'slurmd.log'}",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core",  # one job per core: two array tasks at once on two cores
                "SchedulerType=sched/backfill",
                "MpiDefault=none",
                "ReturnToService=2",
                "AccountingStorageType=accounting_storage/none",
                "JobCompType=jobcomp/none",
                "JobAcctGatherType=jobacct_gather/none",
                "MinJobAge=3600",  # squeue remembers finished jobs for the whole session
                "KillWait=30",  # seconds between SIGTERM and SIGKILL: time for a checkpoint
                f"NodeName={self.host} CPUs={self.cores} State=UNKNOWN",
                f"PartitionName={PARTITION} Nodes={self.host} Default=YES MaxTime=INFINITE State=UP",
                "",
            ]
        )

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=60)

    def _start(self, name: str, args: list[str], pid_file: Path) -> None:
        result = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=30)
        for _ in range(100):
            if pid_file.is_file() and pid_file.read_text().strip():
                self.pids[name] = int(pid_file.read_text().split()[0])
                return
            time.sleep(0.05)
        raise RuntimeError(f"{name} did not start ({result.returncode}): {result.stderr.strip()} {self.logs()}")

    def start(self, timeout_s: float = 30) -> None:
        """Write the config and a munge key, start munged, slurmctld and slurmd; wait for the node to be idle."""
        f = self.folder
        for sub in ("state", "spool"):
            (f / sub).mkdir(parents=True, exist_ok=True)
        f.chmod(0o755)
        key = f / "munge.key"
        key.write_bytes(secrets.token_bytes(128))
        key.chmod(0o600)
        self.conf.write_text(self.config())
        files = {"socket": "munge.socket", "pid-file": "munged.pid", "log-file": "munged.log", "seed-file": "seed"}
        munged = ["munged", "--force", f"--key-file={key}", *(f"--{opt}={f / name}" for opt, name in files.items())]
        self._start("munged", munged, f / "munged.pid")
        self._start("slurmctld", ["slurmctld", "-i"], f / "slurmctld.pid")
        self._start("slurmd", ["slurmd"], f / "slurmd.pid")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._run("sinfo", "-h", "-o", "%T").stdout.strip() == "idle":
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the SLURM node did not become idle in {timeout_s:.0f} s; {self.logs()}")

    def logs(self) -> str:
        """The end of the daemons' logs (for error messages)."""
        tails = []
        for name in ("munged", "slurmctld", "slurmd"):
            path = self.folder / f"{name}.log"
            if path.is_file():
                tails.append(f"{path}: " + " | ".join(path.read_text().splitlines()[-5:]))
        return "; ".join(tails)

    def stop(self) -> None:
        """Cancel this cluster's jobs, then end the daemons this object started (slurmd, slurmctld, munged)."""
        if "slurmctld" in self.pids:
            self._run("scancel", "--partition", PARTITION)
        for name in reversed(DAEMONS):
            pid = self.pids.pop(name, None)
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)

    # ------------------------------------------------------------------------------------------ test helpers
    def jobs(self) -> dict[str, str]:
        """`{job id: state}` of every job slurmctld remembers (array tasks one by one)."""
        out = self._run("squeue", "--states=all", "--array", "--noheader", "--format=%i|%T").stdout
        return dict(line.split("|") for line in out.splitlines() if "|" in line)

    def scontrol(self, *args: str) -> str:
        """Run `scontrol` on this cluster; its output.

        Raises:
            RuntimeError: scontrol failed.
        """
        result = self._run("scontrol", *args)
        if result.returncode != 0:
            raise RuntimeError(f"scontrol {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def signal(self, job_id: str, name: str) -> None:
        """Send signal `name` to the job's steps, as `sbatch --signal` does near the time limit."""
        result = self._run("scancel", f"--signal={name}", job_id)
        if result.returncode != 0:
            raise RuntimeError(f"scancel --signal={name} {job_id}: {result.stderr.strip()}")
