"""The contract between a model that wants its own inputs and the data module that owns the examples.

Label supervision tokenizes the text (or the words, aligned to their tags) and batches ids and labels: the data
module does that by itself. A model that needs other inputs from the same examples (a prompt and an answer for
instruction tuning and zero-shot prompting, masked text for MNTP) provides an `ExampleEncoder` through its method
`example_encoder()`; the data module asks the model attached to its trainer for one in `setup` and then tokenizes
(cached, `datasets.map`) and batches with it. The examples, label names, splits, subsets, seeds, batch sizes and
length-grouped samplers stay the data module's.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class ExampleEncoder(Protocol):
    """Tokenize a data module's raw examples for a model, and batch them.

    `data` is the data module: `data.tokenizer`, `data.label_names`, `data.task` (`sequence`: examples have `text`
    and `label`; `token`: `tokens` and `tags`), `data.max_length`, `data.name`.
    """

    def cache_key(self) -> str:
        """What the encoding depends on besides the data and tokenizer (e.g. the prompt template): a changed key
        re-tokenizes instead of reusing a cached encoding."""
        ...

    def encode(self, batch: dict[str, list], indices: list[int], split: str, data: Any) -> dict[str, list]:
        """A batch of raw examples (columns as lists) to features; must include `input_ids`, `length` (tokens, for
        length-grouped batches) and `example_ids` (= `indices`)."""
        ...

    def collate(self, features: list[dict[str, Any]], data: Any) -> dict[str, torch.Tensor]:
        """Features of one batch to tensors; must include `example_ids (B,)`."""
        ...
