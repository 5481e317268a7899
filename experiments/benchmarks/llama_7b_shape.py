"""Benchmark 4: LLaMA-2-7B/13B-shaped LS-LLaMA with LoRA on a GPU: peak memory, tokens/s, MFU; and the memory budget.

    python -m experiments.benchmarks.llama_7b_shape --budget-only          # the arithmetic, no model built
    python -m experiments.benchmarks.llama_7b_shape                        # 7B, seq 64/128/256, causal+bidir (GPU)
    python -m experiments.benchmarks.llama_7b_shape --shape 13b --seq-lens 128
    python -m experiments.benchmarks.llama_7b_shape --gradient-checkpointing off on --lora-targets qv all-linear
    python -m experiments.benchmarks.llama_7b_shape --weights fp32-autocast --attn flash_attention_2
    python -m experiments.benchmarks.llama_7b_shape --shape tiny --device cpu   # seconds: the variant the tests run

The backbone is a random one of the shape, built by `LabelSupervisedModule` itself (mask strategy, last-token
pooling head, peft LoRA, `_step`) under `torch.device(--device)`: its weights are drawn directly on the device in
their dtype (no download, no CPU or fp32 copy). `--weights nf4` loads it quantized (QLoRA, `model.quantization`).
Every setting is trained for a few steps at batch 8 on random tokens (no padding) with AdamW under bf16 autocast
(the CLI's `bf16-mixed` on a GPU); the attention probe runs first, so a bidirectional row is truly bidirectional.

MFU = model FLOPs per step / step time / the GPU's peak dense bf16 FLOP/s, with model FLOPs (frozen base + LoRA):
    tokens * (4 * N_frozen + 6 * N_lora) + 12 * layers * batch * seq^2 * hidden
- 2 * N_frozen per token forward, 2 * N_frozen backward for the activation gradients only (frozen weights get no
  weight gradient), where N_frozen = the transformer blocks' linear weights (embeddings are lookups, no LM head);
- 6 * N_lora for the adapters (forward, activation and weight gradients);
- attention scores and weighted values: 4 * seq^2 * hidden per layer and sequence forward, twice that backward,
  counted in full for causal rows too (what a causal kernel may skip is not subtracted);
- recomputation under gradient checkpointing is not counted (MFU, not hardware FLOPs utilisation).
"""

from __future__ import annotations

import argparse
import gc
import math
import resource
import time
import warnings
from typing import Any

import torch

from experiments.benchmarks import common
from lightning_modules import BidirectionalMask, CausalMask, LabelSupervisedModule

SHAPES = {
    "7b": {
        "model_type": "llama",
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 32000,
    },
    "13b": {
        "model_type": "llama",
        "hidden_size": 5120,
        "intermediate_size": 13824,
        "num_hidden_layers": 40,
        "num_attention_heads": 40,
        "num_key_value_heads": 40,
        "vocab_size": 32000,
    },
    "70b": {  # LLaMA-2-70B: grouped-query attention, 8 key/value heads
        "model_type": "llama",
        "hidden_size": 8192,
        "intermediate_size": 28672,
        "num_hidden_layers": 80,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "vocab_size": 32000,
    },
    "tiny": dict(common.TINY_LLAMA, vocab_size=32000),
}
TARGETS = {
    "qv": ["q_proj", "v_proj"],
    "attention": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "all-linear": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}
