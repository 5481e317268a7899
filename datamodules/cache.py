"""The on-disk cache of parsed and tokenized datasets, so that big datasets are processed once.

A local file is parsed once into an Arrow table with `datasets.Dataset.from_generator`, keyed by the files' path,
size and modification time, the reader's options and the reading code itself (`reading_code_digest`);
`datasets.map` then caches each later step (tokenization included) next to that table. Edit a file, an option or
the reading code and the key changes; nothing stale is reused. Delete the folder to reclaim the space.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import datasets
from datasets.exceptions import DatasetGenerationError
from datasets.fingerprint import Hasher

from datamodules.file_access import DataFormatError, require_file

# errors about the files read, raised as they are (not wrapped in `datasets`' DatasetGenerationError)
INPUT_ERRORS = (DataFormatError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def default_cache_dir() -> Path:
    """`$LS_LLAMA_CACHE/datasets`, else `~/.cache/ls-llama/datasets`."""
    return Path(os.environ.get("LS_LLAMA_CACHE", Path.home() / ".cache" / "ls-llama")) / "datasets"


def code_digest(*files: str | os.PathLike) -> str:
    """A hash of source files' bytes (part of cache keys, so that edited code invalidates its caches)."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(Path(file).read_bytes())
    return digest.hexdigest()[:16]


def reading_code_digest(generator: Callable[..., Iterator[dict[str, Any]]]) -> str:
    """A hash of the code that reads files into examples: the generator's module (`datamodules/file_examples.py`),
    the format readers, how files are opened, the label mapping and this file."""
    here = Path(__file__)
    module = sys.modules[generator.__module__]
    readers = [here.with_name(name) for name in ("readers.py", "file_access.py", "labels.py")]
    return code_digest(module.__file__, here, *readers)


def _file_key(path: Path) -> tuple[str, int, int]:
    stat = require_file(path).stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def _run(files: tuple[str, ...], generator: Callable[..., Iterator[dict[str, Any]]], options: dict) -> Iterator[dict]:
    # `datasets` splits list values of gen_kwargs into shards: pass tuples and a dict, and lists to the generator
    yield from generator(files=list(files), **options)


def cached_dataset(
    generator: Callable[..., Iterator[dict[str, Any]]],
    files: list[Path],
    features: datasets.Features,
    cache_dir: str | os.PathLike | None = None,
    **options: Any,
) -> datasets.Dataset:
    """Examples of `generator(files=[...], **options)`, parsed once and then read from the Arrow cache.

    Args:
        generator: a module-level function yielding example dicts; its errors about the input (`DataFormatError`,
            a missing file, a folder) reach the caller unwrapped.
        files: the files it reads (their path, size and mtime are part of the cache key).
        features: the columns' types.
        cache_dir: cache folder; None = `default_cache_dir()`.
        **options: the generator's other keyword arguments (part of the cache key).
    """
    for file in files:
        require_file(file)
    key = Hasher.hash([generator.__qualname__, [_file_key(f) for f in files], options, reading_code_digest(generator)])
    try:
        return datasets.Dataset.from_generator(
            _run,
            features=features,
            cache_dir=str(cache_dir or default_cache_dir()),
            gen_kwargs={"files": tuple(str(f) for f in files), "generator": generator, "options": options},
            fingerprint=key,
        )
    except DatasetGenerationError as error:
        cause = error.__cause__
        if isinstance(cause, INPUT_ERRORS):
            raise cause from None
        raise
