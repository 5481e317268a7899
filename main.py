"""ls-llama command line: `python main.py {fit,validate,test,predict} --config configs/....yaml`.

Discover the options with `python main.py fit --help`, `--model.help LabelSupervisedModule`, `--print_config`.
Errors print as one line; `LS_LLAMA_DEBUG=1` (or `--debug`) shows the traceback.
"""

import sys

from lightning.pytorch.cli import ArgsType, LightningCLI

import datamodules  # noqa: F401  (registers the data modules for short class names in configs)
from app import cli_hooks
from app.checkpointing import ResumableTraining
from app.errors import run_with_one_line_errors
from app.predict import PredictionWriter
from datamodules import LabelDataModule
from lightning_modules import LabelSupervisedModule

# data module attribute -> model argument, set when the data module is instantiated: the data hands the model ids
DATA_TO_MODEL = {
    "task": "task",
    "num_labels": "num_labels",
    "label_names": "label_names",
    "pad_token_id": "pad_token_id",
    "vocab_size": "vocab_size",
}


class LabelSupervisedCLI(LightningCLI):
    """LightningCLI that links the data's labels and tokenizer ids into the model, fills and prints the run defaults
    (`--print_config` shows them), names the runs, writes predictions (`--prediction.output_file`), and refuses
    configs that name classes outside the allowed packages (`core.class_paths`)."""

    def add_arguments_to_parser(self, parser) -> None:  # noqa: ANN001  (jsonargparse's parser)
        """Links from the data module to the model, and the prediction writer's options."""
        for source, target in DATA_TO_MODEL.items():
            parser.link_arguments(f"data.{source}", f"model.{target}", apply_on="instantiate")
        parser.add_lightning_class_args(PredictionWriter, "prediction")

    def parse_arguments(self, parser, args: ArgsType) -> None:  # noqa: ANN001
        """Guard the class paths, parse, and answer `--print_config` with the run defaults filled in."""
        self.args = sys.argv[1:] if args is None else args
        cli_hooks.configure_logging()
        cli_hooks.guard_class_paths(self.args)
        with cli_hooks.print_config_deferred(parser) as request:
            super().parse_arguments(parser, args)
        if request:
            self._parse_ckpt_path()
            cli_hooks.print_config_and_exit(parser, self.config, request)

    def before_instantiate_classes(self) -> None:
        """Fill the run defaults (tokenizer, mask/pooling, precision, names) and warn about dropped callbacks."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        cli_hooks.before_instantiate(config, self.subcommand, self.args)


def main(args: ArgsType = None) -> LabelSupervisedCLI:
    """Run the CLI; `args` (a list or dict) replaces `sys.argv`, so tests drive it from Python."""
    return LabelSupervisedCLI(
        LabelSupervisedModule,
        LabelDataModule,
        subclass_mode_data=True,
        auto_configure_optimizers=False,
        save_config_kwargs={"overwrite": True},
        # our batch samplers shard by process themselves; RNG states, atomic files and SIGTERM checkpoints
        trainer_defaults={"use_distributed_sampler": False, "callbacks": [ResumableTraining()]},
        args=args,
    )


if __name__ == "__main__":
    sys.exit(run_with_one_line_errors(main))
