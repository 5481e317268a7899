"""Parse errors a person reads (issue 19): at most two lines naming the key, where it was given (the command line,
or the config file and line), what was wrong and the closest valid key, value or class; no abbreviated options."""

from __future__ import annotations

import pytest
import yaml
from helpers import quick

from main import main

BASE = ["fit", *quick("early_cue", "ls_llama"), "--config=configs/debug/fdr.yaml"]
BASE += ["--data.init_args.num_train=32", "--data.init_args.num_val=8"]


def parse_error(args: list[str], capsys) -> list[str]:
    """The lines a parse error prints (it exits with argparse's status 2)."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "--model.lora_rr=4",
            "error: model.lora_rr (on the command line) is not an option of LabelSupervisedModule; "
            "did you mean model.lora_r?",
        ),
        (
            "--model.init_args.lora_r=twelve",
            "error: model.lora_r=twelve (on the command line): expected a value of type int",
        ),
        (
            "--model.finetuning=qlora",
            "error: model.finetuning=qlora (on the command line): expected one of lora, full, head",
        ),
        (
            "--data.init_args.batch_sise=8",
            "error: data.batch_sise (on the command line) is not an option of "
            "EarlyCueClassification; did you mean data.batch_size?",
        ),
        (
            "--trainer.max_epohcs=3",
            "error: trainer.max_epohcs (on the command line) is not an option; did you mean trainer.max_epochs?",
        ),
        (
            "--model.optimizer=torch.optim.AdamWW",
            "error: model.optimizer: cannot import the class "
            "'torch.optim.AdamWW' (on the command line); did you mean torch.optim.AdamW?",
        ),
    ],
)
def test_a_command_line_mistake_is_two_lines_naming_the_key_and_the_closest_choice(override, expected, capsys):
    lines = parse_error([*BASE, override], capsys)
    assert len(lines) <= 2 and lines[0].startswith(expected), lines


def test_abbreviated_options_are_refused_not_guessed(capsys):
    """argparse would take `--trainer.max_epoch` for `--trainer.max_epochs`; a typo must not train silently."""
    lines = parse_error([*BASE, "--trainer.max_epoch=2"], capsys)
    assert lines[0].startswith(
        "error: trainer.max_epoch (on the command line) is not an option; did you mean trainer.max_epochs?"
    )


@pytest.mark.parametrize(
    ("config", "key", "line", "suggestion"),
    [
        ({"model": {"lora_rank": 3}}, "model.lora_rank", 2, "model.lora_r"),
        ({"data": {"init_args": {"batchsize": 3}}}, "data.batchsize", 3, "data.batch_size"),
        ({"trainer": {"max_epoch": 3}}, "trainer.max_epoch", 2, "trainer.max_epochs"),
    ],
)
def test_a_config_file_mistake_names_the_file_and_line(config, key, line, suggestion, tmp_path, capsys):
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(config))
    lines = parse_error([*BASE, f"--config={path}"], capsys)
    assert len(lines) <= 2 and f"{key} (in {path}:{line})" in lines[0] and f"did you mean {suggestion}?" in lines[0]


def test_a_mistyped_component_class_names_the_closest_one():
    with pytest.raises(
        ValueError,
        match=r"model\.pooling: lightning_modules has no class 'LastTokenPoolng'; did "
        r"you mean lightning_modules\.LastTokenPooling\?",
    ):
        main([*BASE, "--model.pooling=LastTokenPoolng"])


def test_debug_shows_the_parser_error_itself(monkeypatch):
    from jsonargparse import ArgumentError

    monkeypatch.setenv("LS_LLAMA_DEBUG", "1")
    with pytest.raises(ArgumentError, match="Option 'lora_rr' is not accepted"):
        main([*BASE, "--model.lora_rr=4"])
