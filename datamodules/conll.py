"""NER from CoNLL-format column files or `conllx`-style hub datasets: the generic `ConllNER` and CoNLL-2003."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar, Literal

import datasets
from typing_extensions import override

from datamodules.base import Split, column
from datamodules.cache import cached_dataset
from datamodules.file_examples import conll_examples
from datamodules.hub_examples import token_examples_from_hub
from datamodules.labels import TOKEN_FEATURES
from datamodules.readers import CONLL_FILE, column_separator
from datamodules.sources import FileOrHubDataModule

log = logging.getLogger(__name__)

CONLL2003_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


class ConllNER(FileOrHubDataModule):
    r"""Named-entity recognition on CoNLL-format files or on a `conllx`-style hub dataset.

    Files: one token per line, columns split by `separator`, a blank line between sentences, `-DOCSTART-` lines
    dropped; every line must have the columns of the file's first line; a file may be compressed (`train.txt.gz`,
    `.bz2`, `.xz`). Tags are IOB2 (BIO) or, with `scheme: iob1`, IOB1 converted to IOB2; BIO data whose entities
    start with `I-` (IOB1 read as BIO) is counted in a warning that names the fix. A tag outside `label_names`, a
    wrong column count or an empty token is an error naming file and line. Hub: a tokens column and a tags
    column, integer tags named by the column's `ClassLabel` (or `hub_label_names`), string tags as they are; names
    are then mapped to our ids. Without a validation file (or hub validation split), `validation` is a seeded part
    of train.

    Args:
        data_dir: folder holding the files; None = load `hub_name`.
        train_file: training file, relative to `data_dir`.
        validation_file: validation file; None = hold out `validation_fraction` of train.
        test_file: test file; None = no test split.
        token_column: index of the word column.
        tag_column: index of the tag column (-1 = the last).
        separator: column separator, one character; None = any whitespace. A tab (for files whose tokens may hold
            spaces) may be written as the escape `\t` (`--data.init_args.separator='\t'` on the command line,
            `separator: '\t'` or `"\t"` in YAML) or `tab`.
        scheme: tag scheme of the input, `iob2` (BIO) or `iob1` (converted to IOB2).
        hub_name: hub dataset id, used when `data_dir` is None.
        hub_config: hub configuration.
        hub_splits: our split -> the hub's split name; `validation: null` holds validation out of train.
        tokens_column: hub column holding the words.
        tags_column: hub column holding the tags.
        hub_label_names: names of the hub's integer tags when the column is not a sequence of `ClassLabel`.
        **kwargs: the `FileOrHubDataModule` / `LabelDataModule` arguments (validation_fraction, encoding, ...);
            `label_names` (IOB2 tags by id) is required here.
    """

    task = "token"
    name = "conll_ner"

    def __init__(
        self,
        data_dir: str | None = None,
        train_file: str | None = "train.txt",
        validation_file: str | None = "valid.txt",
        test_file: str | None = "test.txt",
        token_column: int = 0,
        tag_column: int = -1,
        separator: str | None = None,
        scheme: Literal["iob1", "iob2"] = "iob2",
        hub_name: str | None = None,
        hub_config: str | None = None,
        hub_splits: dict[str, str | None] | None = None,
        tokens_column: str = "tokens",
        tags_column: str = "ner_tags",
        hub_label_names: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir=data_dir, hub_name=hub_name, hub_config=hub_config, **kwargs)
        self.files = {"train": train_file, "validation": validation_file, "test": test_file}
        self.token_column, self.tag_column, self.scheme = token_column, tag_column, scheme
        self.separator = column_separator(separator)
        self.hub_splits = dict(hub_splits or type(self).hub_splits)
        self.tokens_column, self.tags_column, self.hub_label_names = tokens_column, tags_column, hub_label_names

    @override
    def file_kind(self, name: str) -> str:
        """A CoNLL column file."""
        return CONLL_FILE

    @override
    def read_local(self, split: Split, folder: Path) -> datasets.Dataset:
        """A split from its CoNLL file."""
        return self.read_conll_files([self.split_file(folder, split)])

    def read_conll_files(self, paths: list[Path], **options: Any) -> datasets.Dataset:
        """Sentences of CoNLL files with this module's columns, separator and scheme (parsed once, cached)."""
        reading = ("label_names", "token_column", "tag_column", "separator", "scheme", "encoding")
        reading_options = {name: getattr(self, name) for name in reading}  # how the files are read: the cache key
        sentences = cached_dataset(conll_examples, paths, TOKEN_FEATURES, self.cache_dir, **reading_options, **options)
        self.warn_if_iob1(sentences, ", ".join(map(str, paths)))
        return sentences

    @override
    def from_hub(self, dataset: datasets.Dataset, split: Split, where: str) -> datasets.Dataset:
        """A hub split's tokens and (named) tags."""
        sentences = token_examples_from_hub(
            dataset,
            tokens_column=self.tokens_column,
            tags_column=self.tags_column,
            label_names=self.label_names,
            where=where,
            hub_label_names=self.hub_label_names,
            scheme=self.scheme,
        )
        self.warn_if_iob1(sentences, where)
        return sentences

    def warn_if_iob1(self, sentences: datasets.Dataset, where: str) -> None:
        """Warn, with a count, when tags read as BIO start entities with `I-`: IOB1 data, which `scheme: iob1`
        converts (read as BIO, an entity without `B-` trains the model on inside-tags it never sees begin)."""
        if self.scheme != "iob2":
            return
        names = self.label_names
        entity_type = {i: name[2:] for i, name in enumerate(names) if name[:2] in ("B-", "I-")}
        inside = {i for i, name in enumerate(names) if name.startswith("I-")}
        concerned = [
            index
            for index, tags in enumerate(column(sentences, "tags"))
            if not inside.isdisjoint(tags) and _starts_inside(tags, inside, entity_type)
        ]
        if concerned:
            first = sentences[concerned[0]]
            example = " ".join(f"{w}/{names[t]}" for w, t in zip(first["tokens"][:6], first["tags"][:6]))
            log.warning(
                "%s: %d of %d sentences start an entity with I- (e.g. sentence %d: %s ...), which BIO never does "
                "(every entity starts with B-): this looks like IOB1. Set data.init_args.scheme: iob1 to convert it "
                "to BIO.",
                where,
                len(concerned),
                len(sentences),
                concerned[0] + 1,
                example,
            )


