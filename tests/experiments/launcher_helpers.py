"""What the launcher tests and their fixtures share: a tiny 3-run suite and the runner's command line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml
from suite_helpers import TINY_DATA, TINY_OVERRIDES

ROOT = Path(__file__).resolve().parents[2]


PAUSE = "tests.experiments.pause_callback.PauseAfterFirstEpoch"


def write_cluster_suite(folder: Path, pause: bool = False) -> Path:
    """A tiny suite of 3 runs: causal and bidirectional LS-LLaMA on synthetic NER (6 short epochs), and `broken` (a
    bad value: main.py fit fails); runs in `folder/runs`. With `pause`, the two fits wait at the end of their first
    epoch (`PauseAfterFirstEpoch`, markers in `folder/pause/<run>`) for the test to interrupt them."""
    folder.mkdir(parents=True, exist_ok=True)
    init_args = {**TINY_DATA["data"]["init_args"], "num_train": 96}
    data = {**TINY_DATA, "data": {**TINY_DATA["data"], "init_args": init_args}}
    (folder / "tiny_data.yaml").write_text(yaml.safe_dump(data))
    broken = ["--trainer.max_epochs=oops"]

    def held(run_id: str) -> dict[str, list[str]]:  # the pausing callback's two arguments
        args = [f"--trainer.callbacks+={PAUSE}", f"--trainer.callbacks.folder={folder / 'pause' / run_id}"]
        return {"fit_overrides": args} if pause else {}

    suite = {
        "name": "cluster",
        "runs_dir": str(folder / "runs"),
        "base_configs": ["configs/trainer/default.yaml"],
        "overrides": [f"--config={folder / 'tiny_data.yaml'}", *TINY_OVERRIDES],
        "fit_overrides": ["--trainer.max_epochs=6", "--trainer.log_every_n_steps=1"],
        "runs": [
            {"id": "causal", "configs": ["configs/ablation/mask_causal.yaml"], **held("causal")},
            {"id": "bidirectional", "configs": ["configs/ablation/mask_bidirectional.yaml"], **held("bidirectional")},
            {"id": "broken", "configs": ["configs/ablation/mask_causal.yaml"], "fit_overrides": broken},
        ],
    }
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def runner(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """`python -m experiments.suite <args>` from the repository root (no W&B, one torch thread: MKL too, or its
    dynamic threads make runs differ), its output captured."""
    command = [sys.executable, "-m", "experiments.suite", *args, "--wandb", "off", "--threads", "1"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, **kwargs)


FAILED = re.compile(r"^FAILED (\S+): main\.py (\w+) exited with \d+, log (\S+) \(job log: (\S+)\)$", re.M)
