"""What masked next-token prediction (MNTP, LLM2Vec) trains on: plain text, masked tokens, shifted targets.

- **Text**: a data module's own examples with their labels unused: `text` for sequence tasks, the words joined by
  spaces for token tasks (CoNLL). `MaskedTextEncoder` is the `core.encoding.ExampleEncoder` that
  `MaskedNextTokenModule.example_encoder()` hands the data module, which keeps its splits, subsets and batches.
- **Masking**, per batch in `collate` (dynamic: a text gets new masks every epoch, as in BERT and LLM2Vec): each
  maskable token is chosen with `probability`; a chosen token becomes the mask token, or with `random_fraction` a
  random token, or with `keep_fraction` stays itself (BERT's 80/10/10 is `0.1, 0.1`). Maskable = a real, non-special
  token whose left neighbour is a real token too, since that neighbour's state is what predicts it: the first
  token of a text is never masked. Every text with a maskable token gets at least one mask. Validation and test
  texts get the same masks at every evaluation (drawn from their example id), so their loss is comparable; training
  masks come from torch's generator (seeded by `seed_everything`; a resumed run draws other masks than an
  uninterrupted one would, unlike label supervision's exact resumes).
- **Targets**: `labels (B, T)` holds the original id at masked positions and -100 elsewhere; the logit at position
  `i - 1` predicts the token at `i` (`mntp_loss`), as a decoder's language-model head was pretrained to.
- **Mask token** (`resolve_mask_token`): the tokenizer's own, else the first added special token that is not its
  bos/eos/pad/unk token (SmolLM2: `<repo_name>`, id 3: a code-metadata marker with a pretrained embedding that
  natural text never produces), else the unk token when it serves nothing else (LLaMA-2: `<unk>`; LLM2Vec used
  `_` there, `model.mask_token: _` does the same), else an error asking for `model.mask_token`.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
EVAL_MASK_SEED = 1_000_003  # base of the per-example generators of validation/test masks


# ------------------------------------------------------------------------------------------------ masking
def maskable_positions(attention_mask: torch.Tensor, special_tokens_mask: torch.Tensor) -> torch.Tensor:
    """`(B, T)` bool: real, non-special tokens whose left neighbour is a real token (its state predicts them)."""
    real = attention_mask.bool()
    left_real = F.pad(real[:, :-1], (1, 0), value=False)  # (B, T): position i-1 is a real token
    return real & left_real & ~special_tokens_mask.bool()


def choose_masked(maskable: torch.Tensor, probability: float, draws: torch.Tensor) -> torch.Tensor:
    """`(B, T)` bool: maskable positions whose draw is below `probability`; a row with maskable positions but no
    draw below it gets its lowest-drawn maskable position (every text contributes a target).

    Args:
        maskable: `(B, T)` bool, see `maskable_positions`.
        probability: chance of each maskable token to be masked.
        draws: `(B, T)` uniform draws in [0, 1).
    """
    chosen = maskable & (draws < probability)
    empty = maskable.any(-1) & ~chosen.any(-1)  # (B,)
    lowest = draws.masked_fill(~maskable, 2.0).argmin(-1)  # (B,)
    rows = empty.nonzero().squeeze(-1)
    chosen[rows, lowest[rows]] = True
    return chosen


def mask_tokens(
    input_ids: torch.Tensor,
    chosen: torch.Tensor,
    mask_token_id: int,
    draws: torch.Tensor,
    random_fraction: float = 0.0,
    keep_fraction: float = 0.0,
    vocab_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace the chosen tokens; returns `(masked input_ids (B, T), labels (B, T))`, labels -100 where not chosen.

    Args:
        input_ids: `(B, T)` token ids.
        chosen: `(B, T)` bool, the positions to predict (see `choose_masked`).
        mask_token_id: id that replaces a chosen token.
        draws: `(2, B, T)` uniform draws in [0, 1): which replacement, and which random token.
        random_fraction: part of the chosen tokens replaced by a random token instead (BERT: 0.1).
        keep_fraction: part of the chosen tokens left unchanged (BERT: 0.1).
        vocab_size: random tokens are drawn from `[0, vocab_size)` (needed when `random_fraction > 0`).
    """
    labels = input_ids.masked_fill(~chosen, IGNORE_INDEX)
    kind, which = draws[0], draws[1]
    to_random = chosen & (kind < random_fraction)
    to_mask = chosen & (kind >= random_fraction + keep_fraction)
    masked = input_ids.masked_fill(to_mask, mask_token_id)
    if random_fraction > 0:
        if not vocab_size:
            raise ValueError("mask_tokens: random_fraction > 0 needs vocab_size")
        random_ids = (which * vocab_size).long().clamp_max(vocab_size - 1)  # (B, T)
        masked = torch.where(to_random, random_ids, masked)
    return masked, labels


