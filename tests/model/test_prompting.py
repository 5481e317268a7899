"""Zero-shot prompting (`prompting.zero_shot`): the paper's prompt, the answer parsers, the NER answer -> BIO
mapping on real CoNLL sentences, the shared-prefill readings against plain forward passes, label scoring on a tiny
model made to prefer a label, and zero-shot `test` without `fit` from the CLI and from the suite runner."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import torch
import yaml
from helpers import LLAMA2_TOKENIZER, ROOT, SHARED, TINY_LLAMA
from jsonargparse import Namespace
from lightning.pytorch import Trainer
from transformers import AutoConfig, LlamaForCausalLM

from app.run_defaults import method_of
from core.hub import load_tokenizer
from datamodules import CoNLL2003, EarlyCueClassification
from experiments.results_table import load_paper_numbers
from experiments.suite import Options, load_suite, run_suite
from lightning_modules import ClassificationPrompt, EntityPrompt, ZeroShotModule
from lightning_modules.metrics import ClassificationMetrics
from lightning_modules.prompting.answer_metrics import AnswerMetrics
from lightning_modules.prompting.answers import entities_to_tags, parse_entities, parse_label, tags_to_entities
from lightning_modules.prompting.decoding import causal_lm_parts, greedy_generate, prefill, score_answers
from lightning_modules.prompting.prompt_encoder import PromptEncoder, left_pad, right_pad, shared_prefix_length
from lightning_modules.prompting.prompts import PAPER_PROMPT
from main import main

PAPER = SHARED / "paper" / "label_supervised_llama_2310.01208.txt"
FAST = ["--trainer.fast_dev_run=1", "--trainer.accelerator=cpu", "--trainer.logger=false", "--trainer.callbacks=[]"]


def tiny_overrides(tokenizer: str | None) -> list[str]:
    """CLI arguments replacing a config's pretrained LM by the 2-layer random LLaMA (and its tokenizer)."""
    args = ["--model.init_args.backbone=null", f"--model.init_args.backbone_config={json.dumps(TINY_LLAMA)}"]
    args += ["--model.init_args.dtype=float32", "--trainer.precision=32-true"]
    return args + [f"--data.init_args.tokenizer={tokenizer}" if tokenizer else "--data.init_args.tokenizer=null"]


# ------------------------------------------------------------------------------------------------ the prompt
def test_prompt_is_the_papers_template_character_for_character():
    expected = (
        "You are a classification model. Based on the given article, you need to predict the most relevant "
        "category label from {all_labels}. One article has only one label. \n ### Input article: {input_text} \n"
        " ### Output: "
    )
    assert PAPER_PROMPT == expected
    if not PAPER.is_file():
        pytest.skip(f"{PAPER} is absent (the paper's text in ../shared): checked against the literal only")
    text = PAPER.read_text()
    block = re.search(r'prompt_input = (".*?")\n```', text, re.S).group(1)
    # the PDF wraps the one-line Python string: join its lines with the space the wrap replaced, then read the
    # literal as Python does (its `\n` are newlines)
    assert ast.literal_eval(" ".join(block.split("\n"))) == PAPER_PROMPT


def test_prompt_fills_labels_and_text():
    prompt = ClassificationPrompt().prompt("a gripping film", ["negative", "positive"])
    assert prompt == (
        "You are a classification model. Based on the given article, you need to predict the most relevant "
        "category label from ['negative', 'positive']. One article has only one label. \n ### Input article: "
        "a gripping film \n ### Output: "
    )
    comma = ClassificationPrompt(label_format="comma").prompt("x", ["home_improvement", "toy"])
    assert "label from home improvement, toy. One" in comma
    with pytest.raises(ValueError, match="model.prompt.template"):
        ClassificationPrompt(template="Classify {input_text}")


# ------------------------------------------------------------------------------------------------ the parsers
SST5 = ["very negative", "negative", "neutral", "positive", "very positive"]


