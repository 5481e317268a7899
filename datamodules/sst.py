"""SST-2 (GLUE TSV files or hub `stanfordnlp/sst2`) and SST-5 (PTB sentiment trees or hub `SetFit/sst5`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import datasets
from typing_extensions import override

from datamodules.base import Split
from datamodules.cache import cached_dataset
from datamodules.file_examples import tree_examples
from datamodules.hub_examples import text_examples_from_hub
from datamodules.labels import TEXT_FEATURES
from datamodules.readers import TREE_FILE
from datamodules.sources import FileOrHubDataModule
from datamodules.text_table import TextTableDataModule


class SST2(TextTableDataModule):
    """SST-2 binary sentiment (67,349 training sentences; the paper tests on the 872 of GLUE dev).

    Local files: the GLUE layout, `train.tsv` and `dev.tsv` with header `sentence<TAB>label`. Splits: `test` = GLUE
    dev (the paper's test set; GLUE's own test set has no labels), `validation` = a seeded `validation_fraction`
    of train, `train` = the rest. Sentences are stripped (GLUE's often end in a space).

    Args:
        data_dir: folder with `train.tsv` and `dev.tsv`; None = load `hub_name`.
        hub_name: `stanfordnlp/sst2`, or `glue` with `hub_config: sst2` (the same columns).
        hub_config: hub configuration.
        **kwargs: the `FileOrHubDataModule` / `LabelDataModule` arguments (validation_fraction, tokenizer, ...).
    """

    name = "sst2"
    default_label_names: ClassVar[list[str]] = ["negative", "positive"]
    hub_splits: ClassVar[dict[str, str | None]] = {"train": "train", "validation": None, "test": "validation"}
    files: ClassVar[dict[str, str | None]] = {"train": "train.tsv", "test": "dev.tsv"}
    text_columns = ["sentence"]

    def __init__(
        self,
        data_dir: str | None = None,
        hub_name: str = "stanfordnlp/sst2",
        hub_config: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir=data_dir, hub_name=hub_name, hub_config=hub_config, **kwargs)


class SST5(FileOrHubDataModule):
    r"""SST-5 fine-grained sentiment (8,544 / 1,101 / 2,210 sentences), labels 0..4 = very negative .. very positive.

    Local files: the original Stanford `trainDevTestTrees_PTB` files `train.txt`, `dev.txt`, `test.txt`, one PTB
    tree per line; the text is the leaves joined by spaces (bracket escapes such as `-LRB-` and `\\/` undone), the
    label is the root's. Hub: `SetFit/sst5` (columns `text`, `label`). `validation` = dev, `test` = test.

    Args:
        data_dir: folder with the tree files; None = load `hub_name`.
        hub_name: hub dataset id.
        hub_config: hub configuration.
        **kwargs: the `FileOrHubDataModule` / `LabelDataModule` arguments (tokenizer, batch_size, max_length, ...).
    """

    task = "sequence"
    name = "sst5"
    default_label_names: ClassVar[list[str]] = ["very negative", "negative", "neutral", "positive", "very positive"]
    files: ClassVar[dict[str, str | None]] = {"train": "train.txt", "validation": "dev.txt", "test": "test.txt"}

    def __init__(
        self, data_dir: str | None = None, hub_name: str = "SetFit/sst5", hub_config: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(data_dir=data_dir, hub_name=hub_name, hub_config=hub_config, **kwargs)

    @override
    def file_kind(self, name: str) -> str:
        """A PTB sentiment-tree file."""
        return TREE_FILE

    @override
    def read_local(self, split: Split, folder: Path) -> datasets.Dataset:
        """`train.txt`, `dev.txt` or `test.txt`."""
        return cached_dataset(
            tree_examples,
            [self.split_file(folder, split)],
            TEXT_FEATURES,
            self.cache_dir,
            label_names=self.label_names,
            encoding=self.encoding,
        )

    @override
    def from_hub(self, dataset: datasets.Dataset, split: Split, where: str) -> datasets.Dataset:
        """Columns `text`, `label` (ids 0..4)."""
        return text_examples_from_hub(
            dataset, text_columns=["text"], label_column="label", label_names=self.label_names, where=where
        )
