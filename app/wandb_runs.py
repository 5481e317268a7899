"""One W&B run per trained model, described well enough to filter, group and compare runs in the W&B UI.

`WandbRuns` (added to every run by `main.py`) acts on the trainer's `WandbLogger`s:

- at set-up: the curves are plotted against `trainer/global_step`, the summary's `val/score` is the best (max)
  value and `val/loss` the lowest, and a run that an earlier stage of this process finished is continued (same id);
- at the start of fit / validate / test: the run's config gets what tells runs apart beyond the model's own
  hyper-parameters (which Lightning logs): `method` (`ls_llama`, `ls_unllama`, `finetune` for encoders, or the
  model's own `method`), `seed`, `run` (the run's `key:value` tags: dataset, backbone, method, mask, pooling,
  task, finetuning, and suite, run, seed in suites), `data` (class, name, the split sizes used,
  `max_train_examples`, batch size, ...) and `trainer` (max_epochs, max_steps, precision, ...);
- after each validation: `best/val_score`, `best/step`, `best/epoch` in the summary (the trainer's step and epoch,
  as in the best checkpoint's file name; kept in checkpoints, so a resumed fit continues them and a `test` of the
  checkpoint repeats them);
- at teardown (or on an exception): the run is finished, so the next model trained in this process gets its own
  (also a run that the logger adopted from an earlier `wandb.init` of the process, as Lightning's logger does).

A `test` stage in another process joins the fit's run when its logger is given the same `id` (the suite runner
does this); the fit's config and hyper-parameters, read from the checkpoint, win over the test command's.
`predict` makes no W&B run: `drop_wandb_loggers` removes the W&B loggers from its config.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

from jsonargparse import Namespace
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import WandbLogger
from typing_extensions import override

from app.run_defaults import backbone_label, get

log = logging.getLogger(__name__)

STEP = "trainer/global_step"  # the x-axis Lightning logs with every metric


def wandb_loggers(trainer: Trainer) -> list[WandbLogger]:
    """The trainer's W&B loggers."""
    return [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]


def open_run(logger: WandbLogger) -> Any:
    """The logger's run; one that was finished (by an earlier stage in this process) is continued under its id."""
    run = logger._experiment  # Lightning keeps the run here; `experiment` creates it when None
    if run is not None and getattr(run, "_is_finished", False):
        logger._experiment = None
        logger._wandb_init.update(id=run.id, resume="allow")
    return logger.experiment


def method_of(module: LightningModule) -> str:
    """The method the model declares (`LabelSupervisedModule(method=...)`, set by configs/method/*.yaml, or the
    class's own `method`, e.g. `zero_shot`), else its class name."""
    method = getattr(module, "method", None)
    return method if isinstance(method, str) else type(module).__name__


def run_description(trainer: Trainer, module: LightningModule, tags: list[str]) -> dict[str, Any]:
    """What the run's name and tags say (dataset, backbone, method, mask, pooling, task, finetuning; suite, run and
    seed in suites): each `key:value` tag as `key`, and for a run without such tags the same read from the model."""
    hparams = module.hparams
    mask_name = getattr(getattr(module, "mask", None), "label", None)  # components name themselves
    task = getattr(module, "task", hparams.get("task"))
    pooling = getattr(getattr(module, "pooling", None), "label", None)
    model = Namespace(backbone=hparams.get("backbone"), backbone_config=hparams.get("backbone_config"))
    described = {
        "dataset": getattr(trainer.datamodule, "name", None),
        "backbone": backbone_label(model),
        "method": method_of(module),
        "mask": mask_name,
        "pooling": "tokens" if task == "token" else pooling,
        "task": task,
        "finetuning": hparams.get("finetuning"),
    }
    tagged = dict(tag.split(":", 1) for tag in tags if ":" in tag)
    return {**described, **tagged}


SPLITS = {"train": "train_size", "validation": "val_size", "test": "test_size", "predict": "predict_size"}
# `languages`: the Amazon reviews subsets (Table 3's columns) share one data module name
DATA_SETTINGS = ("max_train_examples", "max_eval_examples", "batch_size", "eval_batch_size", "max_length", "seed")
DATA_SETTINGS += ("languages",)