@pytest.mark.parametrize(
    ("answer", "labels", "expected"),
    [
        ("positive", ["negative", "positive"], (1, "exact")),
        ("Positive", ["negative", "positive"], (1, "exact")),  # different case
        ("  **NEGATIVE**.", ["negative", "positive"], (0, "exact")),  # markdown, punctuation
        ("The sentiment of this review is 'positive'.", ["negative", "positive"], (1, "contained")),  # in a sentence
        ("It is positive, not negative.", ["negative", "positive"], (None, "several labels")),  # two labels
        ("positive or negative", ["negative", "positive"], (None, "several labels")),
        ("I cannot tell from this text.", ["negative", "positive"], (None, "no label")),  # no label
        ("", ["negative", "positive"], (None, "no label")),
        ("positively charming", ["negative", "positive"], (None, "no label")),  # whole words only
        ("The label is very negative.", SST5, (0, "contained")),  # not also `negative`
        ("Very Positive", SST5, (4, "exact")),
        ("This is sci/tech news", ["World", "Sports", "Business", "Sci/Tech"], (3, "contained")),
        ("Home improvement", ["home_improvement", "toy"], (0, "exact")),  # `_` read as a space
    ],
)
def test_label_parser(answer, labels, expected):
    assert parse_label(answer, labels) == expected


def test_entity_parser_reads_lines_and_counts_the_rest():
    types = {"PER": "person", "LOC": "location"}
    parsed = parse_entities("Here they are:\n- person: Peter Blackburn\n2. LOC: Berlin\nanimal: cat", types)
    assert parsed.entities == [("PER", "Peter Blackburn"), ("LOC", "Berlin")] and parsed.valid
    assert parsed.ignored_lines == 2  # the preamble and the unknown type
    assert parse_entities("None", types).valid and not parse_entities("None", types).entities
    assert not parse_entities("The entity is Peter.", types).valid  # no type: unreadable


def test_entities_to_tags_rules():
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    words = "Germany beat France , and GERMANY fans in New York cheered .".split()
    entities = [("LOC", "Germany"), ("LOC", "France."), ("LOC", "New York"), ("ORG", "New York Times")]
    every, unmatched = entities_to_tags(words, entities, names, "all")
    first, _ = entities_to_tags(words, entities, names, "first")
    tags = [names[i] for i in every]
    assert tags[:6] == ["B-LOC", "O", "B-LOC", "O", "O", "O"]  # "France." found as France; GERMANY: case differs
    assert tags[8:10] == ["B-LOC", "I-LOC"] and unmatched == 1  # "New York Times" is not in the sentence
    assert every == first
    twice = "Germany met Germany".split()
    assert [names[i] for i in entities_to_tags(twice, [("LOC", "Germany")], names, "all")[0]] == ["B-LOC", "O", "B-LOC"]
    assert [names[i] for i in entities_to_tags(twice, [("LOC", "Germany")], names, "first")[0]] == ["B-LOC", "O", "O"]
    only_upper = "fans of GERMANY".split()
    assert [names[i] for i in entities_to_tags(only_upper, [("LOC", "Germany")], names)[0]] == ["O", "O", "B-LOC"]


@pytest.mark.parametrize("occurrences", ["all", "first"])
def test_ner_answer_to_bio_round_trip_on_conll(occurrences, shared_data):
    """Gold entities written as an answer and read back give the gold tags, on every CoNLL-2003 test sentence
    (with "Santa Fe" a location and an organisation in one sentence, and repeated entities)."""
    data = CoNLL2003(data_dir=str(shared_data / "conll2003"))
    names, prompt = data.label_names, EntityPrompt(occurrences=occurrences)
    sentences = data.load_split("test")
    assert len(sentences) == 3453
    for example in sentences:
        words, gold = example["tokens"], [names[t] for t in example["tags"]]
        answer = prompt.response(tags_to_entities(words, gold), names)
        tags, parsed, unmatched = prompt.parse(answer, words, names)
        assert [names[t] for t in tags] == gold, (words, answer)
        assert parsed.valid and unmatched == 0


# ------------------------------------------------------------------------------------------------ the readings
@pytest.fixture(scope="module")
def tiny_lm():
    tokenizer = load_tokenizer(str(LLAMA2_TOKENIZER)) if LLAMA2_TOKENIZER.exists() else None
    if tokenizer is None:
        pytest.skip(f"{LLAMA2_TOKENIZER} is absent (the LLaMA-2 tokenizer in ../shared)")
    torch.manual_seed(0)
    config = AutoConfig.for_model(**dict(TINY_LLAMA, vocab_size=len(tokenizer)))
    return LlamaForCausalLM(config).eval(), tokenizer


