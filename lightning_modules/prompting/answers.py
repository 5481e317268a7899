"""Reading a generated answer: a label name in free text, and an entity list back to word-level BIO tags.

Label answers (`parse_label`). Answer and verbalizations are compared case-insensitively, with `_` read as a space,
whitespace collapsed and surrounding quotes, markdown and punctuation stripped:
1. the whole answer is a verbalization -> that label (`exact`);
2. else the verbalizations found in the answer as whole words (not inside another word), a match lying inside a
   longer match of another label dropped ("negative" inside "very negative"): exactly one label -> it
   (`contained`, e.g. "The sentiment is positive."); none -> invalid (`no label`); two or more -> invalid
   (`several labels`, e.g. "positive or negative"). An invalid answer counts as wrong, never as dropped.
   Negation is not read: "not positive" is `positive`.

Entity answers (`parse_entities`): one entity per line, `<type>: <entity words>`, bullets (`-`, `*`, `1.`) allowed;
the type is matched to a type code or its description (case-insensitive). A line that is not of that form is
ignored (and counted); an answer with no entity line is valid only when it says `none`. `entities_to_tags` then
tags the entity's words in the sentence, matching words case-sensitively and, where that finds nothing,
case-insensitively, longer entities first, no word tagged twice: each listed entity takes the first untagged
occurrence of its words, and then (`occurrences="all"`, the default) **every other occurrence** takes the type of
an entity with those words (`"first"`: only the listed ones). Entities whose words are not in the sentence are
counted as unmatched. On CoNLL-2003 test, gold entities written as answers and mapped back give the gold tags for
all 3,453 sentences with either rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from seqeval.metrics.sequence_labeling import get_entities

STRIP = " \t\n\"'`*_.,:;!?()[]{}<>"  # around a whole answer or a type name
NONE_ANSWERS = {"none", "no entities", "no named entities", "n/a"}
ENTITY_LINE = re.compile(r"^\s*(?:[-*•]|\d+[.)])?\s*(?P<type>[^:\n]+?)\s*:\s*(?P<text>\S.*?)\s*$")


def normalize(text: str) -> str:
    """Lower case, `_` as a space, whitespace collapsed, surrounding quotes/markdown/punctuation stripped."""
    return " ".join(text.replace("_", " ").lower().split()).strip(STRIP)


def parse_label(answer: str, verbalizations: list[str]) -> tuple[int | None, str]:
    """The label an answer names: `(label id, "exact" | "contained")`, or `(None, "no label" | "several labels")`.

    Args:
        answer: the generated text.
        verbalizations: the words of each label, by id (distinct after `normalize`).
    """
    text, names = normalize(answer), [normalize(v) for v in verbalizations]
    if text in names:
        return names.index(text), "exact"
    spans = [
        (match.start(), match.end(), label)
        for label, name in enumerate(names)
        if name
        for match in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", text)
    ]
    inside_longer = {
        (start, end, label)
        for start, end, label in spans
        if any(s <= start and end <= e and e - s > end - start for s, e, _ in spans)
    }
    found = {span[2] for span in spans if span not in inside_longer}
    if len(found) == 1:
        return found.pop(), "contained"
    return None, "several labels" if found else "no label"


@dataclass
class EntityAnswer:
    """A parsed entity answer: `(type code, entity text)` pairs in answer order, whether it said `none`, and how
    many non-empty lines were not entity lines."""

    entities: list[tuple[str, str]] = field(default_factory=list)
    said_none: bool = False
    ignored_lines: int = 0

    @property
    def valid(self) -> bool:
        """An answer is usable when it has an entity line or says `none`."""
        return bool(self.entities) or self.said_none


def parse_entities(answer: str, type_names: dict[str, str], none_answer: str = "None") -> EntityAnswer:
    """Entity lines `<type>: <words>` of an answer.

    Args:
        answer: the generated text.
        type_names: entity type code -> its description in the prompt (`PER` -> `person`); a line's type may be
            either, in any case.
        none_answer: what the prompt asks for when there is no entity (`none`, `no entities`, `n/a` also count).
    """
    lookup = {normalize(name): code for code, name in type_names.items()}
    lookup.update({normalize(code): code for code in type_names})
    nothing = NONE_ANSWERS | {normalize(none_answer)}
    parsed = EntityAnswer(said_none=normalize(answer) in nothing)
    for line in answer.splitlines():
        match = ENTITY_LINE.match(line)
        code = lookup.get(normalize(match["type"])) if match else None
        text = match["text"].strip(" \t\"'`*,;") if match else ""
        if code is not None and text and normalize(text) not in nothing:
            parsed.entities.append((code, text))
        elif line.strip() and normalize(line) not in nothing:
            parsed.ignored_lines += 1
    return parsed


def _occurrences(words: list[str], entity: list[str]) -> list[int]:
    """Start indices of `entity` in `words`: case-sensitive matches, or case-insensitive ones where there are none."""
    n = len(entity)
    starts = [i for i in range(len(words) - n + 1) if words[i : i + n] == entity]
    if starts:
        return starts
    lower = [w.lower() for w in entity]
    return [i for i in range(len(words) - n + 1) if [w.lower() for w in words[i : i + n]] == lower]


def entities_to_tags(
    words: list[str],
    entities: list[tuple[str, str]],
    label_names: list[str],
    occurrences: Literal["all", "first"] = "all",
) -> tuple[list[int], int]:
    """Word-level BIO tag ids for `(type, text)` entities, and how many entities were not found in the sentence.

    Each listed entity takes the first occurrence of its words not yet tagged (an entity listed twice takes two
    occurrences, in order); with `occurrences="all"`, occurrences still untagged afterwards take the type of an
    entity with those words. Longer entities go first, so "New York Times" is placed before "New York".

    Args:
        words: the sentence's words.
        entities: `(type code, entity text)` pairs; the text is split at whitespace into words.
        label_names: the tag set (`O`, `B-PER`, `I-PER`, ...); a type without an `I-` tag continues with `B-`.
        occurrences: `all` (every occurrence is tagged) or `first` (one occurrence per listed entity).
    """
    tags = ["O"] * len(words)
    placed: list[tuple[str, list[str], list[int]]] = []
    for code, text in sorted(entities, key=lambda entity: -len(entity[1].split())):
        entity = text.split()
        if entity and entity[-1].endswith(".") and not _occurrences(words, entity):
            entity = [*entity[:-1], entity[-1][:-1]] if entity[-1] != "." else entity[:-1]  # "Germany." -> "Germany"
        placed.append((code, entity, _occurrences(words, entity) if entity else []))
    passes = (True, False) if occurrences == "all" else (True,)
    for first_only in passes:
        for code, entity, starts in placed:
            free = [s for s in starts if all(t == "O" for t in tags[s : s + len(entity)])]
            for start in free[:1] if first_only else free:
                tags[start : start + len(entity)] = [f"B-{code}"] + [f"I-{code}"] * (len(entity) - 1)
    index = {name: i for i, name in enumerate(label_names)}
    ids = [index.get(tag, index.get("B-" + tag[2:])) if tag != "O" else index["O"] for tag in tags]
    return ids, sum(not starts for _, _, starts in placed)


def tags_to_entities(words: list[str], tags: list[str]) -> list[tuple[str, str]]:
    """`(type code, entity text)` of the entities of BIO tags (seqeval's chunking), in sentence order."""
    return [(code, " ".join(words[start : end + 1])) for code, start, end in get_entities(list(tags))]
