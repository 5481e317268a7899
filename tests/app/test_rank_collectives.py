"""Under DDP `trainer.log_dir` is a collective (rank 0 broadcasts it): a callback that asks for it on rank 0 alone
hangs every multi-process run (the README's multi-node SLURM script did, in W&B's config upload; predict did too).
Here a rank-1 trainer records whether it was asked, so the rule is checked without starting processes; the
2-process runs are tests/model/test_ddp.py and tests/experiments/test_suite_launchers.py (SLURM)."""

from __future__ import annotations

from types import SimpleNamespace

from lightning.pytorch.trainer.states import TrainerFn

from app.predict import PredictionWriter
from app.wandb_runs import WandbRuns


class RankOneTrainer:
    """The parts of a non-zero rank's `Trainer` these callbacks touch; counts the `log_dir` questions."""

    is_global_zero = False
    world_size = 1  # no gather: the writer's gather needs a process group; the question here is log_dir
    loggers: list = []

    def __init__(self, fn: TrainerFn) -> None:
        self.state = SimpleNamespace(fn=fn)
        self.asked = 0

    @property
    def log_dir(self) -> str:
        self.asked += 1
        return "logs/never-written"


def test_wandb_config_upload_asks_every_rank_for_the_log_dir():
    for fn, hook in ((TrainerFn.FITTING, "on_fit_start"), (TrainerFn.TESTING, "on_test_start")):
        trainer = RankOneTrainer(fn)
        getattr(WandbRuns(), hook)(trainer, None)
        assert trainer.asked == 1, hook


def test_the_prediction_writer_asks_every_rank_for_the_log_dir():
    trainer = RankOneTrainer(TrainerFn.PREDICTING)
    PredictionWriter().on_predict_epoch_end(trainer, None)  # rank 1 writes nothing
    assert trainer.asked == 1