def test_shared_prefill_readings_equal_plain_forward_passes(tiny_lm):
    """Scores and greedy answers from one shared prefill (+ a shared prompt prefix) equal those of separate full
    forward passes per prompt and answer."""
    model, tokenizer = tiny_lm
    prompts = tokenizer(["Rate it: a fine film", "Rate it: a dull, long and tiring movie", "Rate it: ok"])["input_ids"]
    answers = PromptEncoder.answer_ids(tokenizer, ["negative", "very positive", "neutral"])
    answer_ids, answer_mask = right_pad(answers, 0), right_pad([[1] * len(a) for a in answers], 0)
    expected, generated = torch.zeros(3, 3), []
    with torch.no_grad():
        for b, prompt in enumerate(prompts):
            for c, answer in enumerate(answers):
                logprobs = model(torch.tensor([prompt + answer])).logits[0].log_softmax(-1)
                expected[b, c] = sum(logprobs[len(prompt) - 1 + j, t] for j, t in enumerate(answer))
            ids, out = torch.tensor([prompt]), []
            for _ in range(5):
                token = model(ids).logits[0, -1].argmax().item()
                out.append(token)
                ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
            generated.append(out)
        body, head = causal_lm_parts(model)
        shared = shared_prefix_length(prompts)
        assert shared == len(tokenizer("Rate it:")["input_ids"])  # BOS + "Rate it:"
        for prefix in (None, torch.tensor(prompts[0][:shared])):
            cut = 0 if prefix is None else shared
            rows = [p[cut:] for p in prompts]
            state = prefill(body, head, left_pad(rows, 0), left_pad([[1] * len(r) for r in rows], 0), prefix)
            assert torch.allclose(score_answers(body, head, state, answer_ids, answer_mask), expected, atol=1e-4)
            assert greedy_generate(body, head, state, 5, stop_ids=[]) == generated


def test_generation_stops_at_the_stop_token(tiny_lm):
    model, _ = tiny_lm
    body, head = causal_lm_parts(model)
    with torch.no_grad():
        state = prefill(body, head, torch.tensor([[1, 50, 60]]), torch.ones(1, 3, dtype=torch.long))
        first = greedy_generate(body, head, state, 6, stop_ids=[])[0]
        state = prefill(body, head, torch.tensor([[1, 50, 60]]), torch.ones(1, 3, dtype=torch.long))
        assert greedy_generate(body, head, state, 6, stop_ids=[first[2]])[0] == first[: first.index(first[2])]


def test_rows_that_stop_leave_the_batch_and_the_others_answer_as_before(tiny_lm):
    """Stopping at a token that some rows produce early and others never: the stopped rows leave the batch (their
    cache rows are dropped), and every answer equals its row's continuation without any stop, cut at the stop."""
    model, tokenizer = tiny_lm
    body, head = causal_lm_parts(model)
    prompts = tokenizer(["a fine film", "a dull, long and tiring movie", "ok", "so bad it is good", "meh"])["input_ids"]
    ids, mask = left_pad(prompts, 0), left_pad([[1] * len(p) for p in prompts], 0)
    with torch.no_grad():
        full = greedy_generate(body, head, prefill(body, head, ids, mask), 8, stop_ids=[])
        firsts = {row[0] for row in full}
        stop = next(t for row in full for t in row[1:] if t not in firsts)  # a token that is never an answer's first
        state = prefill(body, head, ids, mask)
        cut = greedy_generate(body, head, state, 8, stop_ids=[stop])
    expected = [row[: row.index(stop)] if stop in row else row for row in full]
    assert cut == expected
    assert any(len(row) < 7 for row in cut) and any(len(row) == 8 for row in cut)  # some stopped, some ran on
    assert state.cache.get_seq_length() == ids.shape[1] + 7  # the rows still generating at the end: 7 steps
    assert state.cache.layers[0].keys.shape[0] == sum(len(row) == 8 for row in cut)


def test_invalid_answers_count_as_wrong_never_dropped():
    metric, plain = AnswerMetrics(3), ClassificationMetrics(3)
    target, ids = torch.tensor([0, 1, 2, 2]), torch.arange(4)
    metric.update(torch.tensor([0, 3, 2, 3]), target, ids)  # two invalid answers (3 = no label / several)
    values = metric.compute()
    assert values["acc"] == pytest.approx(0.5)
    # class 0: F1 1; class 1: a miss, F1 0; class 2: one of two found, F1 2/3
    assert values["f1"] == pytest.approx((1 + 0 + 2 / 3) / 3)
    valid = torch.tensor([0, 2, 2, 1])
    metric.reset(), metric.update(valid, target, ids), plain.update(valid, target, ids)
    assert {k: float(v) for k, v in metric.compute().items()} == pytest.approx(
        {k: float(v) for k, v in plain.compute().items()}
    )


