"""`PromptEncoder`: a data module's examples as prompts (and answers) for a causal LM (`core.encoding.ExampleEncoder`).

The data module keeps the examples (`text`/`label` or `tokens`/`tags`), label names, splits, subsets, seeds and
samplers; this encoder turns an example into
- the prompt's token ids: the formatter's prompt (`lightning_modules.prompting.prompts`) as the user message of the
  tokenizer's chat template where it has one (`chat_template=None`; True requires one, False never uses it), else
  the bare prompt with the tokenizer's special tokens (LLaMA-2: BOS). The input text is first cut to the data
  module's `max_length` tokens, so the model reads the same text as a label-supervised model would;
- the answer's token ids: the formatter's response (the label's verbalization, or the entity lines) tokenized on
  its own, then the token that ends the assistant's turn: in the chat template, the special token its turns end
  with (Gemma `<end_of_turn>`, Phi-3 `<|end|>`; SmolLM2's and LLaMA-2-chat's is their eos), else the tokenizer's
  eos (`answer_end`). Instruction tuning trains on prompt + answer; the likelihood readings score every label's
  answer ids.
Batches are left-padded (generation continues every row at the same position): `prefix_ids (P,)` (the tokens all
prompts of the batch start with) and `input_ids`/`attention_mask (B, T)` (the rest of each prompt), `example_ids
(B,)`, and `labels (B,)` with `answer_ids`/`answer_mask (C, L)` (sequence tasks) or `word_labels (B, W)`,
`num_words (B,)` (words the prompt shows) and `words` (lists of strings) (token tasks); with `with_response`, also
`lm_input_ids`/`lm_attention_mask`/`response_mask (B, S)` of the whole prompt + answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from itertools import accumulate
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from core.class_paths import to_spec
from lightning_modules.prompting.answers import tags_to_entities
from lightning_modules.prompting.prompts import PromptFormatter

IGNORE = -100
TURN_PROBE = "OK"  # the assistant's content in the conversation rendered to find what ends its turn

log = logging.getLogger(__name__)


def end_of_answer(tokenizer: PreTrainedTokenizerBase) -> int:
    """The token that ends an answer: eos (a WordPiece tokenizer of the debug overlays has none: its [SEP])."""
    end = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    if end is None:
        raise ValueError("prompting needs a tokenizer with an eos (or sep) token: it ends every answer")
    return end


def turn_end(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The special token that ends an assistant turn in the tokenizer's chat template (Llama-3 `<|eot_id|>`, Gemma
    `<end_of_turn>`, Phi-3 `<|end|>`, SmolLM2 `<|im_end|>`, LLaMA-2-chat `</s>`), or None.

    A one-turn conversation (user, then an assistant answering `OK`) is rendered with the template; the token read
    is the first token after the assistant's content, whitespace skipped, if it is a special token (one of the
    tokenizer's special or added special tokens, unk excepted). A template that ends turns with plain text, or
    none, gives None.
    """
    if not getattr(tokenizer, "chat_template", None):
        return None
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": TURN_PROBE}]
    try:
        text = tokenizer.apply_chat_template(chat, tokenize=False)
    except Exception as error:  # a template may refuse this conversation (jinja's TemplateError, raise_exception)
        log.warning("the chat template did not render a user/assistant turn (%s): no end-of-turn stop token", error)
        return None
    if not isinstance(text, str) or TURN_PROBE not in text:
        return None
    after = text[text.rindex(TURN_PROBE) + len(TURN_PROBE) :]
    special = set(tokenizer.all_special_ids)
    special |= {i for i, token in getattr(tokenizer, "added_tokens_decoder", {}).items() if token.special}
    special.discard(tokenizer.unk_token_id)  # text the vocabulary lacks, not a turn's end
    for token in tokenizer(after, add_special_tokens=False)["input_ids"]:
        if token in special:
            return token
        if tokenizer.decode([token]).strip():
            return None  # text comes first: the turn does not end with a special token
    return None


def left_pad(rows: list[list[int]], value: int) -> torch.Tensor:
    """`(B, T)` rows padded on the left to the longest."""
    width = max(len(row) for row in rows)
    return torch.tensor([[value] * (width - len(row)) + list(row) for row in rows])


def shared_prefix_length(rows: list[list[int]]) -> int:
    """How many first tokens all rows have in common, leaving every row at least one token of its own."""
    first, shared = rows[0], min(len(row) for row in rows) - 1
    for row in rows[1:]:
        shared = next((i for i in range(shared) if row[i] != first[i]), shared)
    return max(shared, 0)


def right_pad(rows: list[list[int]], value: int) -> torch.Tensor:
    """`(B, T)` rows padded on the right to the longest."""
    width = max(len(row) for row in rows)
    return torch.tensor([list(row) + [value] * (width - len(row)) for row in rows])


