"""Checkpoint I/O: exact resumes (atomic writes, RNG states, a checkpoint on SIGTERM) and loading a trained model.

What an exact resume needs, and who keeps it:
- weights, optimizer, scheduler, loop counters: Lightning (`--ckpt_path`);
- the position of the training sampler in its epoch: `LabelDataModule.state_dict` (Lightning stores it);
- the RNG states (dropout in LoRA and the head): `ResumableTraining`, restored right before the first resumed
  training step, so whatever draws numbers between loading and training (sanity check, model building) cannot
  shift them;
- a file that is complete whenever it exists: `AtomicCheckpointIO` writes a temporary file in the same folder,
  fsyncs it and renames it over the target, so a kill mid-save leaves the old checkpoint or the new one.

On SIGTERM (pre-emption, `scancel`, `kill`) Lightning finishes the running training batch and stops with
`SIGTERMException`; `ResumableTraining` then writes `last-interrupted.ckpt` next to the other checkpoints, which
`--ckpt_path last` finds (Lightning picks the newest `last*.ckpt`). A SIGKILL or a crash cannot be caught: resume
from the newest periodic checkpoint (`ModelCheckpoint(every_n_train_steps=...)`).
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException
from typing_extensions import override

from app.config_guard import check_checkpoint
from lightning_modules import LabelSupervisedModule

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """`TorchCheckpointIO` whose files appear whole or not at all: temporary file, fsync, `os.replace`.

    Lightning's own writer (`lightning.fabric.utilities.cloud_io._atomic_save`) serialises to memory and then writes
    the bytes to the target with fsspec: one write, but into the target itself, so a kill during that write (seconds
    for a full 7B checkpoint) leaves a truncated file under the final name, and there is no fsync. Remote paths
    (`s3://`, ...) still go to Lightning's writer.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        """Write `checkpoint` to `path` atomically (local paths; others are left to Lightning's writer)."""
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not take storage_options, got {storage_options!r}")
        if not _is_local(path):
            return super().save_checkpoint(checkpoint, path)
        atomic_save(checkpoint, Path(path))


def _is_local(path: str | Path) -> bool:
    return "://" not in str(path) or str(path).startswith("file://")


def atomic_save(obj: Any, path: Path) -> None:
    """`torch.save(obj, path)` through a temporary file in the same folder, fsynced and renamed over `path`."""
    path = Path(str(path).removeprefix("file://"))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as file:
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def capture_rng_states() -> dict[str, Any]:
    """The states of the torch (CPU and every CUDA device), Python and NumPy generators, as plain tensors/lists
    (checkpoints then load with `torch.load(weights_only=True)`)."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": _to_lists(random.getstate()),
        "numpy": [kind, keys.tolist(), position, has_gauss, gauss],
    }


def restore_rng_states(states: dict[str, Any]) -> None:
    """Set the generators back to `capture_rng_states()`'s result."""
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached))


def _to_lists(value: Any) -> Any:
    return [_to_lists(v) for v in value] if isinstance(value, tuple) else value


class ResumableTraining(Callback):
    """Exact resumes: RNG states in every checkpoint, atomic checkpoint files, a resumable checkpoint on SIGTERM.

    The CLI adds it to every run; with a hand-built `Trainer`, pass it in `callbacks`.

    Args:
        dirpath: folder of the SIGTERM checkpoint; None = the first `ModelCheckpoint`'s folder, else
            `<default_root_dir>/checkpoints`.
        filename: name of the SIGTERM checkpoint, without `.ckpt`; starting with `last` makes `--ckpt_path last`
            consider it.
        atomic_writes: replace the strategy's plain `TorchCheckpointIO` by `AtomicCheckpointIO`.
    """

    def __init__(
        self, dirpath: str | None = None, filename: str = "last-interrupted", atomic_writes: bool = True
    ) -> None:
        self.dirpath = dirpath
        self.filename = filename
        self.atomic_writes = atomic_writes
        self._rng_to_restore: dict[str, Any] | None = None

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        strategy = trainer.strategy
        if self.atomic_writes and type(strategy.checkpoint_io) is TorchCheckpointIO:
            strategy.checkpoint_io = AtomicCheckpointIO()

    def state_dict(self) -> dict[str, Any]:
        """The RNG states at the moment of saving."""
        return {"rng": capture_rng_states()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep the stored RNG states until the first training batch (see the module docstring)."""
        self._rng_to_restore = state_dict.get("rng")

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        """Restore the checkpoint's RNG states right before the first resumed training step."""
        if self._rng_to_restore is not None:
            restore_rng_states(self._rng_to_restore)
            self._rng_to_restore = None
            log.info("restored the RNG states of the checkpoint before training batch %d", batch_idx)

    def checkpoint_path(self, trainer: Trainer) -> str:
        """Where the SIGTERM checkpoint goes."""
        folder = self.dirpath
        if folder is None:
            callbacks = [c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint) and c.dirpath]
            folder = callbacks[0].dirpath if callbacks else os.path.join(trainer.default_root_dir, "checkpoints")
        return os.path.join(folder, f"{self.filename}.ckpt")

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """On SIGTERM while fitting (Lightning lets the running batch finish), save a checkpoint to resume from."""
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != "fit" or trainer.sanity_checking:
            return
        path = self.checkpoint_path(trainer)
        trainer.save_checkpoint(path)
        log.warning(
            "SIGTERM: saved a resumable checkpoint at global step %d to %s; resume with `--ckpt_path %s` "
            "(or `--ckpt_path last`)",
            trainer.global_step,
            path,
            path,
        )


def load_trained(path: str | Path, map_location: str = "cpu") -> tuple[Any, str | None]:
    """A trained `LabelSupervisedModule` from a Lightning checkpoint, and the tokenizer source it was trained with
    (the data module's `tokenizer`, stored by the CLI in the checkpoint), after `check_checkpoint`'s guard."""
    check_checkpoint(path)
    data = torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("datamodule_hyper_parameters")
    tokenizer = (data or {}).get("tokenizer")
    return LabelSupervisedModule.load_from_checkpoint(path, map_location=map_location), tokenizer