def mask_draws(shape: tuple[int, int], example_ids: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
    """`(3, B, T)` uniform draws (choice, replacement kind, random token): rows with `fixed` set drawn from their
    example id (the same masks at every evaluation, and evaluation leaves torch's generator alone), the others from
    torch's global generator (seeded by `seed_everything`; new masks every step)."""
    batch, width = shape
    draws = torch.empty(3, batch, width)
    free = (~fixed).nonzero().squeeze(-1)
    if len(free):
        draws[:, free] = torch.rand(3, len(free), width)
    for row in fixed.nonzero().squeeze(-1).tolist():
        generator = torch.Generator().manual_seed(EVAL_MASK_SEED + int(example_ids[row]))
        draws[:, row] = torch.rand(3, width, generator=generator)
    return draws


# ------------------------------------------------------------------------------------------------- the loss
def mntp_loss(
    hidden: torch.Tensor, labels: torch.Tensor, lm_head: nn.Module
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cross-entropy of the masked tokens, each predicted from the state one position to its LEFT.

    Only the `N` predicting positions go through the language-model head (not the whole `(B, T, V)`).

    Args:
        hidden: `(B, T, H)` final hidden states of the masked input.
        labels: `(B, T)` original ids at masked positions, -100 elsewhere.
        lm_head: the decoder's output layer `H -> V`.

    Returns:
        `(mean loss, logits (N, V), targets (N,))`.
    """
    targets = labels[:, 1:]  # (B, T-1): the token at i
    where = targets != IGNORE_INDEX
    logits = lm_head(hidden[:, :-1][where])  # (N, H) -> (N, V): the state at i-1
    targets = targets[where]  # (N,)
    return F.cross_entropy(logits.float(), targets), logits, targets


# -------------------------------------------------------------------------------------------- mask token
def _known_id(tokenizer: Any, token: str) -> int | None:
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or (token_id == tokenizer.unk_token_id and token != tokenizer.unk_token):
        return None
    return int(token_id)


def resolve_mask_token(tokenizer: Any, mask_token: str | int | None) -> tuple[int, str]:
    """The id of the MNTP mask token and how it was chosen (rule: the module docstring).

    Args:
        tokenizer: the data module's tokenizer.
        mask_token: a token (e.g. `_`), an id, or None for the rule.

    Raises:
        ValueError: naming `model.mask_token` when the given token is not one token of the vocabulary, or when
            the rule finds none.
    """
    size = len(tokenizer)
    if isinstance(mask_token, int):
        if not 0 <= mask_token < size:
            raise ValueError(f"model.mask_token={mask_token} is outside the tokenizer's {size} ids")
        return mask_token, "model.mask_token"
    if isinstance(mask_token, str):
        token_id = _known_id(tokenizer, mask_token)
        if token_id is None:
            ids = tokenizer(mask_token, add_special_tokens=False)["input_ids"]
            if len(ids) != 1:
                raise ValueError(f"model.mask_token={mask_token!r} is not one token of the vocabulary ({ids})")
            token_id = ids[0]
        return token_id, "model.mask_token"
    if tokenizer.mask_token_id is not None:
        return int(tokenizer.mask_token_id), "the tokenizer's mask token"
    taken = {tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}
    added = getattr(tokenizer, "added_tokens_decoder", {})
    for token_id in sorted(added):
        if added[token_id].special and token_id not in taken | {tokenizer.unk_token_id}:
            return int(token_id), "no mask token: the first special token that is not bos/eos/pad/unk"
    if tokenizer.unk_token_id is not None and tokenizer.unk_token_id not in taken:
        return int(tokenizer.unk_token_id), "no mask token nor a free special token: the unk token"
    raise ValueError("the tokenizer has no mask token and no free special token: set model.mask_token (e.g. _)")


# ----------------------------------------------------------------------------------------------- encoder
class MaskedTextEncoder:
    """`ExampleEncoder` for MNTP: tokenizes a data module's texts (labels unused) and masks them per batch.

    Args:
        mask_token: see `resolve_mask_token`.
        probability: chance of each maskable token to be masked (LLM2Vec: 0.2 for LLaMA-family models).
        random_fraction: part of the masked tokens replaced by a random token instead (BERT: 0.1).
        keep_fraction: part of the masked tokens left unchanged (BERT: 0.1).
    """

    def __init__(
        self,
        mask_token: str | int | None = None,
        probability: float = 0.2,
        random_fraction: float = 0.0,
        keep_fraction: float = 0.0,
    ) -> None:
        if not 0 < probability <= 1:
            raise ValueError(f"model.mask_probability must lie in (0, 1], got {probability}")
        if random_fraction < 0 or keep_fraction < 0 or random_fraction + keep_fraction > 1:
            raise ValueError(
                f"model.random_token_fraction ({random_fraction}) and model.keep_token_fraction ({keep_fraction}) "
                "must be >= 0 and sum to at most 1"
            )
        self.mask_token, self.probability = mask_token, probability
        self.random_fraction, self.keep_fraction = random_fraction, keep_fraction
        self.mask_token_id: int | None = None  # resolved from the data module's tokenizer on first use

    def cache_key(self) -> str:
        """The encoding is the texts' tokens only; masks are drawn per batch."""
        return "mntp-text-v1"

    def resolve(self, tokenizer: Any) -> int:
        """The mask token id for `tokenizer` (resolved once, logged)."""
        if self.mask_token_id is None:
            self.mask_token_id, why = resolve_mask_token(tokenizer, self.mask_token)
            token = tokenizer.convert_ids_to_tokens(self.mask_token_id)
            log.info("MNTP mask token: %r (id %d; %s)", token, self.mask_token_id, why)
        return self.mask_token_id

    def encode(self, batch: dict[str, list], indices: list[int], split: str, data: Any) -> dict[str, list]:
        """Texts (or words joined by spaces) to ids cut to `data.max_length`, with their special-token masks."""
        texts = batch["text"] if data.task == "sequence" else [" ".join(words) for words in batch["tokens"]]
        enc = data.tokenizer(texts, truncation=True, max_length=data.max_length, return_special_tokens_mask=True)
        mask_id = self.resolve(data.tokenizer)
        clashes = sum(ids.count(mask_id) for ids in enc["input_ids"])
        if clashes:
            log.warning(
                "%s/%s: the MNTP mask token (id %d) occurs %d times in the text itself (set model.mask_token "
                "to an unused token)",
                data.name,
                split,
                mask_id,
                clashes,
            )
        return {
            "input_ids": enc["input_ids"],
            "special_tokens_mask": enc["special_tokens_mask"],
            "fixed_masks": [split != "train"] * len(indices),
            "length": [len(ids) for ids in enc["input_ids"]],
            "example_ids": indices,
        }

    def collate(self, features: list[dict[str, Any]], data: Any) -> dict[str, torch.Tensor]:
        """Pad and mask a batch: `input_ids` (masked), `attention_mask`, `labels` (B, T) and `example_ids` (B,)."""
        left = data.tokenizer.padding_side == "left"
        ids = _pad([f["input_ids"] for f in features], data.pad_token_id, left)  # (B, T)
        attention_mask = _pad([[1] * len(f["input_ids"]) for f in features], 0, left)
        special = _pad([f["special_tokens_mask"] for f in features], 1, left)
        example_ids = torch.tensor([f["example_ids"] for f in features])
        fixed = torch.tensor([bool(f["fixed_masks"]) for f in features])
        draws = mask_draws(tuple(ids.shape), example_ids, fixed)  # (3, B, T)
        chosen = choose_masked(maskable_positions(attention_mask, special), self.probability, draws[0])
        masked, labels = mask_tokens(
            ids,
            chosen,
            self.resolve(data.tokenizer),
            draws[1:],
            self.random_fraction,
            self.keep_fraction,
            len(data.tokenizer),
        )
        return {"input_ids": masked, "attention_mask": attention_mask, "labels": labels, "example_ids": example_ids}


def _pad(rows: list[list[int]], value: int, left: bool) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([[value] * (width - len(r)) + r if left else r + [value] * (width - len(r)) for r in rows])