def data_description(datamodule: Any) -> dict[str, Any]:
    """The data module's class, name and the sizes of the splits it loaded (after `max_*_examples`)."""
    if datamodule is None:
        return {}
    kind = type(datamodule)
    data = {"class": f"{kind.__module__}.{kind.__qualname__}", "name": getattr(datamodule, "name", None)}
    for split, key in SPLITS.items():
        dataset = (getattr(datamodule, "datasets", None) or {}).get(split)
        if dataset is not None:
            data[key] = len(dataset)
    data.update({k: getattr(datamodule, k) for k in DATA_SETTINGS if hasattr(datamodule, k)})
    return data


def trainer_description(trainer: Trainer) -> dict[str, Any]:
    """The training budget and numerics."""
    return {
        "max_epochs": trainer.max_epochs,
        "max_steps": trainer.max_steps,
        "precision": str(trainer.precision),
        "accumulate_grad_batches": trainer.accumulate_grad_batches,
        "gradient_clip_val": trainer.gradient_clip_val,
        "num_devices": trainer.num_devices,
    }


def describe(trainer: Trainer, module: LightningModule, tags: list[str]) -> dict[str, Any]:
    """The config entries that `WandbRuns` adds to a run (see the module docstring)."""
    seed = os.environ.get("PL_GLOBAL_SEED")  # set by seed_everything (LightningCLI's `seed_everything`)
    run = run_description(trainer, module, tags)
    return {
        "method": run["method"],
        "seed": int(seed) if seed is not None else None,
        "run": run,
        "data": data_description(trainer.datamodule),
        "trainer": trainer_description(trainer),
    }


def merge(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """`later` over `earlier`, nested mappings merged key by key."""
    merged = dict(earlier)
    for key, value in later.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class WandbRuns(Callback):
    """One W&B run per trained model, with a config and summary that make runs comparable (module docstring).

    Does nothing without a `WandbLogger`, and only on the main process.

    Args:
        monitor: the validation metric whose best value and step the summary keeps.
        mode: whether the best value of `monitor` is its `max` or its `min`.
    """

    def __init__(self, monitor: str = "val/score", mode: Literal["max", "min"] = "max") -> None:
        self.monitor = monitor
        self.mode = mode
        self.fit_config: dict[str, Any] = {}  # what the fit wrote into the run's config (kept in checkpoints)
        self.fit_hparams: dict[str, Any] = {}  # the model's hyper-parameters of a loaded checkpoint
        self.best: dict[str, Any] = {}
        self.run: dict[str, Any] = {}  # the W&B run (id, project, entity), kept in checkpoints: `test` joins it
        self.checkpoint_step: int | None = None  # the global step of a loaded checkpoint

    def _loggers(self, trainer: Trainer) -> list[WandbLogger]:
        return wandb_loggers(trainer) if trainer.is_global_zero else []

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        for logger in self._loggers(trainer):
            run = open_run(logger)
            if stage == "fit" or not self.run:
                self.run = {"id": run.id, "project": run.project, "entity": getattr(run, "entity", None)}
            run.define_metric(STEP)
            run.define_metric("*", step_metric=STEP, step_sync=True)
            run.define_metric(self.monitor, summary=self.mode)
            run.define_metric("val/loss", summary="min")

    def _write_config(self, trainer: Trainer, pl_module: LightningModule) -> None:
        log_dir = trainer.log_dir  # every rank asks: under DDP rank 0 broadcasts it (rank 0 alone would wait forever)
        for logger in self._loggers(trainer):
            run = open_run(logger)
            config = describe(trainer, pl_module, list(run.tags or []))
            if trainer.state.fn == "fit":
                self.fit_config = config
            else:  # a checkpoint's test: what the fit logged wins (model, data, budget); the test adds its split size
                if self.fit_hparams:  # Lightning logged the test command's; a fit_override may have changed them
                    logger.log_hyperparams(self.fit_hparams)
                config = merge(config, self.fit_config)
            run.config.update(config, allow_val_change=True)
            if self.best:
                run.summary.update(self.best)
            save_config_file(run, trainer, log_dir)

    @override
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._write_config(trainer, pl_module)

    @override
    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._continue_steps(trainer)
        self._write_config(trainer, pl_module)

    @override
    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == "validate":
            self._continue_steps(trainer)
            self._write_config(trainer, pl_module)

    def _continue_steps(self, trainer: Trainer) -> None:
        """A checkpoint's test logs at the fit's last step, not at 0: the run's x-axis never goes back (Lightning
        logs evaluation outside fit at the fit loop's step count, which only `fit` restores)."""
        if self.checkpoint_step is not None and trainer.fit_loop.epoch_loop._batches_that_stepped == 0:
            trainer.fit_loop.epoch_loop._batches_that_stepped = self.checkpoint_step

    @override
    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or trainer.state.fn != "fit" or value is None:
            return
        value, best = float(value), self.best.get("best/val_score")
        if best is None or (value > best if self.mode == "max" else value < best):
            self.best = {"best/val_score": value, "best/step": trainer.global_step, "best/epoch": trainer.current_epoch}
            for logger in self._loggers(trainer):
                open_run(logger).summary.update(self.best)

    @override
    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._finish(trainer, exit_code=0)

    @override
    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._finish(trainer, exit_code=1)

    def _finish(self, trainer: Trainer, exit_code: int) -> None:
        for logger in self._loggers(trainer):
            run = logger._experiment
            if run is None or getattr(run, "_is_finished", False):
                continue
            if exit_code == 0:
                logger.finalize("success")  # uploads checkpoints (log_model) while the run is still open
            folder = Path(run.dir).parent
            offline = getattr(run.settings, "mode", "") == "offline" or folder.name.startswith("offline-run")
            upload = f"; upload: wandb sync {folder}" if offline else ""
            log.info("W&B run %s (%s): finished%s", run.id, folder, upload)
            run.finish(exit_code=exit_code)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"fit_config": self.fit_config, "best": self.best, "run": self.run}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.fit_config = state_dict.get("fit_config") or {}
        self.best = state_dict.get("best") or {}
        self.run = state_dict.get("run") or self.run

    @override
    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        self.fit_hparams = dict(checkpoint.get("hyper_parameters") or {})
        self.checkpoint_step = checkpoint.get("global_step")


