"""The embedded default task: synthetic, seeded data whose labels need context to the RIGHT of a token.

`RightContextNER` (token classification): sentences of filler words with entity spans of made-up names; a span's
type is given only by the cue word that FOLLOWS it ("zorxa vexjun inc" is an ORG, "zorxa vexjun city" a LOC),
and names are drawn from one pool for all types. A causal decoder labels a span before it can see the cue, so
it can only guess the type; a bidirectional one sees it. This is the paper's NER finding in two minutes of CPU.

`EarlyCueClassification` (its sequence twin): the class is given by a cue word near the START of the sentence, so
last-token pooling under a causal mask still sees it: causal and bidirectional should both solve it.

Text is tokenized by a small SentencePiece-style (Metaspace + Unigram) tokenizer that this module writes with the
`tokenizers` library and loads back with `AutoTokenizer.from_pretrained`, so words split into several subwords and
the alignment path is the one real data takes. Pass `tokenizer=` to use another (e.g. the LLaMA-2 tokenizer).
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import datasets
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from datamodules.base import LabelDataModule, Split

FILLER_SYLLABLES = ["ba", "ko", "ti", "re", "lu", "mo", "sa", "ne", "di", "fa", "po", "gu"]
NAME_SYLLABLES = ["zor", "xa", "qui", "vex", "jun", "yol", "kra", "wim"]
ENTITY_CUES = {
    "PER": ["said", "smiled", "wrote"],
    "ORG": ["inc", "corp", "ltd"],
    "LOC": ["city", "river", "valley"],
    "MISC": ["cup", "prize", "award"],
}
CLASS_CUES = {
    "sports": ["goal", "match", "team"],
    "politics": ["vote", "senate", "law"],
    "science": ["atom", "cell", "laser"],
    "music": ["song", "band", "chord"],
}
TOKENIZER_VERSION = "synthetic-unigram-v1"


def _words(rng: random.Random, syllables: list[str], count: int, min_len: int, max_len: int) -> list[str]:
    words: set[str] = set()
    while len(words) < count:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(min_len, max_len))))
    return sorted(words)


VOCAB_RNG = random.Random(1234)
FILLER_WORDS = _words(VOCAB_RNG, FILLER_SYLLABLES, 80, 1, 3)
NAME_WORDS = _words(VOCAB_RNG, NAME_SYLLABLES, 60, 2, 3)


def build_tokenizer(cache_dir: str | os.PathLike | None = None) -> str:
    """Write (once) the synthetic task's tokenizer and return its folder, loadable with `AutoTokenizer`."""
    root = Path(cache_dir or os.environ.get("LS_LLAMA_CACHE", Path.home() / ".cache" / "ls-llama"))
    folder = root / TOKENIZER_VERSION
    if (folder / "tokenizer.json").exists():
        return str(folder)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    cues = [w for ws in (*ENTITY_CUES.values(), *CLASS_CUES.values()) for w in ws]
    pieces = [("<pad>", 0.0), ("<unk>", 0.0), ("<s>", 0.0), ("</s>", 0.0), ("▁", -20.0)]
    pieces += [(p, -12.0) for c in letters for p in (c, "▁" + c)]
    pieces += [(p, -2.0) for s in FILLER_SYLLABLES + NAME_SYLLABLES for p in (s, "▁" + s)]
    pieces += [("▁" + w, -1.0) for w in cues]
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=1, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    root.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=root)  # write, then rename: safe with parallel processes
    fast.save_pretrained(tmp)
    try:
        os.rename(tmp, folder)
    except OSError:
        shutil.rmtree(tmp)
        if not (folder / "tokenizer.json").exists():
            raise
    return str(folder)


