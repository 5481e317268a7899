"""Hub splits -> examples: a hub dataset's split as our columns, `text`/`label` or `tokens`/`tags` (label ids).

The hub path of every data module runs these functions (`datasets.map`, cached by `datasets`; the cache key covers
this file, the label mapping and the readers, so edited conversion code never reuses a stale cache). Errors name
the split, row and column (`hub_name/split row N`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets
from datasets.fingerprint import Hasher

from datamodules.cache import code_digest
from datamodules.labels import TEXT_FEATURES, TOKEN_FEATURES, hub_names, join_text, label_id, map_label, tag_ids
from datamodules.readers import DataFormatError, iob1_to_iob2


def _check_columns(dataset: datasets.Dataset, columns: list[str], where: str) -> None:
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        raise DataFormatError(f"{where}: missing column(s) {missing}; the dataset has {dataset.column_names}")


def _text_batch(
    batch: dict[str, list],
    indices: list[int],
    text_columns: list[str],
    label_column: str,
    label_names: list[str],
    label_map: dict | None,
    where: str,
) -> dict[str, list]:
    texts, labels = [], []
    for row, index in enumerate(indices):
        at = f"{where} row {index}"
        texts.append(join_text({c: batch[c][row] for c in text_columns}, text_columns, at))
        labels.append(map_label(batch[label_column][row], label_names, label_map, at, label_column))
    return {"text": texts, "label": labels}


def text_examples_from_hub(
    dataset: datasets.Dataset,
    *,
    text_columns: list[str],
    label_column: str,
    label_names: list[str],
    where: str,
    hub_label_names: list[str] | None = None,
    label_map: dict | None = None,
) -> datasets.Dataset:
    """A hub split as columns `text` (the text columns joined by newlines, stripped) and `label` (id).

    Args:
        dataset: the hub split.
        text_columns: columns holding the text (e.g. `["review_title", "review_body"]`).
        label_column: column holding the label.
        label_names: our label names by id.
        where: the split's name in error messages (`hub_name/split`).
        hub_label_names: names of the column's integer values; None = its `ClassLabel` names, if any.
        label_map: raw value -> our id; overrides the names (e.g. Amazon stars 1..5 -> 0..4).
    """
    _check_columns(dataset, [*text_columns, label_column], where)
    names = hub_names(dataset.features[label_column], hub_label_names)
    if label_map is None and names is not None:
        label_map = {i: label_id(name, label_names, f"{where} ({label_column} names)") for i, name in enumerate(names)}
    kwargs = {
        "text_columns": list(text_columns),
        "label_column": label_column,
        "label_names": list(label_names),
        "label_map": label_map,
        "where": where,
    }
    return _convert(dataset, _text_batch, TEXT_FEATURES, kwargs)


def _token_batch(
    batch: dict[str, list],
    indices: list[int],
    tokens_column: str,
    tags_column: str,
    label_names: list[str],
    names: list[str] | None,
    scheme: str,
    where: str,
) -> dict[str, list]:
    out: dict[str, list] = {"tokens": [], "tags": []}
    for row, index in enumerate(indices):
        tokens, raw = batch[tokens_column][row], batch[tags_column][row]
        at = f"{where} row {index}"
        if not tokens or len(tokens) != len(raw):
            raise DataFormatError(f"{at}: {len(tokens or [])} {tokens_column} but {len(raw or [])} {tags_column}")
        tags = []
        for position, value in enumerate(raw):
            if isinstance(value, int) and names is not None and 0 <= value < len(names):
                value = names[value]
            elif not isinstance(value, str):
                raise DataFormatError(f"{at}: {tags_column}[{position}] = {value!r} has no name (names: {names})")
            tags.append(value)
        tags = iob1_to_iob2(tags) if scheme == "iob1" else tags
        out["tokens"].append(list(tokens))
        out["tags"].append(tag_ids(tags, label_names, lambda p, at=at: f"{at}, {tags_column}[{p}]"))
    return out


def token_examples_from_hub(
    dataset: datasets.Dataset,
    *,
    tokens_column: str,
    tags_column: str,
    label_names: list[str],
    where: str,
    hub_label_names: list[str] | None = None,
    scheme: str = "iob2",
) -> datasets.Dataset:
    """A `conllx`-style hub split as columns `tokens` (words) and `tags` (ids into `label_names`).

    Integer tags are named by `hub_label_names`, else by the column's `ClassLabel` feature; string tags are names
    already. Names are then mapped to our ids, so the hub's id order does not have to be ours.

    Args:
        dataset: the hub split.
        tokens_column: column holding the words.
        tags_column: column holding the tags.
        label_names: our tag names by id (IOB2).
        where: the split's name in error messages.
        hub_label_names: names of the hub's integer tags; None = the `ClassLabel` names of the column.
        scheme: `iob2` (BIO) or `iob1` (converted to IOB2).
    """
    _check_columns(dataset, [tokens_column, tags_column], where)
    names = hub_names(dataset.features[tags_column], hub_label_names)
    kwargs = {
        "tokens_column": tokens_column,
        "tags_column": tags_column,
        "label_names": list(label_names),
        "names": names,
        "scheme": scheme,
        "where": where,
    }
    return _convert(dataset, _token_batch, TOKEN_FEATURES, kwargs)


def _convert(dataset: datasets.Dataset, batch: Any, features: datasets.Features, kwargs: dict) -> datasets.Dataset:
    """`dataset` mapped by `batch(rows, indices, **kwargs)` into our columns (`features`), cached by fingerprint."""
    fingerprint = _fingerprint(dataset, kwargs)
    return dataset.map(
        batch,
        batched=True,
        with_indices=True,
        fn_kwargs=kwargs,
        remove_columns=dataset.column_names,
        features=features,
        new_fingerprint=fingerprint,
        desc=f"converting {kwargs['where']}",
    )


def _fingerprint(dataset: datasets.Dataset, kwargs: dict[str, Any]) -> str:
    # the conversion's own code is part of the cache key, so an edited converter never reuses a stale cache
    here = Path(__file__)
    code = code_digest(here, here.with_name("labels.py"), here.with_name("readers.py"))
    return Hasher.hash([dataset._fingerprint, kwargs, code])
