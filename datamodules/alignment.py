"""Word-level labels <-> subword tokens, through the tokenizer's character offsets.

Words are joined with single spaces and the whole text is tokenized once, exactly as the model sees running text
(SentencePiece, WordPiece and byte-level BPE alike: no `is_split_into_words`, which drops the prefix space of
byte-level BPE). Each token belongs to the word holding its first non-space character; the first token of a word
carries the word's label, the others -100. Predictions come back to words through `word_starts` (the model's
`word_predictions`: a word takes its first token's prediction).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

IGNORE_INDEX = -100


@dataclass
class EncodedWords:
    """One sentence, tokenized and aligned.

    Attributes:
        input_ids: token ids (special tokens included), at most `max_length`.
        word_starts: per word, the index of its first token, or -1 when it has none (cut by `max_length`, or a
            word with no visible characters).
        labels: per token, the tag id of the word it starts, else -100 (empty without tags).
        truncated_words: words lost to `max_length`.
        empty_words: words that produced no token for another reason.
    """

    input_ids: list[int]
    word_starts: list[int]
    labels: list[int] = field(default_factory=list)
    truncated_words: int = 0
    empty_words: int = 0


def word_char_starts(words: list[str]) -> tuple[str, list[int]]:
    """The words joined by single spaces, and each word's first character index in that text."""
    starts, position = [], 0
    for word in words:
        starts.append(position)
        position += len(word) + 1
    return " ".join(words), starts


def align_tokens(words: list[str], offsets: list[tuple[int, int]], text: str, char_starts: list[int]) -> list[int]:
    """`word_starts` from the tokens' `(start, end)` character offsets in `text`."""
    word_starts = [-1] * len(words)
    for token_index, (start, end) in enumerate(offsets):
        if end <= start:
            continue  # special token
        while start < end and text[start].isspace():
            start += 1
        if start == end:
            continue  # a whitespace-only token (e.g. a lone SentencePiece '▁')
        word = bisect.bisect_right(char_starts, start) - 1
        if word >= 0 and start < char_starts[word] + len(words[word]) and word_starts[word] == -1:
            word_starts[word] = token_index
    return word_starts


def encode_words(
    words: list[str],
    input_ids: list[int],
    offsets: list[tuple[int, int]],
    tags: list[int] | None = None,
    truncated: bool = False,
) -> EncodedWords:
    """Align one tokenized sentence (`input_ids` and `offsets` of `" ".join(words)`) to its words and tags."""
    text, char_starts = word_char_starts(words)
    word_starts = align_tokens(words, offsets, text, char_starts)
    last_aligned = max((w for w, s in enumerate(word_starts) if s >= 0), default=-1)
    lost = [w for w, s in enumerate(word_starts) if s < 0]
    truncated_words = sum(1 for w in lost if truncated and w > last_aligned)
    encoded = EncodedWords(input_ids, word_starts, truncated_words=truncated_words)
    encoded.empty_words = len(lost) - truncated_words
    if tags is not None:
        if len(tags) != len(words):
            raise ValueError(f"{len(words)} words but {len(tags)} tags")
        labels = [IGNORE_INDEX] * len(input_ids)
        for word, start in enumerate(word_starts):
            if start >= 0:
                labels[start] = tags[word]
        encoded.labels = labels
    return encoded
