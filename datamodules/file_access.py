"""Opening a data file: what it is, checked before a reader parses it, and transparent decompression.

`open_text(path, encoding, expected)` is how every reader (`datamodules/readers.py`) opens a file. Before anything
is parsed, one error names the file and what was `expected` there when it is
- a folder, a missing file, or a symbolic link that leads to no file (`require_file`);
- empty (0 bytes, or nothing once decompressed);
- compressed without saying so (gzip, bzip2 or xz data without the `.gz`, `.bz2` or `.xz` suffix), or named `.gz`
  but not gzip; a zip archive (a PyTorch `.pt` checkpoint is one) or zstd data, which are not read;
- a Git LFS pointer instead of the data;
- binary (NUL bytes), or UTF-16/32 text read with another encoding.
A file ending in `.gz`, `.bz2` or `.xz` is decompressed as it is read, its format given by the suffix before
(`train.csv.gz` is CSV); damaged or cut-short compressed data is named as such, not as a decoding error.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TextIO

COMPRESSIONS = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz"}  # read as they are: suffix -> kind
_OPENERS: dict[str, Callable[[Path], BinaryIO]] = {
    "gzip": lambda path: gzip.open(path, "rb"),
    "bzip2": lambda path: bz2.open(path, "rb"),
    "xz": lambda path: lzma.open(path, "rb"),
}
_SUFFIX = {kind: suffix for suffix, kind in COMPRESSIONS.items()}
_DECOMPRESS_TOOL = {"gzip": "gunzip", "bzip2": "bunzip2", "xz": "unxz"}
_DAMAGED = (EOFError, OSError, zlib.error, lzma.LZMAError)  # what the decompressors raise on bad or cut data
KINDS = {
    ".csv": "a CSV file",
    ".tsv": "a TSV file",
    ".jsonl": "a JSON-lines file",
    ".json": "a JSON-lines file",
    ".txt": "a text file",
    ".conll": "a CoNLL column file",
    ".iob": "a CoNLL column file",
    ".bio": "a CoNLL column file",
}
HEAD = 4096  # bytes looked at before reading
LFS_POINTER = b"version https://git-lfs.github.com/spec/"
_WIDE_BOMS = [  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
]


class DataFormatError(ValueError):
    """Bad input data; the message starts with `file:line` (or the file, or hub split, row and column)."""


def compression(path: Path) -> str | None:
    """`gzip`, `bzip2` or `xz` when the file's name says it is compressed, else None."""
    return COMPRESSIONS.get(Path(path).suffix.lower())


def format_suffix(path: str | os.PathLike) -> str:
    """The suffix that gives a file's format, lower-case, under a compression suffix: `.csv` for `train.CSV.gz`."""
    path = Path(path)
    return (path.with_suffix("") if compression(path) else path).suffix.lower()


def describe(path: str | os.PathLike) -> str:
    """What a file is expected to be, from its suffix (`a CSV file`); `a data file` when the suffix says nothing."""
    return KINDS.get(format_suffix(path), "a data file")


def text_codec(encoding: str) -> str:
    """The codec that reads files in `encoding`; UTF-8 is read as `utf-8-sig`, so that a byte-order mark is dropped.

    Args:
        encoding: a Python codec name (`utf-8`, `latin-1`, `cp1252`, ...); an unknown one is an error naming the
            option.
    """
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise ValueError(f"data.init_args.encoding: unknown encoding {encoding!r} (e.g. utf-8, latin-1)") from None
    return "utf-8-sig" if name in ("utf-8", "utf-8-sig") else encoding


