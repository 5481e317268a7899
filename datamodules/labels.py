"""Label names -> ids, for local files and for hub datasets, with errors that say where a bad label is.

Every data module keeps its labels as ids into its `label_names`. A label is given
- by name (`"positive"`, `"B-PER"`): its index in `label_names`;
- by integer id (`1`, or the string `"1"` when that is not itself a name): used as is, checked to be in range;
- through a map from the source's raw values (a hub `ClassLabel`'s names, AG News's 1-based class numbers, ...).

The examples of local files (`datamodules/file_examples.py`) and of hub splits (`datamodules/hub_examples.py`) get
their ids here, and so do their errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import datasets

from datamodules.readers import DataFormatError

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
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataFormatError(f"{where}: empty {field}; {_expected_label(label_names)}")
    if isinstance(value, str):
        if value in label_names:
            return label_names.index(value)
        if not re.fullmatch(r"\d+", value.strip()):
            raise DataFormatError(
                f"{where}: {field} {value!r} is not one of label_names {label_names} nor an integer id "
                f"0..{len(label_names) - 1}"
            )
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataFormatError(
            f"{where}: {field} {_short(value)} is a {type(value).__name__}; "
            f"{_expected_label(label_names)}{_integral_hint(value)}"
        )
    if not 0 <= value < len(label_names):
        raise DataFormatError(
            f"{where}: {field} {value!r} is outside label_names (ids 0..{len(label_names) - 1}: {label_names})"
        )
    return value


def _expected_label(label_names: list[str]) -> str:
    return f"expected an integer id 0..{len(label_names) - 1} or a label name (one of {label_names})"


def _short(value: Any, width: int = 60) -> str:
    """`repr(value)`, cut to `width` characters (a label could be a long list or object)."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _integral_hint(value: Any) -> str:
    return f"; write {value!r} as {int(value)}" if isinstance(value, float) and value.is_integer() else ""


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
    """Id of a raw label: through `label_map` (raw value -> id) when given, else by name or id (`label_id`).

    Through a map, a value must have the type of the map's keys (a list or `True` is not the star rating 1).
    """
    if label_map is None:
        return label_id(value, label_names, where, field)
    key_types = {type(key) for key in label_map}
    if type(value) not in key_types:
        raise DataFormatError(
            f"{where}: {field} {_short(value)} is a {type(value).__name__}; expected one of {list(label_map)}"
        )
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
