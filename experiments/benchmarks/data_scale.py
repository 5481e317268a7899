"""Benchmark 5: reading, tokenizing and caching the full SST-2 and CoNLL-2003 training sets; peak RAM.

    python -m experiments.benchmarks.data_scale                      # ~1.5 min on 2 cores
    python -m experiments.benchmarks.data_scale --tiny               # seconds: the variant the tests run

Each measurement runs in a fresh process (so `ru_maxrss` is that job's peak) through our data modules
(`datamodules.SST2`, `datamodules.CoNLL2003`) with the real LLaMA-2 tokenizer: the tokenizer load,
`load_split("train")` (parse the files into an Arrow table, or load it from the cache; SST-2's train split is
train.tsv less the 5% validation hold-out, and all 67,349 lines are parsed) and `encode` (tokenize with
`datasets.map`, or load the cached result: `tokenized_from_cache` says which). The first run starts from an empty
cache folder, the second reuses it. Reported: seconds, sentences/s, tokens/s of each phase, the time to build the
training loader (its length-grouped sampler reads every example's length), and the process's resident memory
after imports and at its peak.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from experiments.benchmarks import common

DATASETS = {"sst2": common.SST2_DIR, "conll2003": common.CONLL_DIR}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (`--help`)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=sorted(DATASETS), choices=sorted(DATASETS))
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=1, help="first/cached pairs, each with a new cache folder")
    parser.add_argument("--tiny", action="store_true", help="only the first 2,000 training examples (tests)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    return parser.parse_args(argv)


def rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(name: str, cache_dir: str, max_length: int, tiny: bool) -> dict[str, Any]:
    """In this process: build the data module, read and tokenize the training split; times, counts, memory."""
    from datamodules import SST2, CoNLL2003  # noqa: PLC0415  (imports are part of the baseline memory)
    from datamodules.base import column  # noqa: PLC0415

    cls = SST2 if name == "sst2" else CoNLL2003
    baseline = rss_mib()
    start = time.perf_counter()
    data = cls(
        data_dir=str(common.require_shared(DATASETS[name])),
        cache_dir=cache_dir,
        tokenizer=str(common.require_shared(common.LLAMA2_TOKENIZER)),
        max_length=max_length,
    )
    tokenizer_len = len(data.tokenizer)  # loads the tokenizer (SentencePiece model converted to a fast one)
    loaded = time.perf_counter()
    raw = data.load_split("train")
    read_count = len(raw)
    if tiny:
        raw = raw.select(range(min(2000, len(raw))))
    parsed = time.perf_counter()
    files_before = set(Path(cache_dir).rglob("cache-*.arrow"))
    encoded = data.encode(raw, "train")
    done = time.perf_counter()
    written = set(Path(cache_dir).rglob("cache-*.arrow")) - files_before
    tokens = sum(column(encoded, "length"))
    data.datasets["train"] = encoded
    batches = len(data.train_dataloader())  # the length-grouped sampler reads every example's length
    loader_s = time.perf_counter() - done
    return {
        "dataset": name,
        "sentences": len(encoded),
        "tokens": tokens,
        "vocab": tokenizer_len,
        "tokenizer_load_s": loaded - start,
        "read_s": parsed - loaded,
        "tokenize_s": done - parsed,
        "read_sentences_per_s": read_count / (parsed - loaded),
        "tokenize_sentences_per_s": len(raw) / (done - parsed),
        "tokenize_tokens_per_s": tokens / (done - parsed),
        "tokenized_from_cache": not written and bool(encoded.cache_files),
        "train_loader_s": loader_s,
        "train_batches": batches,
        "rss_after_imports_mib": baseline,
        "peak_rss_mib": rss_mib(),
    }


def in_subprocess(args: argparse.Namespace, name: str, cache_dir: str) -> dict[str, Any]:
    """Run `measure` in a fresh Python process and read its JSON line."""
    command = [
        sys.executable,
        "-m",
        "experiments.benchmarks.data_scale",
        "--worker",
        name,
        "--cache-dir",
        cache_dir,
        "--max-length",
        str(args.max_length),
    ] + (["--tiny"] if args.tiny else [])
    done = subprocess.run(command, capture_output=True, text=True, cwd=common.ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> dict[str, Any]:
    """First (empty cache) and cached runs of each dataset, `repeats` times."""
    rows = []
    for repeat in range(args.repeats):
        for name in args.datasets:
            with tempfile.TemporaryDirectory() as cache_dir:
                for phase in ("first", "cached"):
                    row = {"run": phase, "repeat": repeat, **in_subprocess(args, name, cache_dir)}
                    rows.append(row)
                    print(f"{name} {phase}: tokenize {row['tokenize_s']:.2f} s, peak RSS {row['peak_rss_mib']:.0f} MiB")
    return {"args": vars(args), "machine": common.machine(), "rows": rows}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark (or, with `--worker`, one measurement), print the table, return the results."""
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.worker, args.cache_dir, args.max_length, args.tiny)))
        return {}
    result = run(args)
    columns = [
        "dataset",
        "run",
        "sentences",
        "tokens",
        "tokenizer_load_s",
        "read_s",
        "tokenize_s",
        "read_sentences_per_s",
        "tokenize_sentences_per_s",
        "tokenize_tokens_per_s",
        "tokenized_from_cache",
        "train_loader_s",
        "rss_after_imports_mib",
        "peak_rss_mib",
    ]
    common.print_table(f"training splits, max_length {args.max_length}, LLaMA-2 tokenizer", result["rows"], columns)
    print(f"\nmachine: {result['machine']}")
    common.dump(result, args.json)
    return result


if __name__ == "__main__":
    main()
