"""Benchmark 3: what removing the causal mask costs: causal vs bidirectional vs bidirectional-from-layer-k.

    python -m experiments.benchmarks.bidirectional_cost                  # ~1 min on 2 CPU cores
    python -m experiments.benchmarks.bidirectional_cost --device cuda --dtype bfloat16 --seq-len 256  # on a GPU
    python -m experiments.benchmarks.bidirectional_cost --tiny           # seconds: the variant the tests run

The three variants are `LabelSupervisedModule`s with the same random weights (benchmark LLaMA, LoRA r=12, AdamW)
and differ only in the mask strategy; each passes the attention probe first. They train on the same batches
(our SST-2 data path, or random tokens of one length with `--seq-len`), interleaved step by step (step i of every
variant runs back to back), so CPU contention hits all alike. Reported: median time per training step and its
ratio to causal, and the peak memory of one training step on the largest batch: on CUDA
`torch.cuda.max_memory_allocated`; on CPU the peak of live tensor bytes (parameters, gradients, optimizer state,
activations, temporaries) from the allocator events that `torch.profiler` records (`profile_memory=True`).
`peak_above_static` subtracts parameters, buffers and optimizer state (what lives between steps), leaving
activations, gradients and temporaries.
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import lightning
import torch

from core.hub import load_tokenizer
from experiments.benchmarks import common
from lightning_modules import BidirectionalFromLayer, BidirectionalMask, CausalMask, LabelSupervisedModule
from lightning_modules.label_supervised.pooling import POOLINGS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (`--help`)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per variant")
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--seq-len",
        type=int,
        default=None,
        help="random tokens of this length (no padding); default: SST-2 batches of our data path",
    )
    parser.add_argument("--from-layer", type=int, default=None, help="k of bidirectional-from-layer-k (default L/2)")
    parser.add_argument("--pooling", default="last", choices=["last", "mean", "max"])
    parser.add_argument("--attn", default="sdpa", choices=["sdpa", "eager", "flash_attention_2", "flex_attention"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="backbone weights")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on CPU (1: steadier on a shared CPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="tiny model, few steps (seconds; used by the tests)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.tiny:
        args.steps, args.warmup_steps = 4, 1
    return args


def variants(num_layers: int, from_layer: int | None) -> dict[str, Any]:
    """The mask strategies compared."""
    k = num_layers // 2 if from_layer is None else from_layer
    return {"causal": CausalMask(), "bidirectional": BidirectionalMask(), f"bidir_from_{k}": BidirectionalFromLayer(k)}


def build(args: argparse.Namespace, config: dict, mask: Any, vocab: int, pad: int) -> LabelSupervisedModule:
    """One variant: same seed, weights and LoRA; only the mask differs. Checked by the attention probe."""
    lightning.seed_everything(args.seed, verbose=False)
    module = LabelSupervisedModule(
        backbone_config=config,
        backbone_seed=args.seed,
        mask=mask,
        pooling=POOLINGS[args.pooling](),
        attn_implementation=args.attn,
        dtype=args.dtype,
        num_labels=2,
        pad_token_id=pad,
        vocab_size=vocab,
        verify_mask=False,
    ).to(args.device)
    module.verify_mask()
    return module


def batches(args: argparse.Namespace, count: int) -> tuple[list[dict[str, torch.Tensor]], int, int]:
    """`count` training batches (SST-2 through our data path, or random tokens), and the vocab size and pad id."""
    if args.seq_len is not None:
        generator = torch.Generator().manual_seed(args.seed)
        shape = (args.batch_size, args.seq_len)
        made = [
            {
                "input_ids": torch.randint(3, 32000, shape, generator=generator),
                "attention_mask": torch.ones(shape, dtype=torch.long),
                "labels": torch.randint(0, 2, (args.batch_size,), generator=generator),
            }
            for _ in range(count)
        ]
        return made, 32000, 2
    tokenizer = load_tokenizer(str(common.require_shared(common.LLAMA2_TOKENIZER)))
    data = common.sst2(
        max_length=64,
        batch_size=args.batch_size,
        seed=args.seed,
        max_train_examples=count * args.batch_size,
        max_eval_examples=8,
    )
    data.setup("fit")
    return list(data.train_dataloader())[:count], len(tokenizer), tokenizer.pad_token_id


class Stepper:
    """One training step (forward, loss, backward, AdamW) of a module, timed with device synchronisation."""

    def __init__(self, module: LabelSupervisedModule, device: str) -> None:
        self.module = module.train()
        self.device = device
        self.optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=8e-5)

    def __call__(self, batch: dict[str, torch.Tensor]) -> float:
        batch = {k: v.to(self.device) for k, v in batch.items()}
        self._sync()
        start = time.perf_counter()
        loss, _ = self.module._step(batch)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._sync()
        return time.perf_counter() - start

    def _sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def peak_memory(self, batch: dict[str, torch.Tensor]) -> int:
        """Peak bytes of one training step (CUDA allocator, or live tensor bytes on CPU)."""
        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
            self(batch)
            return torch.cuda.max_memory_allocated()
        return common.cpu_peak_memory(lambda: self(batch))

    def static_memory(self) -> int:
        """Bytes of what lives between steps: parameters, buffers, optimizer state."""
        tensors = [*self.module.parameters(), *self.module.buffers()]
        tensors += [t for state in self.optimizer.state.values() for t in state.values() if torch.is_tensor(t)]
        return sum(t.numel() * t.element_size() for t in tensors)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the variants, interleave their steps, measure peak memory; returns per-variant medians."""
    torch.set_num_threads(args.threads)
    config = common.TINY_LLAMA if args.tiny else common.BENCH_LLAMA
    data, vocab, pad = batches(args, args.warmup_steps + args.steps)
    steppers = {
        name: Stepper(build(args, config, mask, vocab, pad), args.device)
        for name, mask in variants(config["num_hidden_layers"], args.from_layer).items()
    }
    times: dict[str, list[float]] = {name: [] for name in steppers}
    for index, batch in enumerate(data):
        for name, stepper in steppers.items():
            seconds = stepper(batch)
            if index >= args.warmup_steps:
                times[name].append(seconds)
    rows = []
    largest = max(data, key=lambda b: b["input_ids"].numel())
    for name, stepper in steppers.items():
        ratios = [t / c for t, c in zip(times[name], times["causal"])]
        rows.append(
            {
                "variant": name,
                "s_per_step": common.median(times[name]),
                "vs_causal": common.median(ratios),
                "vs_causal_iqr": common.quartiles(ratios),
                "peak_memory_mib": (peak := stepper.peak_memory(largest)) / 2**20,
                "peak_above_static_mib": (peak - stepper.static_memory()) / 2**20,
            }
        )
    tokens = [(int(b["attention_mask"].sum()), b["attention_mask"].numel()) for b in data]
    return {
        "args": vars(args),
        "machine": common.machine(),
        "rows": rows,
        "times": times,
        "batches": len(data),
        "real_tokens": sum(t[0] for t in tokens),
        "padded_tokens": sum(t[1] for t in tokens),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, return the results."""
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    result = run(args)
    source = f"random tokens, length {args.seq_len}" if args.seq_len else "SST-2 batches (our data path)"
    common.print_table(
        f"{args.steps} interleaved steps per variant, batch {args.batch_size}, {source}, {args.device} {args.dtype}, "
        f"{args.attn}; {result['padded_tokens'] / result['batches']:.0f} padded tokens per batch on average "
        f"(padding fraction {result['padded_tokens'] / result['real_tokens'] - 1:.3f})",
        result["rows"],
        ["variant", "s_per_step", "vs_causal", "vs_causal_iqr", "peak_memory_mib", "peak_above_static_mib"],
    )
    print(f"\nmachine: {result['machine']}")
    common.dump(result, args.json)
    return result


if __name__ == "__main__":
    main()
