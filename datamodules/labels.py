"""Label names -> ids, for local files and for hub datasets, with errors that say where a bad label is.

Every data module keeps its labels as ids into its `label_names`. A label is given
- by name (`"positive"`, `"B-PER"`): its index in `label_names`;
- by integer id (`1`, or the string `"1"` when that is not itself a name): used as is, checked to be in range;
- through a map from the source's raw values (a hub `ClassLabel`'s names, AG News's 1-based class numbers, ...).

`text_examples_from_hub` / `token_examples_from_hub` turn a hub split into our columns (`text`, `label` or
`tokens`, `tags`); the hub path of every data module and the tests run the same functions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import datasets
from datasets.fingerprint import Hasher

from datamodules.cache import code_digest
from datamodules.readers import DataFormatError, iob1_to_iob2

TEXT_FEATURES = datasets.Features({"text": datasets.Value("string"), "label": datasets.Value("int64")})
TOKEN_FEATURES = datasets.Features(
    {"tokens": datasets.List(datasets.Value("string")), "tags": datasets.List(datasets.Value("int64"))}
)


def label_id(value: Any, label_names: list[str], where: str, field: str = "label") -> int:
    """Id of one label, given by name or by integer id (see the module docstring).

    Args:
        value: the raw label.
        label_names: label names by id.
        where: where the label comes from (`file:line`, or `hub/split row N`), for the error message.
        field: what the value is (column name), for the error message.
    """
    if isinstance(value, str):
        if value in label_names:
            return label_names.index(value)
        if not re.fullmatch(r"\d+", value.strip()):
            raise DataFormatError(f"{where}: {field} {value!r} is not one of label_names {label_names}")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(label_names):
        raise DataFormatError(
            f"{where}: {field} {value!r} is outside label_names (ids 0..{len(label_names) - 1}: {label_names})"
        )
    return value


def tag_ids(tags: list[str], label_names: list[str], where: Callable[[int], str]) -> list[int]:
    """Ids of a sentence's tags; `where(i)` locates tag i for the error message (e.g. its `file:line`)."""
    index = {name: i for i, name in enumerate(label_names)}
    try:
        return [index[tag] for tag in tags]
    except KeyError:
        position = next(i for i, tag in enumerate(tags) if tag not in index)
        tag = tags[position]
        raise DataFormatError(f"{where(position)}: tag {tag!r} is not one of label_names {label_names}") from None


def clean_text(text: Any, where: str, field: str = "text") -> str:
    """`text` without surrounding whitespace (a trailing space would become an extra SentencePiece token, the
    one last-token pooling reads); an error when nothing is left."""
    if not isinstance(text, str) or not text.strip():
        raise DataFormatError(f"{where}: empty {field} ({text!r})")
    return text.strip()


def map_label(value: Any, label_names: list[str], label_map: dict | None, where: str, field: str = "label") -> int:
    """Id of a raw label: through `label_map` (raw value -> id) when given, else by name or id (`label_id`)."""
    if label_map is None:
        return label_id(value, label_names, where, field)
    if value not in label_map:
        raise DataFormatError(f"{where}: {field} {value!r} is not one of {list(label_map)}")
    return label_map[value]


def join_text(record: dict, text_columns: list[str], where: str, joiner: str = "\n") -> str:
    """The non-empty text columns of a record, stripped and joined; an error when all are empty."""
    parts = [record[c].strip() for c in text_columns if isinstance(record[c], str) and record[c].strip()]
    return clean_text(joiner.join(parts), where, "+".join(text_columns))


def hub_names(feature: Any, given: list[str] | None) -> list[str] | None:
    """Names of a hub column's integer values: `given`, else the `ClassLabel` names of the column (or of its
    items, for a sequence column), else None."""
    if given:
        return list(given)
    feature = getattr(feature, "feature", feature)  # List / Sequence of ClassLabel
    return list(feature.names) if isinstance(feature, datasets.ClassLabel) else None


def _check_columns(dataset: datasets.Dataset, columns: list[str], where: str) -> None:
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        raise DataFormatError(f"{where}: missing column(s) {missing}; the dataset has {dataset.column_names}")


def _text_batch(
    batch: dict[str, list], indices: list[int], text_columns: list[str], label_column: str,
    label_names: list[str], label_map: dict | None, where: str,
) -> dict[str, list]:  # fmt: skip
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
    kwargs = {"text_columns": list(text_columns), "label_column": label_column, "label_names": list(label_names),
              "label_map": label_map, "where": where}  # fmt: skip
    return dataset.map(
        _text_batch, batched=True, with_indices=True, fn_kwargs=kwargs, remove_columns=dataset.column_names,
        features=TEXT_FEATURES, new_fingerprint=_fingerprint(dataset, kwargs), desc=f"converting {where}",
    )  # fmt: skip


def _token_batch(
    batch: dict[str, list], indices: list[int], tokens_column: str, tags_column: str, label_names: list[str],
    names: list[str] | None, scheme: str, where: str,
) -> dict[str, list]:  # fmt: skip
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
    kwargs = {"tokens_column": tokens_column, "tags_column": tags_column, "label_names": list(label_names),
              "names": names, "scheme": scheme, "where": where}  # fmt: skip
    return dataset.map(
        _token_batch, batched=True, with_indices=True, fn_kwargs=kwargs, remove_columns=dataset.column_names,
        features=TOKEN_FEATURES, new_fingerprint=_fingerprint(dataset, kwargs), desc=f"converting {where}",
    )  # fmt: skip


def _fingerprint(dataset: datasets.Dataset, kwargs: dict[str, Any]) -> str:
    # the conversion's own code is part of the cache key, so an edited converter never reuses a stale cache
    return Hasher.hash([dataset._fingerprint, kwargs, code_digest(__file__)])