def _starts_inside(tags: list[int], inside: set[int], entity_type: dict[int, str]) -> bool:
    """Whether an `I-X` tag (ids in `inside`) follows neither `B-X` nor `I-X`: it starts an entity (IOB1)."""
    previous = None
    for tag in tags:
        if tag in inside and entity_type.get(previous) != entity_type[tag]:
            return True
        previous = tag
    return False


class CoNLL2003(ConllNER):
    """CoNLL-2003 English NER: 14,041 / 3,250 / 3,453 sentences, PER ORG LOC MISC in BIO tags.

    Local files: the common 4-column distribution `word POS chunk NER` (`train.txt`, `valid.txt`, `test.txt`,
    IOB2). The original release (`eng.train`, `eng.testa`, `eng.testb`) is IOB1: set those file names and
    `scheme: iob1`. Hub: `eriktks/conll2003` (or `conll2003`), column `ner_tags` with `ClassLabel` names.

    Args:
        data_dir: folder with the files; None = load `hub_name`.
        hub_name: hub dataset id.
        **kwargs: the `ConllNER` arguments (file names, columns, scheme, ...) and the `LabelDataModule` ones.
    """

    name = "conll2003"
    default_label_names: ClassVar[list[str]] = CONLL2003_TAGS

    def __init__(self, data_dir: str | None = None, hub_name: str | None = "eriktks/conll2003", **kwargs: Any) -> None:
        super().__init__(data_dir=data_dir, hub_name=hub_name, **kwargs)
