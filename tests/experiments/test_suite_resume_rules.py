"""The runner's choice of the best checkpoint over the parts of a resumed fit, and what counts as an interrupted fit.

A resumed fit logs into a new `fit/version_N`; Lightning restores a ModelCheckpoint's best scores only into the same
folder, so each part records its own best and the runner must compare them (before 2026-12-07 it read the newest
part only: a run interrupted after its best epoch was then tested on a worse checkpoint)."""

from __future__ import annotations

import os
import time

import pytest
import torch

from experiments.suite import SuiteError, _interrupted, best_of_fit

KEY = "ModelCheckpoint{'monitor': 'val/score', 'mode': '%s', 'every_n_train_steps': 0, 'every_n_epochs': 1}"


def part(run_dir, version: int, score: float | None, mode: str = "max", name: str = "last.ckpt", age: float = 0):
    """`fit/version_<version>/checkpoints/<name>` recording `score` as its ModelCheckpoint's best (None: none yet)."""
    folder = run_dir / "fit" / f"version_{version}" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    best = folder / f"best-v{version}.ckpt"
    best.write_bytes(b"")
    state = {"monitor": "val/score", "best_model_path": str(best) if score is not None else ""}
    state["best_model_score"] = None if score is None else torch.tensor(score)
    torch.save({"callbacks": {KEY % mode: state}}, folder / name)
    stamp = time.time() - 100 + version + age
    os.utime(folder / name, (stamp, stamp))
    return str(best)


def test_the_best_part_of_a_resumed_fit_wins(tmp_path):
    early = part(tmp_path, 0, 0.8)
    part(tmp_path, 1, 0.5)  # the resumed part's own best is worse: the old runner tested this one
    assert best_of_fit(tmp_path) == (early, pytest.approx(0.8), "val/score")


def test_ties_go_to_the_earlier_part_and_min_mode_is_honoured(tmp_path):
    first = part(tmp_path / "tie", 0, 0.7)
    part(tmp_path / "tie", 1, 0.7)
    assert best_of_fit(tmp_path / "tie")[0] == first
    part(tmp_path / "min", 0, 0.9, mode="min")
    low = part(tmp_path / "min", 1, 0.4, mode="min")
    assert best_of_fit(tmp_path / "min")[0] == low


def test_a_part_without_a_best_is_skipped_and_none_at_all_is_an_error(tmp_path):
    best = part(tmp_path, 0, 0.6)
    part(tmp_path, 1, None, name="last-interrupted.ckpt")  # stopped before its first validation
    assert best_of_fit(tmp_path)[0] == best
    part(tmp_path / "none", 0, None, name="last-interrupted.ckpt")
    with pytest.raises(SuiteError, match="no ModelCheckpoint recorded a best checkpoint"):
        best_of_fit(tmp_path / "none")


def test_a_fit_is_interrupted_when_its_newest_part_ends_with_the_sigterm_checkpoint(tmp_path):
    part(tmp_path, 0, 0.6)
    assert not _interrupted(tmp_path)
    part(tmp_path, 0, 0.6, name="last-interrupted.ckpt", age=0.5)
    assert _interrupted(tmp_path)
    part(tmp_path, 1, 0.7)  # resumed and finished: its own last.ckpt is the newest part's
    assert not _interrupted(tmp_path)