# --------------------------------------------------------------------------------- encoding and chat template
class _Data:
    """The data module attributes an ExampleEncoder reads."""

    def __init__(self, tokenizer, label_names, task="sequence", max_length=64):
        self.tokenizer, self.label_names, self.task, self.max_length = tokenizer, label_names, task, max_length
        self.num_labels, self.name, self.pad_token_id = len(label_names), "data", tokenizer.pad_token_id


def test_chat_template_from_the_tokenizer(tiny_lm):
    _, tokenizer = tiny_lm
    data = _Data(tokenizer, ["negative", "positive"])
    batch = {"text": ["a fine film"], "label": [1]}
    plain = PromptEncoder(ClassificationPrompt()).encode(batch, [0], "test", data)
    assert (
        plain["input_ids"][0] == tokenizer(ClassificationPrompt().prompt("a fine film", data.label_names))["input_ids"]
    )
    with pytest.raises(ValueError, match="no chat template"):
        PromptEncoder(ClassificationPrompt(), chat_template=True).encode(batch, [0], "test", data)
    chat = load_tokenizer(str(LLAMA2_TOKENIZER))
    chat.chat_template = "{% for m in messages %}<s>[INST] {{ m['content'] }} [/INST]{% endfor %}"
    encoded = PromptEncoder(ClassificationPrompt()).encode(batch, [0], "test", _Data(chat, data.label_names))
    text = chat.decode(encoded["input_ids"][0])
    assert "[INST] You are a classification model." in text and text.endswith("### Output:  [/INST]")
    assert encoded["input_ids"][0].count(chat.bos_token_id) == 1  # the template's <s>; none added on top
    off = PromptEncoder(ClassificationPrompt(), chat_template=False).encode(
        batch, [0], "test", _Data(chat, data.label_names)
    )
    assert off["input_ids"] == plain["input_ids"]
    assert encoded["response_ids"][0] == tokenizer("positive", add_special_tokens=False)["input_ids"] + [2]


def test_long_texts_are_cut_to_max_length_tokens(tiny_lm):
    _, tokenizer = tiny_lm
    text = "one two three four five six seven eight nine ten"
    encoded = PromptEncoder(ClassificationPrompt()).encode(
        {"text": [text]}, [0], "test", _Data(tokenizer, ["a", "b"], max_length=3)
    )
    assert "Input article: one two three \n" in tokenizer.decode(encoded["input_ids"][0]) and encoded["truncated"] == [
        True
    ]


# --------------------------------------------------------------------------------- the module on a tiny model
@pytest.fixture
def cue_data(llama2_tokenizer):
    """The synthetic 4-class task (labels music, politics, science, sports) with the LLaMA-2 tokenizer."""
    return EarlyCueClassification(tokenizer=llama2_tokenizer, num_train=8, num_val=8, num_test=24, eval_batch_size=8)


def zero_shot_for(data, **kwargs) -> ZeroShotModule:
    return ZeroShotModule(
        backbone_config=TINY_LLAMA,
        task=data.task,
        num_labels=data.num_labels,
        label_names=data.label_names,
        pad_token_id=data.pad_token_id,
        vocab_size=data.vocab_size,
        **kwargs,
    )


@pytest.mark.parametrize("preferred", ["science", "sports"])
def test_label_scoring_picks_the_label_a_tiny_model_was_made_to_prefer(preferred, cue_data):
    """The LM head is biased towards the tokens of one label's answer (its word and eos): the likelihood reading
    then picks that label for every example, and generation names it."""
    module = zero_shot_for(cue_data)
    tokenizer, names = cue_data.tokenizer, cue_data.label_names
    (answer,) = PromptEncoder.answer_ids(tokenizer, [preferred])
    bias = torch.zeros(len(tokenizer))
    bias[answer[:-1]], bias[answer[-1]] = 50.0, 49.0  # the word first, then (nearly as likely) eos
    module.lm.lm_head.register_forward_hook(lambda _module, _inputs, out: out + bias)
    Trainer(accelerator="cpu", logger=False, enable_progress_bar=False).test(module, datamodule=cue_data)
    records = module._answers
    assert len(records) == 24
    assert {r["pred_likelihood"] for r in records} == {names.index(preferred)}
    assert {r["pred_generate"] for r in records} == {names.index(preferred)}
    labels = cue_data.datasets["test"]["labels"]
    metrics = module.trainer.callback_metrics
    share = labels.count(names.index(preferred)) / len(labels)
    assert float(metrics["test/ll_acc"]) == pytest.approx(share) and float(metrics["test/invalid_rate"]) == 0.0