def right_context_sentence(rng: random.Random) -> tuple[list[str], list[str]]:
    """Words and BIO tags of one sentence: fillers with 1-3 `name... cue` spans, typed by the cue."""
    words: list[str] = []
    tags: list[str] = []
    for _ in range(rng.randint(1, 3)):
        for _ in range(rng.randint(1, 4)):
            words.append(rng.choice(FILLER_WORDS))
            tags.append("O")
        kind = rng.choice(sorted(ENTITY_CUES))
        span = rng.randint(1, 3)
        words += [rng.choice(NAME_WORDS) for _ in range(span)]
        tags += [f"B-{kind}"] + [f"I-{kind}"] * (span - 1)
        words.append(rng.choice(ENTITY_CUES[kind]))
        tags.append("O")
    for _ in range(rng.randint(0, 3)):
        words.append(rng.choice(FILLER_WORDS))
        tags.append("O")
    return words, tags


def early_cue_sentence(rng: random.Random) -> tuple[str, str]:
    """A sentence whose class is set by a cue word at position 0-2, followed by 6-14 distractor words."""
    kind = rng.choice(sorted(CLASS_CUES))
    words = [rng.choice(FILLER_WORDS) for _ in range(rng.randint(0, 2))] + [rng.choice(CLASS_CUES[kind])]
    words += [rng.choice(FILLER_WORDS + NAME_WORDS) for _ in range(rng.randint(6, 14))]
    return " ".join(words), kind


class _SyntheticDataModule(LabelDataModule):
    """Generated splits of a synthetic task (deterministic for a `data_seed`).

    Args:
        num_train: training sentences.
        num_val: validation sentences.
        num_test: test sentences.
        data_seed: seed of the generated sentences (each split has its own stream).
        **kwargs: the `LabelDataModule` arguments (tokenizer, batch_size, max_length, ...).
    """

    split_sizes: ClassVar[dict[str, str]] = {"train": "num_train", "validation": "num_val", "test": "num_test"}

    def __init__(
        self, num_train: int = 3000, num_val: int = 500, num_test: int = 500, data_seed: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.num_train, self.num_val, self.num_test, self.data_seed = num_train, num_val, num_test, data_seed
        if self.tokenizer_source is None:
            self.tokenizer_source = self.hparams["tokenizer"] = build_tokenizer()

    def _rng(self, split: Split) -> random.Random:
        return random.Random(f"{self.data_seed}-{split}")

    def _size(self, split: Split) -> int:
        return getattr(self, self.split_sizes[split])


class RightContextNER(_SyntheticDataModule):
    """Synthetic NER whose entity types are decided by a cue word to the right of each span.


    Args: those of `_SyntheticDataModule` (split sizes, `data_seed`) and `LabelDataModule`.
    """

    task = "token"
    name = "right_context_ner"
    default_label_names: ClassVar[list[str]] = ["O"] + [f"{p}-{t}" for t in sorted(ENTITY_CUES) for p in "BI"]

    def load_split(self, split: Split) -> datasets.Dataset:
        """Generate a split's sentences (deterministic)."""
        rng, ids = self._rng(split), {name: i for i, name in enumerate(self.label_names)}
        rows = [right_context_sentence(rng) for _ in range(self._size(split))]
        return datasets.Dataset.from_dict(
            {"tokens": [w for w, _ in rows], "tags": [[ids[t] for t in tags] for _, tags in rows]}
        )


class EarlyCueClassification(_SyntheticDataModule):
    """Synthetic sentence classification whose class is decided by a cue word near the start.


    Args: those of `_SyntheticDataModule` (split sizes, `data_seed`) and `LabelDataModule`.
    """

    task = "sequence"
    name = "early_cue_cls"
    default_label_names: ClassVar[list[str]] = sorted(CLASS_CUES)

    def load_split(self, split: Split) -> datasets.Dataset:
        """Generate a split's sentences (deterministic)."""
        rng, ids = self._rng(split), {name: i for i, name in enumerate(self.label_names)}
        rows = [early_cue_sentence(rng) for _ in range(self._size(split))]
        return datasets.Dataset.from_dict({"text": [t for t, _ in rows], "label": [ids[k] for _, k in rows]})