def require_file(path: Path, hint: str = "", expected: str | None = None) -> Path:
    """`path` if it is a file, else an error naming it, what it is instead and what was expected.

    Args:
        path: the file.
        hint: what else to do (e.g. where else to get the data), appended to the message.
        expected: what the file should be (`a CSV file with columns [...]`); None = from its suffix.
    """
    path = Path(path)
    if path.is_file():
        return path
    tail = f"; {hint}" if hint else ""
    expected = expected or describe(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, not a file; expected {expected}{tail}")
    if path.is_symlink():
        raise FileNotFoundError(
            f"{path}: a symbolic link to {os.readlink(path)!r} that leads to no file (its target is missing, or the "
            f"links loop); expected {expected}{tail}"
        )
    if path.exists():
        raise DataFormatError(f"{path}: not a regular file (a device, pipe or socket); expected {expected}{tail}")
    raise FileNotFoundError(f"{path}: file not found{tail}")


def open_text(path: Path, encoding: str, expected: str, newline: str | None = None) -> TextIO:
    """`path` checked (see the module docstring) and opened as text, decompressed when its suffix says so.

    Args:
        path: the file.
        encoding: its text encoding (UTF-8 is read without a byte-order mark, see `text_codec`).
        expected: what the file should be, for the errors (`a CoNLL column file`).
        newline: as for `open`: None translates CRLF and CR to LF; `""` leaves line endings to the caller (csv).
    """
    check_file(path, encoding, expected)
    kind = compression(path)
    if kind is None:
        return open(path, encoding=text_codec(encoding), newline=newline)
    stream = io.BufferedReader(_Decompressed(path, kind))
    return io.TextIOWrapper(stream, encoding=text_codec(encoding), newline=newline)


def read_raw(path: Path) -> bytes:
    """A file's bytes, decompressed when its suffix says so (for locating a byte that does not decode)."""
    kind = compression(path)
    if kind is None:
        return Path(path).read_bytes()
    with io.BufferedReader(_Decompressed(path, kind)) as stream:
        return stream.read()


def check_file(path: Path, encoding: str, expected: str) -> None:
    """One error naming `path` when it is not a text file a reader can parse (see the module docstring)."""
    require_file(path, expected=expected)
    with open(path, "rb") as file:
        head = file.read(HEAD)
    if not head:
        raise DataFormatError(f"{path}: the file is empty (0 bytes); expected {expected}")
    kind = _check_compression(path, head, expected)
    if kind is not None:
        with io.BufferedReader(_Decompressed(path, kind)) as stream:
            head = stream.read(HEAD)
        if not head:
            raise DataFormatError(f"{path}: holds no data once decompressed ({kind}); expected {expected}")
    _check_text(path, head, encoding, expected)


def _magic(head: bytes) -> str | None:
    """The compression or archive format whose magic bytes start `head`, if any."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh") and head[3:4].isdigit() and head[4:10] in (b"1AY&SY", b"\x17rE8P\x90"):
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    return None


def _check_compression(path: Path, head: bytes, expected: str) -> str | None:
    """The compression to read `path` with (None = plain), or an error when its name and its bytes disagree."""
    found, named = _magic(head), compression(path)
    if found == "zip":
        raise DataFormatError(
            f"{path}: is a zip archive (a PyTorch checkpoint, a .zip or an .xlsx file?), not {expected}; unpack it "
            "and give the file inside"
        )
    if found == "zstd":
        raise DataFormatError(
            f"{path}: is zstd-compressed, which is not read; decompress it (zstd -d) or compress it "
            "with gzip (.gz), which is read as it is"
        )
    if named is not None and found != named:
        other = f" (it is {found}-compressed: name it {path.with_suffix(_SUFFIX[found]).name})" if found else ""
        raise DataFormatError(
            f"{path}: its name ends in {path.suffix}, but it is not {named}-compressed{other}; "
            f"rename it without {path.suffix}"
        )
    if found is not None and named is None:
        raise DataFormatError(
            f"{path}: is {found}-compressed, but its name does not end in {_SUFFIX[found]}; rename it to "
            f"{path.name}{_SUFFIX[found]} (read as it is) or decompress it ({_DECOMPRESS_TOOL[found]})"
        )
    return named


def _check_text(path: Path, head: bytes, encoding: str, expected: str) -> None:
    """An error when the first bytes of a file are not text in `encoding`: an LFS pointer, wide Unicode, binary."""
    if head.startswith(LFS_POINTER):
        raise DataFormatError(f"{path}: is a Git LFS pointer, not the data; fetch the file itself (git lfs pull)")
    if codecs.lookup(encoding).name.startswith(("utf-16", "utf-32")):
        return  # NUL bytes are part of such text
    for mark, name in _WIDE_BOMS:
        if head.startswith(mark):
            raise DataFormatError(
                f"{path}: is {name} text (it starts with a {name} byte-order mark), read as "
                f"{encoding}; set data.init_args.encoding: {name.lower()}"
            )
    nul = head.find(b"\x00")
    if nul >= 0:
        raise DataFormatError(
            f"{path}: holds NUL bytes (the first at byte {nul}), so it is binary, not {expected} in {encoding}; if "
            "it is UTF-16 text, set data.init_args.encoding: utf-16-le (or utf-16-be)"
        )


def nul_error(path: Path, text: str, expected: str, first_line: int = 1) -> DataFormatError | None:
    """The error for a NUL character in `text` (read from `path`, starting on line `first_line`), or None."""
    position = text.find("\x00")
    if position < 0:
        return None
    line = first_line + text.count("\n", 0, position)
    return DataFormatError(
        f"{path}:{line}: a NUL character (0x00) in the text; expected {expected} (a binary or damaged file?)"
    )


class _Decompressed(io.RawIOBase):
    """The decompressed bytes of a file, with damaged or cut-short data raised as one `DataFormatError`."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__()
        self.path, self.kind, self.done = path, kind, 0
        self.stream = _OPENERS[kind](path)

    def readable(self) -> bool:
        """Always: it is read, never written."""
        return True

    def readinto(self, buffer: memoryview) -> int:
        """Decompress into `buffer` (the `io.RawIOBase` protocol)."""
        try:
            count = self.stream.readinto(buffer)
        except _DAMAGED as error:
            raise DataFormatError(
                f"{self.path}: the {self.kind} data is damaged or cut short after {self.done:,} bytes of text "
                f"({error}); expected a complete {self.kind} file (check it with {self.kind} -t)"
            ) from None
        self.done += count
        return count

    def close(self) -> None:
        """Close the decompressor and its file."""
        if not self.closed:
            self.stream.close()
        super().close()