# Peak dense bf16 tensor FLOP/s (datasheets), matched against torch.cuda.get_device_name().
PEAK_TFLOPS = {
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.4,
    "H200": 989.4,
    "A100": 312.0,
    "RTX 4090": 165.2,
    "L40S": 362.0,
    "A10G": 70.0,
    "L4": 121.0,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (`--help`)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="7b", choices=sorted(SHAPES))
    parser.add_argument("--seq-lens", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--masks", nargs="+", default=["causal", "bidirectional"], choices=["causal", "bidirectional"])
    parser.add_argument("--lora-targets", nargs="+", default=["qv"], choices=sorted(TARGETS))
    parser.add_argument("--gradient-checkpointing", nargs="+", default=["off"], choices=["off", "on"])
    parser.add_argument("--attn", nargs="+", default=["sdpa"], help="sdpa, flash_attention_2, eager")
    parser.add_argument(
        "--weights",
        nargs="+",
        default=["bf16"],
        choices=["bf16", "fp32-autocast", "nf4"],
        help="bf16 weights (LoRA and head fp32), fp32 weights with bf16 autocast, or NF4 (QLoRA; bitsandbytes)",
    )
    parser.add_argument(
        "--layers",
        type=int,
        default=None,
        help="override the number of layers (e.g. the 7B width with 2 layers on a CPU)",
    )
    parser.add_argument("--lora-r", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per setting")
    parser.add_argument("--warmup-steps", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--peak-tflops", type=float, default=None, help="peak bf16 TFLOP/s (default: from GPU name)")
    parser.add_argument("--budget-only", action="store_true", help="print the memory budget and stop")
    parser.add_argument(
        "--build-only",
        action="store_true",
        help="only build each setting (no probe, no training): build time and memory (CPU: peak RSS)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    args.shape_config = dict(SHAPES[args.shape])
    if args.layers:
        args.shape_config["num_hidden_layers"] = args.layers
    return args


# ---------------------------------------------------------------------------------------------- arithmetic
def linear_shapes(shape: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """`(in, out)` features of each linear layer of one LLaMA block."""
    hidden, ffn = shape["hidden_size"], shape["intermediate_size"]
    kv = hidden * shape["num_key_value_heads"] // shape["num_attention_heads"]
    return {
        "q_proj": (hidden, hidden),
        "k_proj": (hidden, kv),
        "v_proj": (hidden, kv),
        "o_proj": (hidden, hidden),
        "gate_proj": (hidden, ffn),
        "up_proj": (hidden, ffn),
        "down_proj": (ffn, hidden),
    }


def parameter_counts(shape: dict[str, Any], targets: list[str], r: int, num_labels: int = 2) -> dict[str, int]:
    """Frozen linear weights of the blocks, all backbone weights, LoRA weights and head weights."""
    layers, hidden = shape["num_hidden_layers"], shape["hidden_size"]
    linears = linear_shapes(shape)
    frozen_linear = layers * sum(i * o for i, o in linears.values())
    norms = layers * 2 * hidden + hidden
    return {
        "frozen_linear": frozen_linear,
        "backbone": frozen_linear + norms + shape["vocab_size"] * hidden,
        "lora": layers * sum(r * (linears[t][0] + linears[t][1]) for t in targets),
        "head": hidden * num_labels,
    }


def model_flops(shape: dict[str, Any], counts: dict[str, int], batch: int, seq: int) -> float:
    """FLOPs of one training step (formula in the module docstring)."""
    tokens = batch * seq
    attention = 12 * shape["num_hidden_layers"] * batch * seq**2 * shape["hidden_size"]
    return tokens * (4 * counts["frozen_linear"] + 6 * counts["lora"]) + attention


def memory_budget(shape_name: str, r: int = 12) -> list[dict[str, Any]]:
    """Weights in bf16, trainable weights + gradients + AdamW states in fp32, and the checkpoint (trainable only)."""
    rows = []
    for targets in ("qv", "all-linear"):
        counts = parameter_counts(SHAPES[shape_name], TARGETS[targets], r)
        trainable = counts["lora"] + counts["head"]
        rows.append(
            {
                "shape": shape_name,
                "lora_targets": targets,
                "backbone_params": counts["backbone"],
                "weights_bf16_gib": counts["backbone"] * 2 / 2**30,
                "trainable_params": trainable,
                "trainable_fp32+grad+adam_mib": trainable * (4 + 4 + 8) / 2**20,
                "checkpoint_fp32_mib": trainable * 4 / 2**20,
                "static_total_gib": (counts["backbone"] * 2 + trainable * 16) / 2**30,
            }
        )
    return rows


# NF4 with double quantization (QLoRA): 4 bits per weight, an 8-bit scale per block of 64 weights, and an fp32
# scale per 256 of those blocks. Weights outside the linear layers (embeddings, norms) stay unquantized and are upcast
# to fp32 by peft's prepare_model_for_kbit_training.
NF4_BYTES_PER_WEIGHT = 0.5 + 1 / 64 + 4 / (64 * 256)
GIB_24 = 24e9 / 2**30  # a "24 GB" card: 22.35 GiB, of which ~1 GiB goes to the CUDA context and allocator slack


def activation_bytes(shape: dict[str, Any], batch: int, seq: int, lora_targets: int, checkpointing: bool) -> float:
    """Bytes of activations kept for the backward of a LoRA step in bf16 (sdpa/flash attention, no T x T matrix).

    Per layer, with s*b*h = tokens x hidden and s*b*i = tokens x MLP width: the two RMSNorm inputs in fp32 (8 sbh),
    q, k, v and the attention output (8 sbh), each LoRA target's dropout output and mask (3 sbh), the SwiGLU gate,
    up and activation outputs (6 sbi); frozen linear layers keep no input (they need no weight gradient). With
    gradient checkpointing each layer keeps only its input (2 sbh) and one layer is recomputed at a time.
    """
    tokens = batch * seq
    sbh, sbi = tokens * shape["hidden_size"], tokens * shape["intermediate_size"]
    per_layer = sbh * (16 + 3 * lora_targets) + 6 * sbi
    layers = shape["num_hidden_layers"]
    return layers * 2 * sbh + per_layer if checkpointing else layers * per_layer


def qlora_budget(batch: int = 8, seq: int = 128, r: int = 12) -> list[dict[str, Any]]:
    """Memory of a LoRA (q, v) step at `batch x seq` for 7B, 13B and 70B, bf16 vs NF4 weights, with and without
    gradient checkpointing: weights + LoRA/head with gradients and AdamW + activations; fits a 24 GB card?"""
    rows = []
    for name in ("7b", "13b", "70b"):
        shape = SHAPES[name]
        counts = parameter_counts(shape, TARGETS["qv"], r)
        unquantized = counts["backbone"] - counts["frozen_linear"]  # embeddings and norms
        trainable = (counts["lora"] + counts["head"]) * 16  # fp32 weights, gradients, AdamW moments
        for weights in ("bf16", "nf4"):
            if weights == "bf16":
                weight_bytes = counts["backbone"] * 2
            else:
                weight_bytes = counts["frozen_linear"] * NF4_BYTES_PER_WEIGHT + unquantized * 4
            for checkpointing in (False, True):
                activations = activation_bytes(shape, batch, seq, 2, checkpointing)
                total = (weight_bytes + trainable + activations) / 2**30
                rows.append(
                    {
                        "shape": name,
                        "weights": weights,
                        "checkpointing": "on" if checkpointing else "off",
                        "weights_gib": weight_bytes / 2**30,
                        "lora_adam_gib": trainable / 2**30,
                        "activations_gib": activations / 2**30,
                        "total_gib": total,
                        "fits_24gb": total + 1.0 <= GIB_24,
                    }
                )
    return rows


# ------------------------------------------------------------------------------------------------ building
def build(args: argparse.Namespace, setting: dict[str, Any]) -> LabelSupervisedModule:
    """The module of one setting, on `args.device`, after the attention probe (not with `--build-only`)."""
    with torch.device(args.device):  # random weights drawn on the device, in their dtype: no CPU or fp32 copy
        module = build_module(args, setting)
    module.to(args.device)
    if not args.build_only:
        with torch.autocast(torch.device(args.device).type, dtype=torch.bfloat16):
            module.verify_mask()
    return module


def build_module(args: argparse.Namespace, setting: dict[str, Any]) -> LabelSupervisedModule:
    """The `LabelSupervisedModule` of one setting (random backbone of the shape, LoRA, mask, dtype)."""
    return LabelSupervisedModule(
        backbone_config=args.shape_config,
        mask=CausalMask() if setting["mask"] == "causal" else BidirectionalMask(),
        lora_r=args.lora_r,
        lora_target_modules=TARGETS[setting["lora_targets"]],
        attn_implementation=setting["attn"],
        dtype="float32" if setting["weights"] == "fp32-autocast" else "bfloat16",
        gradient_checkpointing=setting["gradient_checkpointing"] == "on",
        backbone_seed=args.seed,
        num_labels=2,
        pad_token_id=2,
        vocab_size=SHAPES[args.shape]["vocab_size"],
        quantization="nf4" if setting.get("weights") == "nf4" else None,
        verify_mask=False,
    )


def build_row(args: argparse.Namespace, setting: dict[str, Any]) -> dict[str, Any]:
    """Build one setting and report the time and memory it took (the process's peak RSS on a CPU)."""
    start = time.perf_counter()
    module = build(args, setting)
    row = dict(setting, build_s=time.perf_counter() - start)
    if torch.device(args.device).type == "cuda":
        row["allocated_gib"] = torch.cuda.memory_allocated() / 2**30
    else:
        row["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    base = [p for n, p in module.backbone.named_parameters() if "lora_" not in n]
    row["weights_gib"] = sum(p.numel() * p.element_size() for p in base) / 2**30
    row["weight_dtypes"] = sorted({str(p.dtype) for p in base})
    return row


# ------------------------------------------------------------------------------------------------- running
def train_steps(args: argparse.Namespace, module: LabelSupervisedModule, seq: int) -> dict[str, float]:
    """Warm-up + timed steps at batch `args.batch_size` and length `seq`; peak memory over all of them."""
    device = torch.device(args.device)
    optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=8e-5)
    generator = torch.Generator().manual_seed(args.seed)
    shape = (args.batch_size, seq)
    batch = {
        "input_ids": torch.randint(3, SHAPES[args.shape]["vocab_size"], shape, generator=generator),
        "attention_mask": torch.ones(shape, dtype=torch.long),
        "labels": torch.randint(0, 2, (args.batch_size,), generator=generator),
    }
    batch = {k: v.to(device) for k, v in batch.items()}

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss, _ = module._step(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for index in range(args.warmup_steps + args.steps):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        if index >= args.warmup_steps:
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else common.cpu_peak_memory(step)
    return {"s_per_step": common.median(times), "peak_memory_gib": peak / 2**30}


def sync(device: torch.device) -> None:
    """Wait for the GPU, so that wall-clock time covers the step."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_flops(args: argparse.Namespace) -> float | None:
    """Peak dense bf16 FLOP/s of the device: `--peak-tflops`, else looked up by GPU name, else None."""
    if args.peak_tflops:
        return args.peak_tflops * 1e12
    if torch.device(args.device).type != "cuda":
        return None
    name = torch.cuda.get_device_name()
    for key, tflops in PEAK_TFLOPS.items():  # ordered: specific names before general ones
        if key in name:
            return tflops * 1e12
    return None


def settings(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every combination of the switches, sequence lengths innermost (one model per setting)."""
    return [
        {"lora_targets": t, "weights": w, "attn": a, "gradient_checkpointing": g, "mask": m}
        for t in args.lora_targets
        for w in args.weights
        for a in args.attn
        for g in args.gradient_checkpointing
        for m in args.masks
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build each setting, train it at every sequence length, and collect memory, tokens/s and MFU."""
    shape, peak, rows = args.shape_config, peak_flops(args), []
    if args.build_only:
        rows = [build_row(args, setting) for setting in settings(args)]
        return {"args": vars(args), "machine": common.machine(), "rows": rows}
    for setting in settings(args):
        module = None
        try:
            module = build(args, setting)
            counts = parameter_counts(shape, TARGETS[setting["lora_targets"]], args.lora_r)
            for seq in args.seq_lens:
                row = dict(setting, seq_len=seq, batch=args.batch_size)
                try:
                    row.update(train_steps(args, module, seq))
                except torch.cuda.OutOfMemoryError:
                    row["error"] = "out of memory"
                    rows.append(row)
                    torch.cuda.empty_cache()
                    continue
                flops = model_flops(shape, counts, args.batch_size, seq)
                row["tokens_per_s"] = args.batch_size * seq / row["s_per_step"]
                row["tflops_per_s"] = flops / row["s_per_step"] / 1e12
                row["mfu"] = flops / row["s_per_step"] / peak if peak else math.nan
                rows.append(row)
                print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
        except torch.cuda.OutOfMemoryError:
            rows.append(dict(setting, error="out of memory while building"))
        finally:
            del module
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    return {
        "args": vars(args),
        "machine": common.machine(),
        "peak_tflops": peak and peak / 1e12,
        "rows": rows,
        "budget": memory_budget(args.shape, args.lora_r),
    }


def device_name(result: dict[str, Any]) -> str:
    """The GPU's name, else the CPU's."""
    return result["machine"]["gpu"] or result["machine"]["cpu"]


def shape_label(args: argparse.Namespace) -> str:
    """`layers x hidden` of the model run."""
    return f"{args.shape_config['num_hidden_layers']} layers x {args.shape_config['hidden_size']}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Print the memory budget, then (unless `--budget-only`) run and print the table."""
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    budget = [row for name in ("7b", "13b", "70b") for row in memory_budget(name, args.lora_r)]
    common.print_table(f"memory budget, LoRA r={args.lora_r} (activations not included)", budget, list(budget[0]))
    qlora = qlora_budget(args.batch_size, 128, args.lora_r)
    common.print_table(
        f"QLoRA vs bf16, LoRA r={args.lora_r} on q/v, batch {args.batch_size} x seq 128, activations estimated "
        "(activation_bytes); fits = total + 1 GiB of CUDA context under 24 GB",
        qlora,
        list(qlora[0]),
    )
    if args.budget_only:
        return {"budget": budget, "qlora_budget": qlora}
    result = run(args)
    result["budget"] = budget
    columns = [
        "lora_targets",
        "weights",
        "attn",
        "gradient_checkpointing",
        "mask",
        "seq_len",
        "batch",
        "s_per_step",
        "tokens_per_s",
        "tflops_per_s",
        "mfu",
        "peak_memory_gib",
        "error",
    ]
    if args.build_only:
        columns = [*settings(args)[0], "build_s", "weights_gib", "weight_dtypes", "allocated_gib", "peak_rss_gib"]
    common.print_table(
        f"{args.shape} ({shape_label(args)}) on {args.device} ({device_name(result)}), "
        f"peak {result.get('peak_tflops')} TFLOP/s",
        result["rows"],
        columns,
    )
    print(f"\nmachine: {result['machine']}")
    common.dump(result, args.json)
    return result


if __name__ == "__main__":
    main()