def save_config_file(run: Any, trainer: Trainer, log_dir: str | None) -> None:
    """Save the resolved config that LightningCLI wrote (`<log_dir>/config.yaml`, `log_dir` = `trainer.log_dir`,
    which the caller reads on every rank) to the W&B run's files; a stage that wrote its own (a test) saves it as
    `config_<stage>.yaml` beside the fit's."""
    path = Path(log_dir) / "config.yaml" if log_dir else None
    if path is None or not path.is_file():
        return
    stage = trainer.state.fn.value if trainer.state.fn is not None else "run"
    target = Path(run.dir) / ("config.yaml" if stage == "fit" else f"config_{stage}.yaml")
    target.write_bytes(path.read_bytes())
    run.save(str(target), base_path=run.dir, policy="now")


def quiet_loggers(trainer: Trainer) -> None:
    """Before the W&B runs start (call right after the trainer is built): wandb prints no banner and no 20-line
    summary (`WandbRuns` logs one line per run instead), and Lightning's `anonymous=None`, which wandb 0.31 warns
    about on every run ("has no effect"), is left out. A `settings` given in a config wins."""
    import wandb

    for logger in trainer.loggers:
        if not isinstance(logger, WandbLogger) or logger._experiment is not None:
            continue
        if "anonymous" in logger._wandb_init and logger._wandb_init["anonymous"] is None:
            del logger._wandb_init["anonymous"]
        if logger._wandb_init.get("settings") is None:  # a config that names wandb.init's arguments passes None
            logger._wandb_init["settings"] = wandb.Settings(silent=True)


def drop_wandb_loggers(config: Namespace, subcommand: str | None) -> None:
    """`predict` logs nothing worth a W&B run: remove the W&B loggers from its config (others stay)."""
    if subcommand != "predict":
        return
    loggers = get(config, "trainer.logger")
    if isinstance(loggers, Namespace) and _is_wandb(loggers):
        config.trainer.logger = False
    elif isinstance(loggers, list) and any(_is_wandb(item) for item in loggers):
        config.trainer.logger = [item for item in loggers if not _is_wandb(item)] or False


def _is_wandb(logger: Any) -> bool:
    return str(get(logger, "class_path", "")).endswith("WandbLogger")
