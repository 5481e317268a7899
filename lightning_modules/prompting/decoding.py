"""A causal LM on a batch of prompts: one prefill, then the readings of the answer from the prompt's KV cache, and
the response-only loss of instruction tuning.

- `prefill` runs the left-padded prompts once and keeps their KV cache; the tokens that every prompt of the batch
  starts with (the chat template's system prompt and the instruction: most of a short example's prompt) run once
  for the batch and their keys/values are shared by the rows (positions as without sharing: the same numbers);
- `score_answers` scores each candidate answer (a label's verbalization + end of turn) as the sum of its tokens'
  log-probabilities after the prompt, continuing from the cache and rewinding it after each candidate;
  `mean_per_token` turns those sums into the mean per answer token (the length-normalised reading: no second pass);
- `greedy_generate` then continues from the same cache, one token per step for the rows still generating (a row
  that has produced a stop token leaves the batch), until every row has produced a stop token or
  `max_new_tokens`. The stop tokens: the eos ids of the model's generation config (`generation_eos_ids`), the
  tokenizer's eos and the chat template's end of turn (`prompt_encoder.PromptEncoder.stop_ids`).
Positions count real tokens only (left padding does not shift them), as in `LabelSupervisedModule`. The LM head is
applied only where logits are needed (the last prompt position, answer tokens): a 49k-token vocabulary times every
prompt position would cost about a fifth of the forward pass.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from peft import PeftModel
from torch import nn
from transformers import DynamicCache


def causal_lm_parts(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """`(body, head)` of a transformers causal LM or a peft wrapper of one: the decoder stack returning
    `last_hidden_state` (LoRA layers, where present, live inside it) and the LM head."""
    base = model.get_base_model() if isinstance(model, PeftModel) else model
    return base.get_decoder(), base.get_output_embeddings()


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids `(B, T)` counted over the real tokens (0 on left padding)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)


def _cache_kwarg(body: nn.Module) -> str:
    """The KV cache argument's name: `cache` from transformers 5.24, `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(body.forward).parameters else "past_key_values"


@dataclass
class Prefix:
    """Prompts run once: their KV `cache`, `attention_mask (B, T)` (shared prefix included), `next_position (B,)`
    (the position id of the first answer token), `last_logits (B, V)` (its distribution) and `length` (T, the cache
    length to rewind to)."""

    cache: DynamicCache
    attention_mask: torch.Tensor
    next_position: torch.Tensor
    last_logits: torch.Tensor
    length: int


def prefill(
    body: nn.Module,
    head: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    prefix_ids: torch.Tensor | None = None,
) -> Prefix:
    """Run a batch of prompts once and keep their cache.

    Args:
        body: the decoder stack (`causal_lm_parts`).
        head: the LM head.
        input_ids: `(B, T)` the prompts (after `prefix_ids`), left-padded.
        attention_mask: `(B, T)`, 1 = real token.
        prefix_ids: `(P,)` tokens every prompt of the batch starts with (system prompt, instruction): run once
            and shared by the rows; None = none.
    """
    batch, shared = input_ids.shape[0], 0 if prefix_ids is None else len(prefix_ids)
    cache = DynamicCache(config=body.config)
    kwargs = {_cache_kwarg(body): cache, "use_cache": True}
    if shared:
        body(input_ids=prefix_ids[None], position_ids=torch.arange(shared, device=input_ids.device)[None], **kwargs)
        cache.batch_repeat_interleave(batch)  # (1, P) -> (B, P) keys and values
        attention_mask = torch.cat([attention_mask.new_ones(batch, shared), attention_mask], dim=1)  # (B, P + T)
    position_ids = positions(attention_mask)[:, shared:]  # (B, T): the prefix's pads sit after it, masked
    hidden = body(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **kwargs)
    last_logits = head(hidden.last_hidden_state[:, -1]).float()  # (B, V): left padding ends every prompt at T - 1
    next_position = attention_mask.long().sum(-1)  # (B,)
    return Prefix(cache, attention_mask, next_position, last_logits, attention_mask.shape[1])


def extend(body: nn.Module, prefix: Prefix, tokens: torch.Tensor, done: int = 0) -> torch.Tensor:
    """Hidden states `(B, L, H)` of `tokens (B, L)` placed after the prompt and `done` tokens already appended to
    the cache (whose length grows by L)."""
    batch, length = tokens.shape
    ones = prefix.attention_mask.new_ones(batch, done + length)
    attention_mask = torch.cat([prefix.attention_mask, ones], dim=1)  # (B, T + done + L)
    steps = torch.arange(done, done + length, device=tokens.device)  # (L,)
    position_ids = prefix.next_position[:, None] + steps[None]  # (B, L)
    out = body(
        input_ids=tokens,
        attention_mask=attention_mask,
        position_ids=position_ids,
        use_cache=True,
        **{_cache_kwarg(body): prefix.cache},
    )
    return out.last_hidden_state


