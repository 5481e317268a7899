"""The base of the real datasets: each split comes from local files (`data_dir`) or from the HuggingFace hub.

Split policy (the same for every dataset):
- `train`, `validation`, `test`. Checkpoints are chosen on `validation` and never on `test`.
- Where the paper's test set is a dataset's own dev/validation split (SST-2: GLUE dev; Twitter-Fin: valid), that
  split is our `test`, and `validation` is a seeded random part of train (`validation_fraction`, `validation_seed`,
  independent of the training `seed`, so every run sees the same split). The sizes are logged.
- Datasets without a validation split (AG News) hold one out of train the same way.
"""

from __future__ import annotations

import logging
import os
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import datasets

from datamodules.base import LabelDataModule, Split
from datamodules.file_access import describe, require_file

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]


def resolve_path(path: str | os.PathLike, what: str = "data_dir") -> Path:
    """`path` as given (absolute, or relative to the working directory), else relative to the repository root
    (so configs can say `../shared/data/conll2003` and run from anywhere)."""
    candidates = [Path(os.path.expanduser(path))]
    if not candidates[0].is_absolute():
        candidates.append(REPO_ROOT / path)
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{what} {str(path)!r} not found (looked at {', '.join(map(str, candidates))})")


def load_hub(name: str, config: str | None) -> datasets.DatasetDict:
    """`datasets.load_dataset(name, config)`, with an error that says what to do when it cannot be had."""
    try:
        return datasets.load_dataset(name, config)
    except Exception as error:
        raise ConnectionError(
            f"could not load the hub dataset {name!r} (config {config!r}): {type(error).__name__}: {error}. "
            "Offline or withdrawn? Point data.data_dir at local files instead."
        ) from error


class FileOrHubDataModule(LabelDataModule):
    """A dataset read from local files or from the hub (see the module docstring for the split policy).

    Subclasses set `files` (our split -> its file in `data_dir`; leave it empty to find files otherwise) and
    `hub_splits` (our split -> the hub's), and implement `read_local(split, folder)` and
    `from_hub(dataset, split, where)`. `validation` is held out of train where the source has no validation split:
    no validation file (`files`) for local data, `validation: None` in `hub_splits` for the hub.

    Args:
        data_dir: folder with the dataset's files; None = load `hub_name` with `datasets.load_dataset`.
        hub_name: hub dataset id, used when `data_dir` is None.
        hub_config: hub dataset configuration (e.g. `sst2` of `glue`).
        cache_dir: where parsed and tokenized files are cached; None = `$LS_LLAMA_CACHE/datasets` or
            `~/.cache/ls-llama/datasets`.
        validation_fraction: part of train held out as `validation` where the dataset has no validation split of
            its own (unused otherwise).
        validation_seed: seed of that hold-out, independent of the training `seed`: every run sees the same split.
        **kwargs: the `LabelDataModule` arguments (tokenizer, label_names, max_length, batch_size, encoding, ...).
    """

    hub_splits: ClassVar[dict[str, str | None]] = {"train": "train", "validation": "validation", "test": "test"}
    files: ClassVar[dict[str, str | None]] = {}

    def __init__(
        self,
        data_dir: str | None = None,
        hub_name: str | None = None,
        hub_config: str | None = None,
        cache_dir: str | None = None,
        validation_fraction: float = 0.05,
        validation_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data_dir, self.hub_name, self.hub_config, self.cache_dir = data_dir, hub_name, hub_config, cache_dir
        self.validation_fraction, self.validation_seed = validation_fraction, validation_seed
        if data_dir is None and hub_name is None:
            raise ValueError(f"{type(self).__name__}: give data.data_dir (local files) or data.hub_name")
        if not 0 < validation_fraction < 1:
            raise ValueError(f"data.init_args.validation_fraction must lie in (0, 1), got {validation_fraction}")

    # ------------------------------------------------------------------------------------- to implement
    def read_local(self, split: Split, folder: Path) -> datasets.Dataset:
        """A split from the files in `folder` (for `validation` only when the dataset has one)."""
        raise NotImplementedError

    def from_hub(self, dataset: datasets.Dataset, split: Split, where: str) -> datasets.Dataset:
        """A hub split converted to our columns (see `datamodules.hub_examples`)."""
        raise NotImplementedError

    def file_kind(self, name: str) -> str:
        """What the file `name` should be, for errors (`a CSV file with columns [...]`); here from its suffix."""
        return describe(name)

    def local_file(self, folder: Path, name: str) -> Path:
        """`folder / name`, or an error naming it, what it should be and where else the data can come from."""
        hint = f"{type(self).__name__} reads {name} from data_dir"
        if self.hub_name:
            hint += f"; or set data.data_dir: null to load the hub dataset {self.hub_name!r}"
        return require_file(folder / name, hint, self.file_kind(name))

    def split_file(self, folder: Path, split: Split) -> Path:
        """The file of a split (`files`) in `folder`, or an error naming what is missing."""
        name = self.files.get(split)
        if name is None:
            raise FileNotFoundError(f"{type(self).__name__}: no {split} file given (data.init_args.{split}_file)")
        return self.local_file(folder, name)

    # ------------------------------------------------------------------------------------------ splits
    def holds_out_validation(self) -> bool:
        """Whether `validation` is a part of train (the source has no validation split of its own)."""
        if self.data_dir is not None and self.files:
            return self.files.get("validation") is None
        return self.hub_splits.get("validation") is None

    def load_split(self, split: Split) -> datasets.Dataset:
        """A split, following the split policy of the module docstring."""
        if split != "test" and self.holds_out_validation():
            return self._held_out(split)
        return self._source_split(split)

    def _source_split(self, split: Split) -> datasets.Dataset:
        if self.data_dir is not None:
            return self.read_local(split, self._data_folder())
        hub_split = self.hub_splits.get(split)
        splits = self._hub
        if hub_split not in splits:
            raise KeyError(f"hub dataset {self.hub_name!r} has splits {list(splits)}, not {hub_split!r} ({split})")
        return self.from_hub(splits[hub_split], split, f"{self.hub_name}/{hub_split}")

    def _data_folder(self) -> Path:
        """`data_dir`, found (`resolve_path`) and checked to be a folder."""
        folder = resolve_path(self.data_dir)
        if not folder.is_dir():
            names = ", ".join(name for name in self.files.values() if name)
            raise NotADirectoryError(
                f"data_dir {folder}: is a file, not a folder; expected the folder holding "
                f"{type(self).__name__}'s files{f' ({names})' if names else ''}"
            )
        return folder

    @cached_property
    def _hub(self) -> datasets.DatasetDict:
        return load_hub(self.hub_name, self.hub_config)

    def _held_out(self, split: Split) -> datasets.Dataset:
        full = self._source_split("train")
        parts = full.train_test_split(test_size=self.validation_fraction, seed=self.validation_seed)
        part = parts["train"] if split == "train" else parts["test"]
        log.info(
            "%s/%s: %d examples (%s %d of the %d training examples, validation_fraction=%g, validation_seed=%d)",
            self.name,
            split,
            len(part),
            "keeps" if split == "train" else "holds out",
            len(part),
            len(full),
            self.validation_fraction,
            self.validation_seed,
        )
        return part
