"""A callback that holds a fit at the end of its first epoch until the test releases it or SIGTERM arrives, so a
test can interrupt a tiny fit (seconds long) at a known point instead of racing it. Imported by `main.py` from the
repository root (`--trainer.callbacks+=tests.experiments.pause_callback.PauseAfterFirstEpoch`)."""

from __future__ import annotations

import time
from pathlib import Path

from lightning.pytorch import Callback, LightningModule, Trainer


class PauseAfterFirstEpoch(Callback):
    """At the end of epoch 0 (its checkpoints written), write `<folder>/paused` and wait until `<folder>/release`
    exists, the trainer received SIGTERM (then Lightning stops before epoch 1), or `timeout_s` passed.

    Args:
        folder: where the two marker files are.
        timeout_s: the longest wait; a fit nobody releases goes on after it.
    """

    def __init__(self, folder: str, timeout_s: float = 300.0) -> None:
        self.folder = Path(folder)
        self.timeout_s = timeout_s

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Hold the first epoch's end (a resumed fit starts later and passes)."""
        release = self.folder / "release"
        if trainer.current_epoch != 0 or release.exists():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "paused").touch()
        deadline = time.monotonic() + self.timeout_s
        while not release.exists() and not trainer.received_sigterm and time.monotonic() < deadline:
            time.sleep(0.05)
