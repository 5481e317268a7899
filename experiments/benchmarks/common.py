"""Shared pieces of the benchmarks: machine description, the tiny LLaMA, SST-2 reading, step timing, statistics.

Every benchmark prints its numbers and returns them as a dict (the tests read the dict). Timings exclude warm-up
steps and are taken between consecutive step ends, so data loading, forward, backward, optimizer and framework
hooks are all inside the timed window.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import datasets
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from datamodules import SST2, LabelDataModule

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("LS_LLAMA_SHARED", ROOT.parent / "shared"))
SST2_DIR = SHARED / "data" / "sst2"
CONLL_DIR = SHARED / "data" / "conll2003"
LLAMA2_TOKENIZER = SHARED / "models" / "llama2-tokenizer-hf"  # adds BOS like the hub's meta-llama/Llama-2-7b-hf

# The benchmark backbone: a 4-layer LLaMA of hidden size 256 (LLaMA's 8/3 MLP ratio, head dim 64), random weights.
BENCH_LLAMA = {
    "model_type": "llama",
    "hidden_size": 256,
    "intermediate_size": 688,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
}
# The tiny variant used by the tests.
TINY_LLAMA = dict(BENCH_LLAMA, hidden_size=64, intermediate_size=128, num_hidden_layers=2)


def require_shared(path: Path) -> Path:
    """Return `path`, or exit with a clear message when ../shared (data, tokenizer) is absent."""
    if not path.exists():
        raise SystemExit(f"{path} is absent: the benchmarks read the shared data/tokenizer next to the repository")
    return path


def machine() -> dict[str, Any]:
    """Date, CPU/GPU and library versions, for the results file."""
    import lightning
    import peft
    import transformers

    cpu = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "lightning": lightning.__version__,
    }


def sst2(**kwargs: Any) -> SST2:
    """Our SST-2 data module over ../shared/data/sst2 with the real LLaMA-2 tokenizer (`test` = the 872 of GLUE
    dev, the paper's test set; `train` = train.tsv less a 5% validation hold-out).

    Args:
        **kwargs: data module arguments (max_length, batch_size, seed, max_train_examples, pack_sequences, ...).
    """
    tokenizer = str(require_shared(LLAMA2_TOKENIZER))
    return SST2(data_dir=str(require_shared(SST2_DIR)), tokenizer=tokenizer, **kwargs)


def raw_split(data: LabelDataModule, split: str) -> datasets.Dataset:
    """A split's raw examples (`text`, `label`) exactly as the data module uses them (its subset included)."""
    return data._limit(data.load_split(split), split)


def batch_tokens(batch: dict[str, torch.Tensor]) -> tuple[int, int, int]:
    """`(examples, real tokens, padded tokens)` of a sequence-classification batch; padded tokens = what the model
    computes on: B * T of a padded batch, S of a packed row (`data.pack_sequences`)."""
    mask = batch["attention_mask"]
    computed = batch["packed_input_ids"].numel() if "packed_input_ids" in batch else mask.numel()
    return len(batch["labels"]), int(mask.sum()), computed


class StepTimer(Callback):
    """Lightning callback: time at the end of every training step, the token counts of every batch, the last loss."""

    def __init__(self) -> None:
        self.ends: list[tuple[float, float]] = []
        self.train: list[tuple[int, int, int]] = []
        self.eval: list[tuple[int, int, int]] = []
        self.last_loss = float("nan")

    def on_train_batch_end(self, trainer: Trainer, module: LightningModule, outputs: Any, batch: Any, idx: int) -> None:
        self.ends.append(clocks())
        self.train.append(batch_tokens(batch))
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.last_loss = float(loss)

    def on_validation_batch_end(
        self, trainer: Trainer, module: LightningModule, outputs: Any, batch: Any, idx: int, dataloader_idx: int = 0
    ) -> None:
        self.eval.append(batch_tokens(batch))

    def on_test_batch_end(
        self, trainer: Trainer, module: LightningModule, outputs: Any, batch: Any, idx: int, dataloader_idx: int = 0
    ) -> None:
        self.eval.append(batch_tokens(batch))


def clocks() -> tuple[float, float]:
    """`(wall-clock, CPU time of this process)` in seconds. CPU time hardly moves when other processes take the
    cores (with one torch thread it is the compute this process did), so ratios of it are steadier on a shared CPU."""
    return time.perf_counter(), time.process_time()


def throughput(ends: Sequence[tuple[float, float]], counts: Sequence[tuple[int, int, int]], warmup: int) -> dict:
    """Examples/s and real/padded tokens/s over the steps after the first `warmup`, timed end to end, by the wall
    clock and by CPU time (`cpu_` keys).

    Args:
        ends: `clocks()` at the end of each step.
        counts: `(examples, real tokens, padded tokens)` of each step's batch, in step order.
        warmup: steps left out of the timed window (at least 1: the window starts at the end of a step).
    """
    warmup = max(warmup, 1)
    if len(ends) <= warmup or len(counts) < len(ends):
        raise ValueError(f"need more than {warmup} timed steps with token counts, got {len(ends)} / {len(counts)}")
    window = counts[warmup : len(ends)]
    examples, real, padded = (sum(c[i] for c in window) for i in range(3))
    result: dict[str, float] = {"steps": len(window)}
    for prefix, clock in (("", 0), ("cpu_", 1)):
        seconds = ends[-1][clock] - ends[warmup - 1][clock]
        result.update(
            {
                f"{prefix}seconds": seconds,
                f"{prefix}examples_per_s": examples / seconds,
                f"{prefix}real_tokens_per_s": real / seconds,
                f"{prefix}padded_tokens_per_s": padded / seconds,
                f"{prefix}s_per_step": seconds / len(window),
            }
        )
    return result


def padding(counts: Sequence[tuple[int, int, int]]) -> dict[str, float]:
    """Padding over all batches: padded tokens / real tokens - 1 (0 = no padding at all, the limit)."""
    real = sum(c[1] for c in counts)
    padded = sum(c[2] for c in counts)
    return {"real_tokens": real, "padded_tokens": padded, "padding_fraction": padded / real - 1}


def cpu_peak_memory(step: Callable[[], Any]) -> int:
    """Peak bytes of live CPU tensors while `step()` runs (allocator events recorded by `torch.profiler`; tensors
    that existed before and were used, like parameters and optimizer state, count from the start)."""
    from torch.profiler._memory_profiler import Action  # noqa: PLC0415  (the data behind export_memory_timeline)

    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True
    ) as profiler:
        step()
    live = peak = 0
    for _, action, _, size in profiler._memory_profile().timeline:
        if action in (Action.PREEXISTING, Action.CREATE):
            live += size
        elif action == Action.DESTROY:
            live -= size
        peak = max(peak, live)
    return peak


def median(values: Sequence[float]) -> float:
    """The median (the benchmarks repeat runs on a shared, noisy CPU)."""
    return statistics.median(values)


def spread(values: Sequence[float]) -> str:
    """`min..max` of repeated measurements, to state the noise."""
    return f"{min(values):.3g}..{max(values):.3g}" if len(values) > 1 else "single run"


def quartiles(values: Sequence[float]) -> str:
    """`q1..q3` of per-step measurements (the middle half), to state their spread."""
    if len(values) < 2:
        return "single value"
    q1, _, q3 = statistics.quantiles(values, n=4)
    return f"{q1:.3g}..{q3:.3g}"


def print_table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Print rows as an aligned plain-text (markdown) table."""

    def fmt(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    cells = [[fmt(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print(f"\n{title}")
    print("| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |")


def dump(result: dict[str, Any], path: str | None) -> None:
    """Write the result as JSON when a path is given (for the results file)."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(result, indent=2, default=str))