def test_untrained_tiny_model_answers_are_counted_invalid(cue_data):
    module = zero_shot_for(cue_data, max_new_tokens=4)
    Trainer(accelerator="cpu", logger=False, enable_progress_bar=False).test(module, datamodule=cue_data)
    metrics = module.trainer.callback_metrics
    invalid = sum(r["pred_generate"] == cue_data.num_labels for r in module._answers)
    assert float(metrics["test/invalid_rate"]) == pytest.approx(invalid / 24) and invalid > 0
    assert float(metrics["test/score"]) == float(metrics["test/gen_acc"]) == float(metrics["test/acc"])
    assert float(metrics["test/examples_per_s"]) > 0 and "test/ll_examples_per_s" in metrics


# ------------------------------------------------------------------------------------------------ the CLI
def test_zero_shot_test_without_fit_from_the_cli(tmp_path, llama2_tokenizer, shared_data):
    """`python main.py test` on the untrained model: both readings' metrics, the answers and the example outcomes."""
    logger = {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(tmp_path)}}
    cli = main(
        [
            "test",
            "--config",
            "configs/data/sst2.yaml",
            "--config",
            "configs/backbone/smollm2-135m.yaml",
            "--config",
            "configs/method/zero_shot.yaml",
            *tiny_overrides(llama2_tokenizer),
            "--trainer.accelerator=cpu",
            "--trainer.callbacks=[]",
            "--data.init_args.max_eval_examples=12",
            f"--trainer.logger={json.dumps(logger)}",
        ]
    )
    assert type(cli.model).__name__ == "ZeroShotModule" and cli.trainer.global_step == 0
    metrics = cli.trainer.callback_metrics
    assert {"test/score", "test/acc", "test/f1", "test/gen_acc", "test/ll_acc", "test/invalid_rate"} <= set(metrics)
    assert {"test/lln_acc", "test/lln_f1", "test/lln_examples_per_s"} <= set(metrics)  # the length-normalised one
    assert float(metrics["test/score"]) == float(metrics["test/gen_acc"])  # the tables' score is the generated one
    log_dir = Path(cli.trainer.log_dir)
    answers = [json.loads(line) for line in (log_dir / "test_answers.jsonl").read_text().splitlines()]
    assert [a["example_id"] for a in answers] == list(range(12))
    assert all({"pred_generate", "pred_likelihood", "pred_likelihood_mean"} <= set(a) for a in answers)
    assert (log_dir / "test_examples.csv").read_text().startswith("example_id,target,pred")


def test_method_tag_reads_as_the_issue_asks():
    for cls, tag in (("ZeroShotModule", "zero_shot"), ("InstructionTuningModule", "instruction_tuning")):
        config = Namespace(model=Namespace(class_path=f"lightning_modules.{cls}", init_args=Namespace()))
        assert f"method:{method_of(config)}" == f"method:{tag}"


def needs_shared(config: str) -> None:
    """Skip when a data config reads a folder of ../shared that is absent."""
    data_dir = yaml.safe_load((ROOT / config).read_text())["data"].get("init_args", {}).get("data_dir")
    if data_dir and not (ROOT / data_dir).is_dir():
        pytest.skip(f"{ROOT / data_dir} is absent (the shared data folder)")


ZERO_SHOT_DATA = [
    "experiments/repro_smollm2/right_context_ner.yaml",
    "configs/data/sst2.yaml",
    "configs/data/conll2003.yaml",
]
CHAT_BACKBONES = ["configs/backbone/llama2-7b-chat.yaml", "configs/backbone/llama2-13b-chat.yaml"]


@pytest.mark.parametrize(
    ("data", "backbone"),
    [(data, "configs/backbone/smollm2-135m.yaml") for data in ZERO_SHOT_DATA]
    + [("configs/data/sst2.yaml", backbone) for backbone in CHAT_BACKBONES],
)
def test_zero_shot_config_runs_one_batch(data, backbone, llama2_tokenizer):
    needs_shared(data)
    synthetic = "right_context" in data
    args = ["test", "--config", data, "--config", backbone, "--config", "configs/method/zero_shot.yaml"]
    cli = main([*args, *tiny_overrides(None if synthetic else llama2_tokenizer), *FAST])
    assert cli.trainer.state.finished and cli.model.method == "zero_shot"
    sequence = ["generate", "likelihood", "likelihood_mean"]  # the overlay's default readings
    assert cli.model.readings == (["generate"] if cli.model.task == "token" else sequence)
    assert "test/score" in cli.trainer.callback_metrics


