"""Prompt formatters: what a prompted model is asked, the answer it should give, and how its answer is read; the
registry `PROMPTS`.

A formatter is a small swappable object (`model.prompt: classification` or `{class_path: ..., init_args: ...}`):
- `ClassificationPrompt` (sequence tasks): the paper's instruction-tuning prompt (section 3.2, verbatim), with
  `{all_labels}` filled by the label verbalizations as a Python list, `['negative', 'positive']` (what the paper's
  Python format string gives a list of names; the paper does not say: `label_format: comma` writes
  `negative, positive`) and `{input_text}` by the example's text; the answer is the label's verbalization;
  `parse` reads a label out of free text (`lightning_modules.prompting.answers.parse_label`).
- `EntityPrompt` (token tasks, NER): the same frame asking for one `<type>: <entity words>` line per entity, the
  types given by their descriptions (`PER` -> `person`); `parse` maps the lines back to word-level BIO tags
  (`answers.entities_to_tags`, every occurrence by default).
Add a formatter by subclassing `PromptFormatter` with a `name` (defining the class registers it).
"""

from __future__ import annotations

import string
from typing import ClassVar, Literal

from core.registry import Component
from lightning_modules.prompting.answers import EntityAnswer, entities_to_tags, normalize, parse_entities, parse_label

# Section 3.2 of the paper, verbatim: its `\n` are newlines (the prompt is a Python string there); the line break
# after "predict the" is the PDF's, not the prompt's.
PAPER_PROMPT = (
    "You are a classification model. Based on the given article, you need to predict the most relevant category "
    "label from {all_labels}. One article has only one label. \n ### Input article: {input_text} \n ### Output: "
)
# ours, in the paper's frame: the entity types and an answer format that `answers.parse_entities` reads
ENTITY_PROMPT = (
    "You are a named entity recognition model. Based on the given sentence, you need to find every named entity "
    "and its type from {all_labels}. Answer with one entity per line in the form type: entity, copying the entity's "
    "words from the sentence, or answer None if there is none. \n ### Input sentence: {input_text} \n ### Output: "
)
# descriptions of the CoNLL-2003 and OntoNotes v5 entity types (a type not listed is shown as its code)
TYPE_NAMES = {
    "PER": "person",
    "ORG": "organization",
    "LOC": "location",
    "MISC": "miscellaneous",
    "PERSON": "person",
    "NORP": "nationality or religious or political group",
    "FAC": "facility",
    "GPE": "country or city or state",
    "PRODUCT": "product",
    "EVENT": "event",
    "WORK_OF_ART": "work of art",
    "LAW": "law",
    "LANGUAGE": "language",
    "DATE": "date",
    "TIME": "time",
    "PERCENT": "percent",
    "MONEY": "money",
    "QUANTITY": "quantity",
    "ORDINAL": "ordinal",
    "CARDINAL": "cardinal number",
}

PROMPTS: dict[str, type[PromptFormatter]] = {}


def _check_template(template: str) -> None:
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    if fields != {"all_labels", "input_text"}:
        raise ValueError(f"model.prompt.template must have the fields {{all_labels}} and {{input_text}}, has {fields}")


def _distinct(names: list[str], what: str) -> list[str]:
    if len({normalize(name) for name in names}) != len(names):
        raise ValueError(f"model.prompt.{what} must differ after normalisation (case, '_', punctuation): {names}")
    return names