class PromptEncoder:
    """Prompts and answers of a data module's examples for a causal LM (see the module docstring).

    Args:
        prompt: the prompt formatter.
        chat_template: wrap the prompt in the tokenizer's chat template: None = where it has one.
        with_response: also batch prompt + answer with a response mask (instruction tuning).
    """

    def __init__(self, prompt: PromptFormatter, chat_template: bool | None = None, with_response: bool = False) -> None:
        self.prompt, self.chat_template, self.with_response = prompt, chat_template, with_response
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self._answers: dict[tuple[str, ...], tuple[torch.Tensor, torch.Tensor]] = {}

    def bind(self, tokenizer: PreTrainedTokenizerBase) -> None:
        """Use the data module's tokenizer to decode answers (the model has none of its own)."""
        end_of_answer(tokenizer)
        self.tokenizer = tokenizer

    def _bound(self) -> PreTrainedTokenizerBase:
        if self.tokenizer is None:
            raise RuntimeError("PromptEncoder has no tokenizer: run through a data module or call encoder.bind()")
        return self.tokenizer

    def decode(self, ids: list[list[int]]) -> list[str]:
        """Generated token ids to text, special tokens dropped."""
        return self._bound().batch_decode(ids, skip_special_tokens=True)

    def stop_ids(self, generation_eos: Iterable[int] = ()) -> dict[str, list[int]]:
        """The token ids that end a generated answer, by where they come from: the tokenizer's `eos`, the
        `generation_config`'s eos ids (`generation_eos`: `decoding.generation_eos_ids` of the model, as `generate`
        stops at them) and the token ending an assistant turn in the tokenizer's `chat_template` (`turn_end`; also
        when the prompts are bare: a special token is never part of an answer). An id is listed once, under its
        first source."""
        tokenizer, seen = self._bound(), set()
        turn = turn_end(tokenizer)
        sources = {"eos": [end_of_answer(tokenizer)], "generation_config": list(generation_eos)}
        sources["chat_template"] = [] if turn is None else [turn]
        for name, ids in sources.items():
            sources[name] = [i for i in dict.fromkeys(ids) if i not in seen]
            seen.update(sources[name])
        return sources

    def cache_key(self) -> str:
        """The prompt formatter's settings and the chat-template choice."""
        return json.dumps({"prompt": to_spec(self.prompt), "chat_template": self.chat_template}, default=str)

    # ------------------------------------------------------------------------------------------ tokenizing
    def uses_chat_template(self, tokenizer: PreTrainedTokenizerBase) -> bool:
        """Whether prompts go into the tokenizer's chat template."""
        has = bool(getattr(tokenizer, "chat_template", None))
        if self.chat_template and not has:
            raise ValueError("model.chat_template is true but the tokenizer has no chat template")
        return has if self.chat_template is None else self.chat_template

    def prompt_ids(self, tokenizer: PreTrainedTokenizerBase, prompts: list[str]) -> list[list[int]]:
        """Token ids of prompts, as the user turn of the chat template (ending with the assistant's header)."""
        if not self.uses_chat_template(tokenizer):
            return tokenizer(prompts)["input_ids"]
        chats = [[{"role": "user", "content": prompt}] for prompt in prompts]
        texts = [tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False) for chat in chats]
        return tokenizer(texts, add_special_tokens=False)["input_ids"]  # the template holds the special tokens

    def answer_end(self, tokenizer: PreTrainedTokenizerBase) -> int:
        """The token that ends an answer: the chat template's end of turn where the prompts use a template that
        ends turns with a special token (`turn_end`), else the tokenizer's eos."""
        turn = turn_end(tokenizer) if self.uses_chat_template(tokenizer) else None
        return end_of_answer(tokenizer) if turn is None else turn

    @staticmethod
    def answer_ids(tokenizer: PreTrainedTokenizerBase, answers: list[str], end: int | None = None) -> list[list[int]]:
        """Token ids of answers: the text on its own, then `end` (None = the tokenizer's eos; see `answer_end`)."""
        end = end_of_answer(tokenizer) if end is None else end
        return [ids + [end] for ids in tokenizer(answers, add_special_tokens=False)["input_ids"]]

    @staticmethod
    def cut(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int) -> list[str]:
        """Each text cut after its first `max_length` tokens (at the end of that token's characters)."""
        encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        return [
            text if len(offsets) <= max_length else text[: offsets[max_length - 1][1]]
            for text, offsets in zip(texts, encoded)
        ]

    # -------------------------------------------------------------------------------- ExampleEncoder
    def encode(self, batch: dict[str, list], indices: list[int], split: str, data: Any) -> dict[str, list]:
        """Prompt ids, answer ids and targets of a batch of raw examples."""
        tokenizer, names = data.tokenizer, data.label_names
        out = (
            self._encode_texts(batch, indices, split, data)
            if data.task == "sequence"
            else self._encode_words(batch, indices, data)
        )
        texts, answers = out.pop("texts"), out.pop("answers")
        out["input_ids"] = self.prompt_ids(tokenizer, [self.prompt.prompt(text, names) for text in texts])
        out["response_ids"] = self.answer_ids(tokenizer, answers, self.answer_end(tokenizer))
        extra = out["response_ids"] if self.with_response else [[]] * len(indices)
        out["length"] = [len(p) + len(r) for p, r in zip(out["input_ids"], extra)]
        out["example_ids"] = indices
        return out

    def _encode_texts(self, batch: dict[str, list], indices: list[int], split: str, data: Any) -> dict[str, list]:
        for text, index in zip(batch["text"], indices):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{data.name}/{split} example {index}: empty text")
        labels = batch.get("label") or [IGNORE] * len(indices)
        for label, index in zip(labels, indices):
            if label != IGNORE and not 0 <= label < data.num_labels:
                raise ValueError(f"{data.name}/{split} example {index}: label {label} outside 0..{data.num_labels - 1}")
        texts = self.cut(data.tokenizer, batch["text"], data.max_length)
        answers = [self.prompt.response(label, data.label_names) if label != IGNORE else "" for label in labels]
        truncated = [len(cut) < len(text) for cut, text in zip(texts, batch["text"])]
        return {"texts": texts, "answers": answers, "labels": labels, "truncated": truncated}

    def _encode_words(self, batch: dict[str, list], indices: list[int], data: Any) -> dict[str, list]:
        sentences = [" ".join(words) for words in batch["tokens"]]
        texts = self.cut(data.tokenizer, sentences, data.max_length)
        tags_batch = batch.get("tags") or [None] * len(indices)
        out: dict[str, list] = {k: [] for k in ("answers", "words", "word_labels", "num_words", "truncated_words")}
        for words, tags, text in zip(batch["tokens"], tags_batch, texts):
            starts = accumulate((len(word) + 1 for word in words[:-1]), initial=0)  # character offsets
            visible = sum(start < len(text) for start in starts)  # words whose first character the prompt shows
            names = [data.label_names[t] for t in (tags or [])[:visible]]
            out["answers"].append(self.prompt.response(tags_to_entities(words[:visible], names), data.label_names))
            out["words"].append(list(words))
            out["word_labels"].append(list(tags) if tags is not None else [IGNORE] * len(words))
            out["num_words"].append(visible)
            out["truncated_words"].append(len(words) - visible)
        out["empty_words"] = [0] * len(indices)
        return {"texts": texts, **out}

    def collate(self, features: list[dict[str, Any]], data: Any) -> dict[str, Any]:
        """Left-padded prompts and the targets of one batch (see the module docstring)."""
        self.bind(data.tokenizer)
        prompts = [f["input_ids"] for f in features]
        shared = shared_prefix_length(prompts)  # system prompt + instruction: computed once for the batch
        batch: dict[str, Any] = {
            "prefix_ids": torch.tensor(prompts[0][:shared], dtype=torch.long),  # (P,)
            "input_ids": left_pad([p[shared:] for p in prompts], data.pad_token_id),  # (B, T)
            "attention_mask": left_pad([[1] * (len(p) - shared) for p in prompts], 0),
            "example_ids": torch.tensor([f["example_ids"] for f in features]),
        }
        if data.task == "sequence":
            batch["labels"] = torch.tensor([f["labels"] for f in features])
            batch["answer_ids"], batch["answer_mask"] = self.label_answers(data.tokenizer, data.label_names)
        else:
            batch["word_labels"] = right_pad([f["word_labels"] for f in features], IGNORE)  # (B, W)
            batch["num_words"] = torch.tensor([f["num_words"] for f in features])
            batch["words"] = [f["words"] for f in features]
        if self.with_response:
            full = [f["input_ids"] + f["response_ids"] for f in features]
            batch["lm_input_ids"] = left_pad(full, data.pad_token_id)  # (B, S)
            batch["lm_attention_mask"] = left_pad([[1] * len(s) for s in full], 0)
            batch["response_mask"] = left_pad(
                [[0] * len(f["input_ids"]) + [1] * len(f["response_ids"]) for f in features], 0
            )
        return batch

    def label_answers(self, tokenizer: PreTrainedTokenizerBase, label_names: list[str]) -> tuple[torch.Tensor, ...]:
        """`(C, L)` answer ids of every label (verbalization + `answer_end`), right-padded, and their mask."""
        key = tuple(label_names)
        if key not in self._answers:
            answers = [self.prompt.response(i, label_names) for i in range(len(key))]
            ids = self.answer_ids(tokenizer, answers, self.answer_end(tokenizer))
            self._answers[key] = right_pad(ids, 0), right_pad([[1] * len(row) for row in ids], 0)
        return self._answers[key]