def test_debug_overlays_work_with_the_zero_shot_overlay():
    """The README's smoke test (configs/debug/tiny_llama.yaml + fdr.yaml; a WordPiece tokenizer ending answers with
    [SEP]) also runs the zero-shot method."""
    cli = main(
        [
            "test",
            "--config",
            "experiments/repro_smollm2/right_context_ner.yaml",
            "--config",
            "configs/backbone/llama2-7b-chat.yaml",
            "--config",
            "configs/method/zero_shot.yaml",
            "--config",
            "configs/debug/tiny_llama.yaml",
            "--config",
            "configs/debug/fdr.yaml",
        ]
    )
    assert cli.trainer.state.finished and cli.model.task == "token"


# ------------------------------------------------------------------------------------------------ the suites
def test_baseline_suites_load_with_paper_keys():
    numbers = load_paper_numbers()
    for name in ("suite", "paper_table2", "paper_table3", "paper_table4"):
        suite = load_suite(ROOT / "experiments" / "baselines_llm" / f"{name}.yaml")
        assert all(run.paper in numbers for run in suite.runs), name
        for run in suite.runs:
            zero_shot = "configs/method/zero_shot.yaml" in run.configs
            assert run.stages == (["test"] if zero_shot else ["fit", "test"]), run.id
    table2 = {run.id: run for run in load_suite(ROOT / "experiments/baselines_llm/paper_table2.yaml").runs}
    assert table2["sst2-llama2-13b-chat-zero_shot"].paper == "sst2/llama2-13b-chat/zero_shot"
    assert "--trainer.max_steps=50000" in table2["agnews-llama2-7b-instruction_tuning"].fit_overrides
    assert "--trainer.max_steps=50000" not in table2["sst5-llama2-7b-instruction_tuning"].fit_overrides
    cpu = load_suite(ROOT / "experiments/baselines_llm/suite.yaml")
    assert {"sst2-smollm2-instruction_tuning-s0", "sst2-smollm2-instruction_tuning-s2"} <= {r.id for r in cpu.runs}
    # their results are copied into one folder with repro_seeds' and mntp's (one table): no run id may be shared
    others = [load_suite(ROOT / f"experiments/{name}/suite.yaml") for name in ("repro_seeds", "mntp")]
    ids = [run.id for suite in (cpu, *others) for run in suite.runs]
    assert len(ids) == len(set(ids))


def test_suite_runs_a_test_only_run_without_fit(tmp_path, llama2_tokenizer, monkeypatch):
    data = tmp_path / "data.yaml"
    data.write_text(
        yaml.safe_dump(
            {
                "data": {
                    "class_path": "datamodules.EarlyCueClassification",
                    "init_args": {"num_train": 8, "num_val": 8, "num_test": 16, "tokenizer": llama2_tokenizer},
                }
            }
        )
    )
    spec = {
        "name": "zero_shot_only",
        "base_configs": ["configs/trainer/default.yaml"],
        "overrides": [*tiny_overrides(llama2_tokenizer), "--trainer.accelerator=cpu", "--model.max_new_tokens=3"],
        "runs": [
            {
                "id": "cue-zero_shot",
                "configs": [str(data), "configs/backbone/smollm2-135m.yaml", "configs/method/zero_shot.yaml"],
                "stages": ["test"],
            }
        ],
    }
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(spec))
    suite = load_suite(tmp_path / "suite.yaml", tmp_path / "runs")
    outcome = run_suite(suite, Options(wandb="off", in_process=True, fail_fast=True))
    assert not outcome["failed"]
    run_dir = tmp_path / "runs" / "cue-zero_shot"
    result = json.loads((run_dir / "result.json").read_text())
    assert not (run_dir / "fit").exists() and not (run_dir / "fit_done.json").exists()
    assert "--ckpt_path" not in result["test_command"] and "test/ll_acc" in result["test"]
    assert "stages" in json.loads((run_dir / "run.json").read_text())["arguments"]
    with pytest.raises(Exception, match="stages"):
        load_suite_with(tmp_path, {**spec, "runs": [{**spec["runs"][0], "stages": ["fit"]}]})


def load_suite_with(folder: Path, spec: dict):
    (folder / "bad.yaml").write_text(yaml.safe_dump(spec))
    return load_suite(folder / "bad.yaml")
