"""ls-llama command line: `python main.py {fit,validate,test,predict} --config configs/....yaml`.

Discover the options with `python main.py fit --help`, `--model.help LabelSupervisedModule`, `--print_config`.
Errors print as one line; `LS_LLAMA_DEBUG=1` (or `--debug`) shows the traceback.
"""

import sys

from lightning.pytorch import LightningModule
from lightning.pytorch.cli import ArgsType, LightningCLI

import datamodules  # noqa: F401  (registers the data modules for short class names in configs)
import lightning_modules  # noqa: F401  (registers the model classes for short class names in configs)
from app import cli_hooks
from app.checkpointing import ResumableTraining
from app.errors import run_with_one_line_errors
from app.predict import PredictionWriter
from app.run_record import RunRecord
from app.wandb_runs import WandbRuns
from datamodules import LabelDataModule

# `model.class_path` when a config names none: label supervision (LS-LLaMA, LS-unLLaMA, encoders)
DEFAULT_MODEL = "lightning_modules.LabelSupervisedModule"
# data module attribute -> model argument, set when the data module is instantiated: the data hands the model ids
DATA_TO_MODEL = {
    "task": "task",
    "num_labels": "num_labels",
    "label_names": "label_names",
    "pad_token_id": "pad_token_id",
    "vocab_size": "vocab_size",
}


class LabelSupervisedCLI(LightningCLI):
    """LightningCLI that links the data's labels and tokenizer ids into the model (any `lightning_modules` class,
    `LabelSupervisedModule` when `model.class_path` is not given), fills and prints the run defaults
    (`--print_config` shows them), names the runs, writes predictions (`--prediction.output_file`), and refuses
    configs that name classes outside the allowed packages (`core.class_paths`)."""

    def add_arguments_to_parser(self, parser) -> None:  # noqa: ANN001  (jsonargparse's parser)
        """The default model class, links from the data module to the model, and the prediction writer's options."""
        parser.set_defaults({"model": {"class_path": DEFAULT_MODEL}})
        for source, target in DATA_TO_MODEL.items():
            parser.link_arguments(f"data.{source}", f"model.init_args.{target}", apply_on="instantiate")
        parser.add_lightning_class_args(PredictionWriter, "prediction")

    def parse_arguments(self, parser, args: ArgsType) -> None:  # noqa: ANN001
        """Guard the class paths, parse, and answer `--print_config` with the run defaults filled in."""
        cli_hooks.configure_logging()
        self.args = sys.argv[1:] if args is None else args
        # test/validate/predict of a checkpoint: its data section, seed and loggers are the defaults
        self.record = cli_hooks.checkpoint_defaults(parser, self.args)
        cli_hooks.guard_class_paths(self.args)
        with cli_hooks.print_config_deferred(parser) as request, cli_hooks.readable_parse_errors(self.args):
            super().parse_arguments(parser, args)
        if request:
            self._parse_ckpt_path()
            cli_hooks.print_config_and_exit(parser, self.config, request)

    def before_instantiate_classes(self) -> None:
        """Fill the run defaults (tokenizer, mask/pooling, precision, names) and warn about dropped callbacks."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        cli_hooks.before_instantiate(config, self.subcommand, self.args, self.record)

    def after_instantiate_classes(self) -> None:
        """Keep the run's record for its checkpoints; tidy what the built objects would print on every run."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        cli_hooks.after_instantiate(self.trainer, config)


def main(args: ArgsType = None) -> LabelSupervisedCLI:
    """Run the CLI; `args` (a list or dict) replaces `sys.argv`, so tests drive it from Python."""
    return LabelSupervisedCLI(
        LightningModule,  # any of lightning_modules' (`model.class_path`), LabelSupervisedModule by default
        LabelDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        auto_configure_optimizers=False,
        save_config_kwargs={"overwrite": True},
        parser_kwargs=cli_hooks.PARSER_KWARGS,  # no abbreviated options; parse errors explained in two lines
        # our batch samplers shard by process themselves; RNG states, atomic files and SIGTERM checkpoints
        trainer_defaults={
            "use_distributed_sampler": False,
            "enable_model_summary": False,  # one line of trainable parameters is logged instead (FLOPs were all 0)
            "callbacks": [ResumableTraining(), WandbRuns(), RunRecord()],
        },
        args=args,
    )


if __name__ == "__main__":
    sys.exit(run_with_one_line_errors(main))
