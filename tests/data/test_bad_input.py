"""Bad input gets one clear error naming the file, line or field; documented skipping is counted in the log."""

from __future__ import annotations

import logging
from typing import ClassVar

import datasets
import pytest
import torch
from helpers import TINY_LLAMA, quick

from core.hub import load_tokenizer
from datamodules import LabelDataModule
from datamodules.predict_input import read_predict_file
from datamodules.readers import DataFormatError
from datamodules.synthetic import build_tokenizer
from lightning_modules import LabelSupervisedModule
from main import main

BASE = ["fit", *quick("early_cue", "ls_llama"), "--config=configs/debug/fdr.yaml"]
BASE += ["--data.init_args.num_train=32", "--data.init_args.num_val=8"]


# ------------------------------------------------------------------------------------- data (the base path)
class Rows(LabelDataModule):
    """A data module over rows given in the test."""

    default_label_names: ClassVar[list[str]] = ["O", "B-X", "I-X"]
    name = "rows"

    def __init__(self, rows: dict[str, list], task: str = "sequence", **kwargs) -> None:
        super().__init__(tokenizer=build_tokenizer(), **kwargs)
        self.rows, self.task = rows, task

    def load_split(self, split: str) -> datasets.Dataset:
        return datasets.Dataset.from_dict(self.rows)


@pytest.mark.parametrize(
    ("rows", "task", "message"),
    [
        ({"text": ["ba ko", "  "], "label": [0, 1]}, "sequence", "rows/train example 1: empty text"),
        ({"text": ["ba ko", "ti"], "label": [0, 3]}, "sequence", "rows/train example 1: label 3 outside label_names"),
        ({"tokens": [["ba", "ko", "ti"]], "tags": [[0, 1]]}, "token", "rows/train example 0: 3 words but 2 tags"),
        ({"tokens": [["ba", "ko"]], "tags": [[0, 7]]}, "token", "rows/train example 0: label 7 outside label_names"),
        ({"tokens": [["ba"], []], "tags": [[0], []]}, "token", "rows/train example 1: sentence without words"),
    ],
)
def test_bad_examples_name_the_split_and_example(rows, task, message):
    with pytest.raises(ValueError, match=message):
        Rows(rows, task).setup("fit")


def test_texts_over_max_length_are_cut_and_counted(caplog):
    data = Rows({"text": ["ba " * 40, "ko ti", "re " * 50], "label": [0, 1, 2]}, max_length=16)
    with caplog.at_level(logging.WARNING):
        data.setup("fit")
    assert "rows/train: 2 of 3 texts cut to max_length=16 tokens" in caplog.text
    assert max(data.datasets["train"]["length"]) == 16


def test_label_ids_outside_num_labels_stop_the_step():
    module = LabelSupervisedModule(backbone_config=TINY_LLAMA, num_labels=2, vocab_size=50, verify_mask=False)
    batch = {"input_ids": torch.ones(2, 4, dtype=torch.long), "attention_mask": torch.ones(2, 4)}
    with pytest.raises(ValueError, match=r"label ids must lie in \[0, 2\).*batch has 0\.\.5"):
        module._step({**batch, "labels": torch.tensor([0, 5])})


# ------------------------------------------------------------------------------------ tokenizers, backbones
def test_a_tokenizer_without_pad_token_pads_with_eos_and_says_so(llama2_tokenizer, caplog):
    with caplog.at_level(logging.INFO, logger="core.hub"):
        tokenizer = load_tokenizer(llama2_tokenizer)
    assert tokenizer.pad_token == tokenizer.eos_token == "</s>"
    assert f"tokenizer {llama2_tokenizer} has no pad token: padding with '</s>' (id 2)" in caplog.text


def test_a_backbone_path_that_does_not_exist_is_named(tmp_path):
    missing = tmp_path / "no-such-llama"
    with pytest.raises(FileNotFoundError, match=f"backbone/tokenizer path '{missing}' does not exist"):
        LabelSupervisedModule(backbone=str(missing), num_labels=2)
    with pytest.raises(FileNotFoundError, match="no-such-model.gguf"):
        main([*BASE, "--model.backbone=./models/no-such-model.gguf"])


# ------------------------------------------------------------------------------------------ predict inputs
@pytest.mark.parametrize(
    ("name", "content", "task", "message"),
    [
        ("x.jsonl", '{"text": "ok"}\n{"txt": "typo"}\n', "sequence", r"x.jsonl:2: expected 'text'"),
        ("x.jsonl", '{"text": "ok"}\n{"text": "bad"\n', "sequence", r"x.jsonl:2: invalid JSON"),
        ("x.jsonl", '{"text": ""}\n', "sequence", r"x.jsonl:1: expected 'text' \(a non-empty string\)"),
        ("x.jsonl", '{"tokens": ["a", ""]}\n', "token", r"x.jsonl:1: 'tokens' must be a non-empty list"),
        ("x.conll", "a\nb\n", "sequence", "CoNLL files hold words for token tasks"),
        ("x.csv", "text\na\n", "sequence", "unknown input format '.csv'"),
        ("x.txt", "\n  \n", "sequence", "x.txt: no examples to predict"),
    ],
)
def test_bad_predict_files_name_the_file_and_line(tmp_path, name, content, task, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataFormatError, match=message):
        read_predict_file(path, task)


def test_predict_file_formats_and_blank_lines(tmp_path, caplog):
    (tmp_path / "a.txt").write_text("first text\n\nsecond  text\n")
    with caplog.at_level(logging.WARNING):
        texts = read_predict_file(tmp_path / "a.txt", "sequence")
    assert texts["text"] == ["first text", "second  text"] and texts["line"] == [1, 3]
    assert "skipped 1 blank lines" in caplog.text
    assert read_predict_file(tmp_path / "a.txt", "token")["tokens"] == [["first", "text"], ["second", "text"]]
    (tmp_path / "b.jsonl").write_text('{"tokens": ["New", "York"]}\n{"text": "in  it"}\n')
    assert read_predict_file(tmp_path / "b.jsonl", "token")["tokens"] == [["New", "York"], ["in", "it"]]
    with pytest.raises(FileNotFoundError, match="missing.txt: file not found"):
        read_predict_file(tmp_path / "missing.txt", "sequence")
