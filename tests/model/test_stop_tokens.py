"""Stop tokens of greedy generation (issue 17): generation stops at the tokenizer's eos, at every eos id of the
model's generation config (an int or a list, also from a `generation_config.json` beside a local model) and at the
special token that ends an assistant turn in the chat template (Llama-3 `<|eot_id|>`, Gemma `<end_of_turn>`, Phi-3
`<|end|>`), as `generate` does.

The tests use a tiny word-level tokenizer built here, whose chat template ends turns with `<|eot|>`, and a tiny
LLaMA made into a bigram model by setting its weights: each layer's output projections are zero (the residual
stream is the token's embedding, a one-hot vector) and the LM head maps each token to the one that must follow it.
What it generates is then known token by token, and a missing stop shows as extra words in the answer."""

from __future__ import annotations

import logging

import pytest
import torch
from helpers import TINY_LLAMA
from lightning.pytorch import Trainer
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from core.hub import load_tokenizer
from datamodules import EarlyCueClassification
from lightning_modules import ClassificationPrompt, ZeroShotModule
from lightning_modules.prompting.decoding import causal_lm_parts, generation_eos_ids, greedy_generate, prefill
from lightning_modules.prompting.prompt_encoder import PromptEncoder, left_pad, turn_end

SPECIAL = ["<unk>", "<s>", "</s>", "<|eot|>", "<pad>", "<end_of_turn>", "<|end|>", "<|eot_id|>"]
WORDS = ["user", "assistant", "model", ":", "music", "politics", "science", "sports", "yes", "no", "OK", "Hi"]
VOCAB = {token: i for i, token in enumerate(SPECIAL + WORDS)}  # 20 tokens: fits a one-hot hidden state of 32
TEMPLATE = (  # ends every turn with the special token <|eot|>, like Llama-3's <|eot_id|>
    "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} <|eot|> {% endfor %}"
    "{% if add_generation_prompt %}assistant : {% endif %}"
)


