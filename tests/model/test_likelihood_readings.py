"""The likelihood readings of prompted models (issue 17): the summed log-likelihood of each label's answer (`ll_`)
and the same per answer token (`likelihood_mean`, `lln_`), computed from the summed scores of one shared prefill;
on a case built so that they disagree, the summed reading picks the short label and the mean reading the long one."""

from __future__ import annotations

import pytest
import torch
from helpers import LLAMA2_TOKENIZER, TINY_LLAMA
from lightning.pytorch import Trainer
from transformers import AutoConfig, LlamaForCausalLM

from core.hub import load_tokenizer
from datamodules import EarlyCueClassification
from lightning_modules import ClassificationPrompt, ZeroShotModule
from lightning_modules.prompting.decoding import causal_lm_parts, mean_per_token, prefill, score_answers
from lightning_modules.prompting.prompt_encoder import PromptEncoder, left_pad, right_pad


@pytest.fixture(scope="module")
def tiny_lm():
    if not LLAMA2_TOKENIZER.exists():
        pytest.skip(f"{LLAMA2_TOKENIZER} is absent (the LLaMA-2 tokenizer in ../shared)")
    tokenizer = load_tokenizer(str(LLAMA2_TOKENIZER))
    torch.manual_seed(0)
    config = AutoConfig.for_model(**dict(TINY_LLAMA, vocab_size=len(tokenizer)))
    return LlamaForCausalLM(config).eval(), tokenizer


def test_mean_is_the_sum_over_the_answer_tokens_of_plain_forward_passes(tiny_lm):
    """Per prompt and label answer (1, 3 and 4 tokens with eos): the mean reading is exactly the summed reading
    over the answer's token count, and equals the mean of the answer tokens' log-probabilities from one plain
    forward pass over prompt + answer."""
    model, tokenizer = tiny_lm
    prompts = tokenizer(["Rate it: a fine film", "Rate it: a dull, long and tiring movie"])["input_ids"]
    answers = [[tokenizer.eos_token_id], *PromptEncoder.answer_ids(tokenizer, ["negative", "very positive"])]
    lengths = [len(answer) for answer in answers]
    assert lengths[0] == 1 and len(set(lengths)) == 3
    answer_ids, answer_mask = right_pad(answers, 0), right_pad([[1] * n for n in lengths], 0)
    expected = torch.zeros(2, 3)
    with torch.no_grad():
        for b, prompt in enumerate(prompts):
            for c, answer in enumerate(answers):
                logprobs = model(torch.tensor([prompt + answer])).logits[0].log_softmax(-1)
                expected[b, c] = torch.stack([logprobs[len(prompt) - 1 + j, t] for j, t in enumerate(answer)]).mean()
        body, head = causal_lm_parts(model)
        state = prefill(body, head, left_pad(prompts, 0), left_pad([[1] * len(p) for p in prompts], 0))
        sums = score_answers(body, head, state, answer_ids, answer_mask)  # (B, C)
    means = mean_per_token(sums, answer_mask)
    assert torch.equal(means, sums / torch.tensor(lengths, dtype=sums.dtype))
    assert torch.allclose(means, expected, atol=1e-5)


def test_summed_reading_prefers_the_short_label_the_mean_reading_the_long_one(llama2_tokenizer):
    """The LM head is replaced by fixed logits (the same at every position): `very` likely, `good` and eos less,
    every other token nearly impossible. Answer `good` + eos then has the higher sum (two unlikely tokens against
    four), `very very good` + eos the higher mean (two of its four tokens are likely): `ll_` picks `good` for
    every example and `lln_` picks `very very good`; `test/score` stays the generated reading."""
    data = EarlyCueClassification(tokenizer=llama2_tokenizer, num_train=8, num_val=8, num_test=24, eval_batch_size=8)
    words = ["bad", "fine", "good", "very very good"]  # labels music, politics, science, sports
    module = ZeroShotModule(
        backbone_config=TINY_LLAMA,
        task=data.task,
        num_labels=data.num_labels,
        label_names=data.label_names,
        pad_token_id=data.pad_token_id,
        vocab_size=data.vocab_size,
        prompt=ClassificationPrompt(verbalizations=words),
        max_new_tokens=3,
    )
    tokenizer = data.tokenizer
    (very,), (good,) = (tokenizer(word, add_special_tokens=False)["input_ids"] for word in ("very", "good"))
    eos = tokenizer.eos_token_id
    logits = torch.full((len(tokenizer),), -30.0)
    logits[very], logits[good], logits[eos] = 0.0, -2.0, -2.0
    with torch.no_grad():
        module.lm.lm_head.weight.zero_()
    module.lm.lm_head.register_forward_hook(lambda _module, _inputs, out: out + logits)
    logprob = logits.log_softmax(-1)
    short, long = logprob[good] + logprob[eos], 2 * logprob[very] + logprob[good] + logprob[eos]
    assert short > long and short / 2 < long / 4  # the construction: sums and means disagree
    Trainer(accelerator="cpu", logger=False, enable_progress_bar=False).test(module, datamodule=data)
    records = module._answers
    assert len(records) == 24
    assert {r["pred_likelihood"] for r in records} == {words.index("good")}
    assert {r["pred_likelihood_mean"] for r in records} == {words.index("very very good")}
    labels = data.datasets["test"]["labels"]
    metrics = module.trainer.callback_metrics
    assert float(metrics["test/ll_acc"]) == pytest.approx(labels.count(words.index("good")) / 24)
    assert float(metrics["test/lln_acc"]) == pytest.approx(labels.count(words.index("very very good")) / 24)
    assert {r["answer"] for r in records} == {"very very very"}  # names no label: generation is wrong everywhere
    assert float(metrics["test/score"]) == float(metrics["test/gen_acc"]) == 0.0
    assert metrics["test/ll_examples_per_s"] > 0 and metrics["test/lln_examples_per_s"] > 0


def test_readings_are_checked_and_ner_keeps_generation_only(llama2_tokenizer):
    data = EarlyCueClassification(tokenizer=llama2_tokenizer, num_train=4, num_val=4, num_test=4)
    common = {
        "backbone_config": TINY_LLAMA,
        "num_labels": data.num_labels,
        "label_names": data.label_names,
        "vocab_size": data.vocab_size,
    }
    assert ZeroShotModule(**common).readings == ["generate", "likelihood", "likelihood_mean"]
    only_mean = ZeroShotModule(**common, readings=["likelihood_mean"], score_reading="likelihood_mean")
    assert only_mean.readings == ["likelihood_mean"] and only_mean.score_reading == "likelihood_mean"
    with pytest.raises(ValueError, match="model.readings must be a non-empty list of generate/likelihood/likeli"):
        ZeroShotModule(**common, readings=["likelihood_median"])
    with pytest.raises(ValueError, match="model.score_reading 'likelihood_mean' is not among"):
        ZeroShotModule(**common, readings=["generate", "likelihood"], score_reading="likelihood_mean")
    ner = ZeroShotModule(
        backbone_config=TINY_LLAMA,
        task="token",
        num_labels=3,
        label_names=["O", "B-PER", "I-PER"],
        vocab_size=data.vocab_size,
        readings=["generate", "likelihood_mean"],
    )
    assert ner.readings == ["generate"]