def rewind(cache: DynamicCache, length: int) -> None:
    """Cut the cache back to its first `length` positions (a negative `crop` removes tokens in every 5.x)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


def score_answers(
    body: nn.Module, head: nn.Module, prefix: Prefix, answers: torch.Tensor, answer_mask: torch.Tensor
) -> torch.Tensor:
    """Log-likelihood `(B, C)` of each of C candidate answers after each prompt: the sum over the answer's tokens.

    Args:
        body: the decoder stack (`causal_lm_parts`).
        head: the LM head.
        prefix: the prompts' `prefill`; its cache is left as it was.
        answers: `(C, L)` token ids of the candidates, right-padded.
        answer_mask: `(C, L)`, 1 = a real answer token.
    """
    batch = prefix.last_logits.shape[0]
    first_logprobs = prefix.last_logits.log_softmax(-1)  # (B, V): an answer's first token
    scores = []
    for ids, mask in zip(answers, answer_mask):
        tokens = ids[mask.bool()]  # (L_c,)
        total = first_logprobs[:, tokens[0]]  # (B,)
        if len(tokens) > 1:
            hidden = extend(body, prefix, tokens[None, :-1].expand(batch, -1))  # (B, L_c - 1, H)
            logprobs = head(hidden).float().log_softmax(-1)  # (B, L_c - 1, V)
            total = total + logprobs.gather(-1, tokens[None, 1:, None].expand(batch, -1, 1)).sum((1, 2))
            rewind(prefix.cache, prefix.length)
        scores.append(total)
    return torch.stack(scores, dim=1)  # (B, C)


def mean_per_token(scores: torch.Tensor, answer_mask: torch.Tensor) -> torch.Tensor:
    """Length-normalised scores `(B, C)`: each candidate's summed log-likelihood (`score_answers`) over its number
    of answer tokens (eos included), so a long label is not penalised for having more tokens to predict.

    Args:
        scores: `(B, C)` summed log-likelihoods.
        answer_mask: `(C, L)`, 1 = a real answer token.
    """
    return scores / answer_mask.sum(-1).to(scores.dtype)  # (B, C) / (C,)


def generation_eos_ids(model: nn.Module) -> list[int]:
    """The eos ids of a causal LM's generation config (an int, a list or None; from `generation_config.json` where
    the model was loaded from a folder that has one, else from its config), where `generate` stops; [] = none."""
    base = model.get_base_model() if isinstance(model, PeftModel) else model
    ids = getattr(getattr(base, "generation_config", None), "eos_token_id", None)
    if ids is None:
        return []
    return [int(ids)] if isinstance(ids, int) else [int(i) for i in ids]


def greedy_generate(
    body: nn.Module, head: nn.Module, prefix: Prefix, max_new_tokens: int, stop_ids: list[int]
) -> list[list[int]]:
    """Greedy continuations of the prompts, each cut before its first stop token.

    A row that has produced a stop token leaves the batch: its rows of the cache, mask and positions are dropped,
    so the steps after it cost only the rows still generating (one long answer no longer keeps the whole batch
    running; `generate` computes every row to the end). Rows do not interact, so each answer is the one the row
    gets on its own. The prefix's cache is used up: it grows, and holds only the rows still generating at the end.

    Args:
        body: the decoder stack.
        head: the LM head.
        prefix: the prompts' `prefill`.
        max_new_tokens: the most tokens generated per prompt.
        stop_ids: token ids that end an answer (eos / end of turn).
    """
    stops = torch.tensor(stop_ids, dtype=torch.long, device=prefix.last_logits.device)
    token = prefix.last_logits.argmax(-1)  # (B,): each row's first answer token
    generated = torch.full((len(token), max_new_tokens), -1, device=token.device)  # (B, N), -1 = not generated
    rows = torch.arange(len(token), device=token.device)  # (R,): the rows still generating, R <= B
    mask, position = prefix.attention_mask, prefix.next_position  # (R, T + step), (R,)
    kwargs = {_cache_kwarg(body): prefix.cache, "use_cache": True}
    for step in range(max_new_tokens):
        generated[rows, step] = token
        going = ~torch.isin(token, stops)  # (R,)
        if step == max_new_tokens - 1 or not bool(going.any()):
            break
        if not bool(going.all()):  # some rows stopped: drop them from the batch
            keep = going.nonzero().squeeze(1)  # (R',)
            prefix.cache.batch_select_indices(keep)
            rows, token, mask, position = rows[keep], token[keep], mask[keep], position[keep]
        mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)  # (R, T + step + 1)
        hidden = body(input_ids=token[:, None], attention_mask=mask, position_ids=(position + step)[:, None], **kwargs)
        token = head(hidden.last_hidden_state[:, -1]).argmax(-1)  # (R,)
    return [_until_stop([t for t in row if t >= 0], set(stop_ids)) for row in generated.tolist()]


def _until_stop(row: list[int], stops: set[int]) -> list[int]:
    for index, token in enumerate(row):
        if token in stops:
            return row[:index]
    return row


def response_cross_entropy(
    hidden: torch.Tensor, head: nn.Module, input_ids: torch.Tensor, response_mask: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy of the response tokens, each predicted from the position before it; prompt and padding
    tokens are no targets.

    Args:
        hidden: `(B, S, H)` final hidden states of `input_ids`.
        head: the LM head.
        input_ids: `(B, S)` prompt + response (+ padding) token ids.
        response_mask: `(B, S)`, 1 on the response tokens (answer and its end of turn), 0 on prompt and padding.
    """
    targets = response_mask[:, 1:].bool()  # (B, S - 1): position t predicts token t + 1
    logits = head(hidden[:, :-1][targets]).float()  # (N, V), N = response tokens in the batch
    return F.cross_entropy(logits, input_ids[:, 1:][targets])


def forward_hidden(body: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: Any) -> Any:
    """The decoder stack on a padded batch, positions over real tokens; returns `last_hidden_state (B, S, H)`."""
    return body(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=positions(attention_mask), **kwargs
    ).last_hidden_state
