"""OntoNotes v5 English NER (CoNLL-2012 split): 59,924 / 8,528 / 8,262 sentences, 18 entity types in BIO tags."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import datasets
from typing_extensions import override

from datamodules.base import Split
from datamodules.cache import cached_dataset
from datamodules.conll import ConllNER
from datamodules.file_examples import jsonl_token_examples
from datamodules.labels import TOKEN_FEATURES

# the tag ids of the hub dataset tner/ontonotes5 (its `tags` column holds plain integers)
TNER_ONTONOTES_TAGS = [
    "O",
    "B-CARDINAL",
    "B-DATE",
    "I-DATE",
    "B-PERSON",
    "I-PERSON",
    "B-NORP",
    "B-GPE",
    "I-GPE",
    "B-LAW",
    "I-LAW",
    "B-ORG",
    "I-ORG",
    "B-PERCENT",
    "I-PERCENT",
    "B-ORDINAL",
    "B-MONEY",
    "I-MONEY",
    "B-WORK_OF_ART",
    "I-WORK_OF_ART",
    "B-FAC",
    "B-TIME",
    "I-CARDINAL",
    "B-LOC",
    "B-QUANTITY",
    "I-QUANTITY",
    "I-NORP",
    "I-LOC",
    "B-PRODUCT",
    "I-TIME",
    "B-EVENT",
    "I-EVENT",
    "I-FAC",
    "B-LANGUAGE",
    "I-PRODUCT",
    "I-ORDINAL",
    "I-LANGUAGE",
]
# the tag ids of the LS-LLaMA authors' files (github.com/4AI/LS-LLaMA, llama_token_clf.py): first tokens only
LSLLAMA_ONTONOTES_TAGS = [
    "O",
    "B-NORP",
    "B-PERSON",
    "B-WORK_OF_ART",
    "B-QUANTITY",
    "B-EVENT",
    "B-DATE",
    "B-TIME",
    "B-PERCENT",
    "B-LANGUAGE",
    "B-ORG",
    "B-CARDINAL",
    "B-LAW",
    "B-GPE",
    "B-PRODUCT",
    "B-LOC",
    "B-MONEY",
    "B-ORDINAL",
    "B-FAC",
]


class OntoNotes5(ConllNER):
    """OntoNotes v5 English NER: 37 BIO tags (`O` and B-/I- of 18 types), ids in the order of `tner/ontonotes5`.

    Local files: `train.bio.txt`, `dev.bio.txt`, `test.bio.txt`, one `token<TAB>tag` per line (full BIO), a blank
    line between sentences. Hub: `tner/ontonotes5` (columns `tokens`, `tags`, integer ids named by
    `hub_label_names`, by default the tner ids).

    `lsllama_official: true` evaluates on the paper authors' own files `lsllama_official_{dev,test}.jsonl`, where
    only an entity's FIRST token is tagged (`B-X`) and its other tokens are `O`, so every entity counts as one
    word long; train then follows the same convention (`I-X` -> `O` in `train.bio.txt`, as the authors' train file
    is not available). Use it only to compare with the paper's numbers: the default, full-BIO files are right.

    Args:
        data_dir: folder with the files; None = load `hub_name`.
        hub_name: hub dataset id.
        lsllama_official: use the authors' first-token-only dev/test files (see above).
        train_file: training file, relative to `data_dir`.
        validation_file: validation file.
        test_file: test file.
        separator: column separator (a tab: OntoNotes tokens may hold spaces).
        tags_column: hub column holding the tags.
        hub_label_names: names of the hub's integer tags; None = the ids of `tner/ontonotes5`.
        **kwargs: the `ConllNER` arguments (columns, separator, ...) and the `LabelDataModule` ones.
    """

    name = "ontonotes5"
    default_label_names: ClassVar[list[str]] = TNER_ONTONOTES_TAGS

    def __init__(
        self,
        data_dir: str | None = None,
        hub_name: str | None = "tner/ontonotes5",
        lsllama_official: bool = False,
        train_file: str | None = "train.bio.txt",
        validation_file: str | None = "dev.bio.txt",
        test_file: str | None = "test.bio.txt",
        separator: str | None = "\t",
        tags_column: str = "tags",
        hub_label_names: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            data_dir=data_dir,
            hub_name=hub_name,
            train_file=train_file,
            validation_file=validation_file,
            test_file=test_file,
            separator=separator,
            tags_column=tags_column,
            hub_label_names=hub_label_names or TNER_ONTONOTES_TAGS,
            **kwargs,
        )
        self.lsllama_official = lsllama_official

    @override
    def read_local(self, split: Split, folder: Path) -> datasets.Dataset:
        """The `.bio.txt` file of a split, or with `lsllama_official` the authors' dev/test JSON lines."""
        if not self.lsllama_official:
            return super().read_local(split, folder)
        if split == "train":
            return self.read_conll_files([self.local_file(folder, self.files["train"])], first_token_only=True)
        path = self.local_file(folder, f"lsllama_official_{'dev' if split == 'validation' else 'test'}.jsonl")
        return cached_dataset(
            jsonl_token_examples,
            [path],
            TOKEN_FEATURES,
            self.cache_dir,
            label_names=self.label_names,
            id_names=LSLLAMA_ONTONOTES_TAGS,
            encoding=self.encoding,
        )
