"""NER from CoNLL-format column files or `conllx`-style hub datasets: the generic `ConllNER` and CoNLL-2003."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import datasets
from typing_extensions import override

from datamodules.base import Split
from datamodules.cache import cached_dataset
from datamodules.labels import TOKEN_FEATURES, tag_ids, token_examples_from_hub
from datamodules.readers import DataFormatError, iob1_to_iob2, read_conll
from datamodules.sources import FileOrHubDataModule

CONLL2003_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def conll_examples(
    files: list[str], label_names: list[str], token_column: int = 0, tag_column: int = -1,
    separator: str | None = None, scheme: str = "iob2", first_token_only: bool = False,
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """`{"tokens", "tags"}` sentences of CoNLL column files, tags converted to IOB2 and then to ids.

    `first_token_only` keeps an entity's `B-X` and sets its `I-X` tokens to `O` (the quirk of the LS-LLaMA
    authors' OntoNotes files, see `OntoNotes5`)."""
    for file in files:
        path, count = Path(file), 0
        for tokens, tags, lines in read_conll(path, token_column, tag_column, separator):
            tags = iob1_to_iob2(tags) if scheme == "iob1" else tags
            if first_token_only:
                tags = ["O" if t.startswith("I-") else t for t in tags]
            count += 1
            where = lambda i, path=path, lines=lines: f"{path}:{lines[i]}"  # noqa: E731
            yield {"tokens": tokens, "tags": tag_ids(tags, label_names, where)}
        if not count:
            raise DataFormatError(f"{path}: no sentences")


class ConllNER(FileOrHubDataModule):
    r"""Named-entity recognition on CoNLL-format files or on a `conllx`-style hub dataset.

    Files: one token per line, columns split by `separator`, a blank line between sentences, `-DOCSTART-` lines
    dropped; every line must have the columns of the file's first line. Tags are IOB2 (BIO) or, with
    `scheme: iob1`, IOB1 converted to IOB2. A tag outside `label_names`, a wrong column count or an empty token is
    an error naming file and line. Hub: a tokens column and a tags column, integer tags named by the column's
    `ClassLabel` (or `hub_label_names`), string tags as they are; names are then mapped to our ids.
    Without a validation file (or hub validation split), `validation` is a seeded part of train.

    Args:
        data_dir: folder holding the files; None = load `hub_name`.
        train_file: training file, relative to `data_dir`.
        validation_file: validation file; None = hold out `validation_fraction` of train.
        test_file: test file; None = no test split.
        token_column: index of the word column.
        tag_column: index of the tag column (-1 = the last).
        separator: column separator; None = any whitespace (`"\\t"` for tab-separated files whose tokens may hold
            spaces).
        scheme: tag scheme of the input, `iob2` (BIO) or `iob1` (converted to IOB2).
        hub_name: hub dataset id, used when `data_dir` is None.
        hub_config: hub configuration.
        hub_splits: our split -> the hub's split name; `validation: null` holds validation out of train.
        tokens_column: hub column holding the words.
        tags_column: hub column holding the tags.
        hub_label_names: names of the hub's integer tags when the column is not a sequence of `ClassLabel`.
        validation_fraction: part of train held out for validation when there is no validation split.
        validation_seed: seed of that hold-out (independent of the training seed).
        **kwargs: the `LabelDataModule` arguments; `label_names` (IOB2 tags by id) is required here.
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
        validation_fraction: float = 0.05,
        validation_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir=data_dir, hub_name=hub_name, hub_config=hub_config, **kwargs)
        self.files: dict[str, str | None] = {"train": train_file, "validation": validation_file, "test": test_file}
        self.token_column, self.tag_column, self.separator, self.scheme = token_column, tag_column, separator, scheme
        self.hub_splits = dict(hub_splits or type(self).hub_splits)
        self.tokens_column, self.tags_column, self.hub_label_names = tokens_column, tags_column, hub_label_names
        self.validation_fraction, self.validation_seed = validation_fraction, validation_seed

    @override
    def holds_out_validation(self) -> bool:
        return self.files["validation"] is None if self.data_dir is not None else super().holds_out_validation()

    def read_local(self, split: Split, folder: Path) -> datasets.Dataset:
        """A split from its CoNLL file."""
        name = self.files[split]
        if name is None:
            raise FileNotFoundError(f"{type(self).__name__}: no {split}_file given (data.{split}_file)")
        return self.read_conll_files([self.local_file(folder, name)])

    def read_conll_files(self, paths: list[Path], **options: Any) -> datasets.Dataset:
        """Sentences of CoNLL files with this module's columns, separator and scheme (parsed once, cached)."""
        return cached_dataset(
            conll_examples, paths, TOKEN_FEATURES, self.cache_dir, label_names=self.label_names,
            token_column=self.token_column, tag_column=self.tag_column, separator=self.separator,
            scheme=self.scheme, **options,
        )  # fmt: skip

    def from_hub(self, dataset: datasets.Dataset, split: Split, where: str) -> datasets.Dataset:
        """A hub split's tokens and (named) tags."""
        return token_examples_from_hub(
            dataset, tokens_column=self.tokens_column, tags_column=self.tags_column, label_names=self.label_names,
            where=where, hub_label_names=self.hub_label_names, scheme=self.scheme,
        )  # fmt: skip


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