def tiny_tokenizer(folder, template: str | None = TEMPLATE) -> PreTrainedTokenizerFast:
    """A word-level tokenizer (eos `</s>`, special tokens `<|eot|>` and others) saved to `folder` and loaded back
    the way the data modules load tokenizers."""
    backend = Tokenizer(models.WordLevel(VOCAB, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece()  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        additional_special_tokens=SPECIAL[3:4] + SPECIAL[5:],
    )
    tokenizer.chat_template = template
    tokenizer.save_pretrained(folder)
    return load_tokenizer(str(folder))


def make_bigram(model: LlamaForCausalLM, follows: dict[str, str]) -> LlamaForCausalLM:
    """Set the weights of a tiny LLaMA so that after token `a` the greedy next token is `follows[a]`."""
    hidden = model.config.hidden_size
    with torch.no_grad():
        model.get_input_embeddings().weight.copy_(torch.eye(len(VOCAB), hidden) * hidden**0.5)  # one-hot rows
        for layer in model.model.layers:  # attention and MLP add nothing to the residual stream
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        head = torch.zeros(len(VOCAB), hidden)
        for before, after in follows.items():
            head[VOCAB[after], VOCAB[before]] = 10.0
        model.get_output_embeddings().weight.copy_(head)
    return model.eval()


def bigram_model(follows: dict[str, str], eos: int | list[int] = 2) -> LlamaForCausalLM:
    config = AutoConfig.for_model(
        **dict(TINY_LLAMA, vocab_size=len(VOCAB), eos_token_id=eos, tie_word_embeddings=False)
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = eos
    return make_bigram(model, follows)


def cue_data(tokenizer_dir) -> EarlyCueClassification:
    """The synthetic 4-class task (labels music, politics, science, sports) read with the tiny tokenizer."""
    return EarlyCueClassification(tokenizer=str(tokenizer_dir), num_train=4, num_val=4, num_test=8, eval_batch_size=4)


def zero_shot(data: EarlyCueClassification, **kwargs) -> ZeroShotModule:
    source = kwargs.pop("backbone", None)
    config = {"backbone": source} if source else {"backbone_config": {**TINY_LLAMA, "tie_word_embeddings": False}}
    return ZeroShotModule(
        **config,
        task=data.task,
        num_labels=data.num_labels,
        label_names=data.label_names,
        pad_token_id=data.pad_token_id,
        vocab_size=data.vocab_size,
        **kwargs,
    )


# --------------------------------------------------------------------------------------- where stop ids come from
def test_turn_end_is_read_from_the_chat_template(tmp_path):
    tokenizer = tiny_tokenizer(tmp_path)
    assert turn_end(tokenizer) == VOCAB["<|eot|>"]
    encoder = PromptEncoder(ClassificationPrompt())
    encoder.bind(tokenizer)
    assert encoder.stop_ids([2, 9]) == {"eos": [2], "generation_config": [9], "chat_template": [VOCAB["<|eot|>"]]}


# the turn format of each family, written with the tiny vocabulary (a word it lacks reads as <unk>)
FAMILY_TEMPLATES = {
    "llama3": "{% for m in messages %}<s> {{ m['role'] }} : {{ m['content'] }} <|eot_id|> {% endfor %}",
    "gemma": "{% for m in messages %}{{ m['role'] }} {{ m['content'] | trim }} <end_of_turn> {% endfor %}",
    "phi3": "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} <|end|> {% endfor %}",
    "llama2_chat": "{% for m in messages %}{% if m['role'] == 'user' %}<s> [INST] {{ m['content'] }} [/INST]"
    "{% else %} {{ m['content'] }} {{ eos_token }}{% endif %}{% endfor %}",  # the turn ends with eos
    "plain_text": "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} no {% endfor %}",
    "refuses": "{{ raise_exception('only user messages') }}",  # a template that rejects the conversation
}
FAMILY_ENDS = {"llama3": "<|eot_id|>", "gemma": "<end_of_turn>", "phi3": "<|end|>", "llama2_chat": "</s>"}


@pytest.mark.parametrize("family", FAMILY_TEMPLATES)
def test_turn_end_of_each_template_family(tmp_path, family):
    tokenizer = tiny_tokenizer(tmp_path, FAMILY_TEMPLATES[family])
    expected = FAMILY_ENDS.get(family)
    assert turn_end(tokenizer) == (VOCAB[expected] if expected else None)


def test_answers_end_with_the_token_that_ends_the_assistants_turn(tmp_path):
    """The answers that instruction tuning trains on and the likelihood readings score end as the model ends a
    turn in the prompts' chat template (`<|eot|>` here, Gemma's `<end_of_turn>`), with bare prompts with eos."""
    tokenizer = tiny_tokenizer(tmp_path / "chat")
    data = type(
        "Data",
        (),
        {
            "tokenizer": tokenizer,
            "label_names": ["music", "sports"],
            "task": "sequence",
            "max_length": 16,
            "num_labels": 2,
            "name": "data",
            "pad_token_id": 4,
        },
    )()
    batch, eot, eos = {"text": ["Hi"], "label": [1]}, VOCAB["<|eot|>"], VOCAB["</s>"]
    for chat_template, end in ((None, eot), (False, eos)):
        encoder = PromptEncoder(ClassificationPrompt(), chat_template=chat_template, with_response=True)
        assert encoder.encode(batch, [0], "test", data)["response_ids"] == [[VOCAB["sports"], end]]
        answer_ids, answer_mask = encoder.label_answers(tokenizer, data.label_names)
        assert answer_ids.tolist() == [[VOCAB["music"], end], [VOCAB["sports"], end]] and answer_mask.all()
    llama2_chat = tiny_tokenizer(tmp_path / "llama2_chat", FAMILY_TEMPLATES["llama2_chat"])  # its turns end with eos
    assert PromptEncoder(ClassificationPrompt()).answer_end(llama2_chat) == eos


def test_generation_config_eos_ids_int_list_or_none():
    assert generation_eos_ids(bigram_model({}, eos=2)) == [2]
    assert generation_eos_ids(bigram_model({}, eos=[2, 9, 3])) == [2, 9, 3]
    model = bigram_model({})
    model.generation_config.eos_token_id = None
    assert generation_eos_ids(model) == []


# ------------------------------------------------------------------------------------------- greedy decoding
def test_bigram_model_generates_what_it_was_set_to(tmp_path):
    """The construction the module tests rely on: after `:` the bigram model says `sports <|eot|> music music`."""
    model = bigram_model({":": "sports", "sports": "<|eot|>", "<|eot|>": "music", "music": "music"})
    body, head = causal_lm_parts(model)
    prompts = [[VOCAB["user"], VOCAB[":"]], [VOCAB["Hi"], VOCAB["assistant"], VOCAB[":"]]]
    with torch.no_grad():
        for stops, expected in (([], ["sports", "<|eot|>", "music", "music"]), ([VOCAB["<|eot|>"]], ["sports"])):
            state = prefill(body, head, left_pad(prompts, 0), left_pad([[1] * len(p) for p in prompts], 0))
            assert greedy_generate(body, head, state, 4, stops) == [[VOCAB[w] for w in expected]] * 2


# ---------------------------------------------------------------------------------------------- the module
def run_test(module: ZeroShotModule, data: EarlyCueClassification) -> list[dict]:
    Trainer(accelerator="cpu", logger=False, enable_progress_bar=False).test(module, datamodule=data)
    return module._answers


def test_generation_stops_at_the_chat_templates_end_of_turn(tmp_path, caplog, monkeypatch):
    """The chat template ends turns with `<|eot|>` (not the eos): the model answers `sports <|eot|> music ...`;
    generation stops at `<|eot|>`, and the answer is `sports` without it. The stop ids are logged once."""
    tiny_tokenizer(tmp_path / "tokenizer")
    data = cue_data(tmp_path / "tokenizer")
    module = zero_shot(data, max_new_tokens=6, readings=["generate"])
    make_bigram(module.lm, {":": "sports", "sports": "<|eot|>", "<|eot|>": "music", "music": "music"})
    with caplog.at_level(logging.INFO, logger="lightning_modules.prompting.zero_shot"):
        records = run_test(module, data)
    assert module.generation_stop_ids() == [2, VOCAB["<|eot|>"]]  # eos (also the generation config's), end of turn
    assert [r["answer"] for r in records] == ["sports"] * 8
    assert {r["read_as"] for r in records} == {"exact"} and {r["pred_generate"] for r in records} == {3}
    logged = [r.message for r in caplog.records if "generation stops at" in r.message]
    assert len(logged) == 1 and "<|eot|>" in logged[0] and "chat_template [3]" in logged[0]
    # without the end-of-turn stop the same model runs on: the answer names two labels
    monkeypatch.setattr(module, "generation_stop_ids", lambda: [2])
    assert {r["answer"] for r in run_test(module, data)} == {"sports music music music music"}


def test_generation_config_eos_list_beside_a_local_model_is_honoured(tmp_path, monkeypatch):
    """A local model whose generation_config.json lists eos ids `[</s>, yes]`: generation stops at `yes`, a plain
    word the tokenizer knows nothing special about, as `generate` would."""
    tiny_tokenizer(tmp_path / "tokenizer", template=None)
    data = cue_data(tmp_path / "tokenizer")
    stops = [2, VOCAB["yes"]]
    bigram_model({":": "sports", "sports": "yes", "yes": "music", "music": "music"}, eos=stops).save_pretrained(
        tmp_path / "model"
    )
    assert "eos_token_id" in (tmp_path / "model" / "generation_config.json").read_text()
    module = zero_shot(
        data,
        backbone=str(tmp_path / "model"),
        max_new_tokens=6,
        readings=["generate"],
        prompt=ClassificationPrompt(template="{all_labels} {input_text} :"),
    )
    records = run_test(module, data)
    assert module.generation_stop_ids() == stops
    assert [r["answer"] for r in records] == ["sports"] * 8
    monkeypatch.setattr(module, "generation_stop_ids", lambda: [2])  # the tokenizer's eos alone would not stop it
    assert {r["answer"] for r in run_test(module, data)} == {"sports yes music music music music"}
