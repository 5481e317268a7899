"""ls-llama command line: `python main.py {fit,validate,test,predict} --config configs/....yaml`.

Discover the options with `python main.py fit --help`, `--model.help LabelSupervisedModule`, `--print_config`.
"""

import sys
from pathlib import Path

from lightning.pytorch.cli import ArgsType, LightningCLI

import datamodules  # noqa: F401  (registers the data modules for short class names in configs)
from datamodules import LabelDataModule
from lightning_modules import LabelSupervisedModule
from lightning_modules.checkpointing import ResumableTraining
from lightning_modules.cli_defaults import fill_run_defaults
from lightning_modules.config_guard import check_checkpoint, check_class_paths, restrict_imports
from lightning_modules.predict import PredictionWriter

# data module attribute -> model argument, set when the data module is instantiated
DATA_TO_MODEL = {
    "task": "task",
    "num_labels": "num_labels",
    "label_names": "label_names",
    "tokenizer_source": "tokenizer",
    "pad_token_id": "pad_token_id",
    "vocab_size": "vocab_size",
}


class LabelSupervisedCLI(LightningCLI):
    """LightningCLI that links the data's labels and tokenizer into the model, names the runs, writes predictions
    (`--prediction.output_file`), and refuses configs that name classes outside the allowed packages."""

    def add_arguments_to_parser(self, parser) -> None:  # noqa: D102
        for source, target in DATA_TO_MODEL.items():
            parser.link_arguments(f"data.{source}", f"model.{target}", apply_on="instantiate")
        parser.add_lightning_class_args(PredictionWriter, "prediction")

    def parse_arguments(self, parser, args: ArgsType) -> None:  # noqa: D102
        restrict_imports()
        check_class_paths(sys.argv[1:] if args is None else args)  # before jsonargparse imports any class path
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config.get(f"{subcommand}.ckpt_path") if subcommand else None
        if ckpt_path and Path(ckpt_path).is_file():  # its hyper-parameters are parsed next (LightningCLI)
            check_checkpoint(ckpt_path)

    def before_instantiate_classes(self) -> None:  # noqa: D102
        config = self.config[self.subcommand] if self.subcommand else self.config
        fill_run_defaults(config, self.subcommand)


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
    main()