class PromptFormatter(Component):
    """Base class of prompt formatters; `name` registers it in `PROMPTS`, `task` is the task it serves."""

    registry = PROMPTS
    kind = "prompt"
    task: ClassVar[Literal["sequence", "token"]] = "sequence"

    def prompt(self, text: str, label_names: list[str]) -> str:
        """The instruction for one input text (the user message of a chat template)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


class ClassificationPrompt(PromptFormatter):
    """The paper's prompt; the answer is the label's verbalization.

    Args:
        template: the prompt with the fields `{all_labels}` and `{input_text}`; default: the paper's (section 3.2).
        label_format: `{all_labels}` as a Python list (`python_list`: `['negative', 'positive']`) or joined by
            commas (`comma`: `negative, positive`).
        verbalizations: the words for each label, by id; None = the label names with `_` as a space.
    """

    name = "classification"
    task = "sequence"

    def __init__(
        self,
        template: str = PAPER_PROMPT,
        label_format: Literal["python_list", "comma"] = "python_list",
        verbalizations: list[str] | None = None,
    ) -> None:
        _check_template(template)
        if label_format not in ("python_list", "comma"):
            raise ValueError(f"model.prompt.label_format must be python_list or comma, got {label_format!r}")
        self.template, self.label_format = template, label_format
        self.verbalizations = list(verbalizations) if verbalizations is not None else None

    def verbalize(self, label_names: list[str]) -> list[str]:
        """The answer text of each label, by id."""
        words = self.verbalizations or [name.replace("_", " ") for name in label_names]
        if len(words) != len(label_names):
            raise ValueError(f"model.prompt.verbalizations has {len(words)} entries for {len(label_names)} labels")
        return _distinct(words, "verbalizations")

    def prompt(self, text: str, label_names: list[str]) -> str:
        """The paper's prompt for `text`."""
        words = self.verbalize(label_names)
        labels = str(words) if self.label_format == "python_list" else ", ".join(words)
        return self.template.format(all_labels=labels, input_text=text)

    def response(self, label: int, label_names: list[str]) -> str:
        """The answer that names `label` (the instruction-tuning target)."""
        return self.verbalize(label_names)[label]

    def parse(self, answer: str, label_names: list[str]) -> tuple[int | None, str]:
        """The label id an answer names, or None (see `answers.parse_label`), and why."""
        return parse_label(answer, self.verbalize(label_names))


class EntityPrompt(PromptFormatter):
    """An entity-list prompt for NER; the answer lists `<type>: <words>` lines, or `None`.

    Args:
        template: the prompt with the fields `{all_labels}` (the type descriptions as a Python list, like the
            classification prompt's labels) and `{input_text}`.
        type_names: type code -> description shown in the prompt and expected in answers; None = `TYPE_NAMES`
            (codes not in it are shown as they are).
        occurrences: an answered entity tags every occurrence of its words (`all`) or the first untagged (`first`).
        none_answer: the answer of a sentence without entities.
    """

    name = "entities"
    task = "token"

    def __init__(
        self,
        template: str = ENTITY_PROMPT,
        type_names: dict[str, str] | None = None,
        occurrences: Literal["all", "first"] = "all",
        none_answer: str = "None",
    ) -> None:
        _check_template(template)
        if occurrences not in ("all", "first"):
            raise ValueError(f"model.prompt.occurrences must be 'all' or 'first', got {occurrences!r}")
        self.template, self.occurrences, self.none_answer = template, occurrences, none_answer
        self.type_names = dict(type_names) if type_names is not None else None

    def types(self, label_names: list[str]) -> dict[str, str]:
        """Type code -> description, for the types of a BIO tag set in label order."""
        codes = dict.fromkeys(name[2:] for name in label_names if name[:2] in ("B-", "I-"))
        names = {**TYPE_NAMES, **(self.type_names or {})}
        types = {code: names.get(code, code) for code in codes}
        _distinct(list(types.values()), "type_names")
        return types

    def prompt(self, text: str, label_names: list[str]) -> str:
        """The entity prompt for a sentence's text."""
        return self.template.format(all_labels=str(list(self.types(label_names).values())), input_text=text)

    def response(self, entities: list[tuple[str, str]], label_names: list[str]) -> str:
        """The answer listing `(type code, text)` entities (the instruction-tuning target)."""
        types = self.types(label_names)
        return "\n".join(f"{types[code]}: {text}" for code, text in entities) or self.none_answer

    def parse(self, answer: str, words: list[str], label_names: list[str]) -> tuple[list[int], EntityAnswer, int]:
        """BIO tag ids of the sentence's words from an answer, the parsed answer, and how many of its entities
        are not in the sentence."""
        parsed = parse_entities(answer, self.types(label_names), self.none_answer)
        tags, unmatched = entities_to_tags(words, parsed.entities, label_names, self.occurrences)
        return tags, parsed, unmatched
