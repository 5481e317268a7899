"""The one GPU check (issue 13): everything this project has only run on CPUs, in one command, under 5 minutes on
one H100/H200, written to one JSON file.

    python -m experiments.benchmarks.gpu_check --out gpu_check.json          # on a CUDA machine
    python -m experiments.benchmarks.gpu_check --cpu-tiny --out check.json   # the same path on a CPU, tiny shapes

Sections (each one runs on its own; a failure is recorded with its error and the next section still runs):
1. `probe`: the attention probe in bf16 (autocast) for causal, bidirectional and bidirectional-from-layer-k on sdpa,
   on flash_attention_2 (where the flash-attn package is installed), and on sdpa forced onto its flash kernel
   (`sdpa_kernel(FLASH_ATTENTION)`; a batch without padding, the one case that kernel takes). A LLaMA-2-7B-wide
   model with 4 layers.
2. `lora_step`: LLaMA-2-7B-shaped LS-unLLaMA, bf16 weights, LoRA r=12 on q/v, batch 8 x 128: peak memory, tokens/s,
   MFU against the card's bf16 peak (formula in llama_7b_shape.py); `lora_step_flash`: the same on
   flash_attention_2 (where flash-attn is installed).
3. `qlora_step`: the same with `model.quantization: nf4` (bitsandbytes; the random backbone is saved to /dev/shm
   and reloaded quantized, as a hub checkpoint would load).
4. `fsdp_step`: the same model through Lightning `Trainer.fit` with `LoRAFSDPStrategy` (configs/strategy/fsdp.yaml)
   on one device: it runs, its time per step and peak memory, and a checkpoint holding only adapters and head.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import math
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning
import torch
from torch.utils.data import DataLoader

from experiments.benchmarks import common, llama_7b_shape
from lightning_modules import BidirectionalFromLayer, BidirectionalMask, CausalMask, LabelSupervisedModule
from lightning_modules.backbone.fsdp import LoRAFSDPStrategy

MASKS = {"causal": CausalMask, "bidirectional": BidirectionalMask, "bidir_from_2": lambda: BidirectionalFromLayer(2)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (`--help`)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", "--json", dest="json", default="gpu_check.json", help="the JSON file to write")
    parser.add_argument("--cpu-tiny", action="store_true", help="tiny shapes on the CPU (the tests run this)")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    parser.add_argument("--steps", type=int, default=5, help="timed steps per training section")
    parser.add_argument("--warmup-steps", type=int, default=2)
    args = parser.parse_args(argv)
    args.device = "cpu" if args.cpu_tiny else "cuda"
    args.shape = "tiny" if args.cpu_tiny else "7b"
    args.seq = 16 if args.cpu_tiny else 128
    if args.cpu_tiny:
        args.steps, args.warmup_steps = 1, 1
    return args


def shape_args(args: argparse.Namespace, weights: str = "bf16", layers: int | None = None) -> argparse.Namespace:
    """llama_7b_shape's options for one setting (its build and train_steps take them)."""
    options = ["--shape", args.shape, "--device", args.device, "--weights", weights, "--seq-lens", str(args.seq)]
    options += ["--steps", str(args.steps), "--warmup-steps", str(args.warmup_steps), "--masks", "bidirectional"]
    if layers:
        options += ["--layers", str(layers)]
    return llama_7b_shape.parse_args(options)


def setting(attn: str = "sdpa", mask: str = "bidirectional", weights: str = "bf16") -> dict[str, Any]:
    return {"lora_targets": "qv", "weights": weights, "attn": attn, "gradient_checkpointing": "off", "mask": mask}


def free() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------------------------------- probe
def probe(args: argparse.Namespace) -> dict[str, Any]:
    """The attention probe in bf16 for every strategy on sdpa, flash_attention_2 and sdpa's flash kernel."""
    shape = shape_args(args, layers=4)
    impls = ["sdpa"]
    if args.device == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        impls.append("flash_attention_2")
    results: dict[str, Any] = {}
    if "flash_attention_2" not in impls:
        results["flash_attention_2"] = "skipped: " + ("no CUDA" if args.device != "cuda" else "flash-attn missing")
    for impl in impls:
        for name in MASKS:
            module = llama_7b_shape.build(shape, setting(impl, name))  # runs the probe under bf16 autocast
            results[f"{impl}/{name}"] = "passed"
            if impl == "sdpa":
                results[f"sdpa_flash_kernel/{name}"] = flash_kernel_probe(module, MASKS[name](), args.device)
            del module
            free()
    return results


@torch.no_grad()
def flash_kernel_probe(module: LabelSupervisedModule, strategy: Any, device: str) -> str:
    """sdpa restricted to its flash kernel, one unpadded sequence: the first token's state moves, layer by layer,
    exactly where the strategy promises right context, when the last token changes."""
    if device != "cuda":
        return "skipped: the flash kernel needs CUDA"
    from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: PLC0415

    module.eval()
    ids = torch.randint(3, 32000, (1, 9), device=device)
    changed = ids.clone()
    changed[0, -1] = (changed[0, -1] + 1) % 32000
    mask = torch.ones_like(ids)
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION), torch.autocast("cuda", dtype=torch.bfloat16):
        a = module.hidden_states(ids, mask, output_hidden_states=True).hidden_states
        b = module.hidden_states(changed, mask, output_hidden_states=True).hidden_states
    moved = [bool((a[i + 1][0, 0] - b[i + 1][0, 0]).abs().max() > 0) for i in range(len(a) - 1)]
    expected = [strategy.sees_right_context(layer) for layer in range(len(moved))]
    return "passed" if moved == expected else f"FAILED: moved {moved}, expected {expected}"


# -------------------------------------------------------------------------------------------- LoRA steps
def lora_step(args: argparse.Namespace, weights: str = "bf16", attn: str = "sdpa") -> dict[str, Any]:
    """LLaMA-2-7B-shaped LS-unLLaMA LoRA steps at batch 8 x seq: memory, tokens/s, MFU."""
    if weights == "nf4" and importlib.util.find_spec("bitsandbytes") is None:
        return {"skipped": "bitsandbytes is not installed (pip install -e '.[qlora]')"}
    if attn == "flash_attention_2" and (args.device != "cuda" or importlib.util.find_spec("flash_attn") is None):
        return {"skipped": "flash_attention_2 needs CUDA and the flash-attn package"}
    shape = shape_args(args, weights)
    start = time.perf_counter()
    module = llama_7b_shape.build(shape, setting(attn=attn, weights=weights))
    row: dict[str, Any] = {"build_s": time.perf_counter() - start}
    row.update(llama_7b_shape.train_steps(shape, module, args.seq))
    del module
    free()
    counts = llama_7b_shape.parameter_counts(shape.shape_config, llama_7b_shape.TARGETS["qv"], 12)
    flops = llama_7b_shape.model_flops(shape.shape_config, counts, shape.batch_size, args.seq)
    peak = llama_7b_shape.peak_flops(shape) or (1e12 if args.cpu_tiny else None)
    row["tokens_per_s"] = shape.batch_size * args.seq / row["s_per_step"]
    row["tflops_per_s"] = flops / row["s_per_step"] / 1e12
    row["mfu"] = flops / row["s_per_step"] / peak if peak else math.nan
    row["peak_tflops"] = peak and peak / 1e12
    return row


# -------------------------------------------------------------------------------------------------- FSDP
class _Times(lightning.Callback):
    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_train_batch_end(self, *args: Any) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.ends.append(time.perf_counter())


def fsdp_step(args: argparse.Namespace) -> dict[str, Any]:
    """The LoRA model through `Trainer.fit` with `LoRAFSDPStrategy` on one device, and its checkpoint."""
    shape = shape_args(args)
    with torch.device(args.device):
        module = llama_7b_shape.build_module(shape, setting())
    generator = torch.Generator().manual_seed(0)
    steps = args.warmup_steps + args.steps
    ids = torch.randint(3, 32000, (steps * shape.batch_size, args.seq), generator=generator)
    rows = [
        {"input_ids": row, "attention_mask": torch.ones_like(row), "labels": torch.tensor(i % 2), "example_ids": i}
        for i, row in enumerate(ids)
    ]
    loader = DataLoader(rows, batch_size=shape.batch_size)
    backend = "nccl" if args.device == "cuda" else "gloo"
    times = _Times()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as folder:
        trainer = lightning.Trainer(
            accelerator="gpu" if args.device == "cuda" else "cpu",
            devices=1,
            strategy=LoRAFSDPStrategy(process_group_backend=backend),
            precision="bf16-mixed" if args.device == "cuda" else "32-true",
            max_steps=steps,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[times],
            default_root_dir=folder,
        )
        trainer.fit(module, train_dataloaders=loader)
        path = Path(folder) / "fsdp.ckpt"
        trainer.save_checkpoint(path)
        saved = torch.load(path, weights_only=True)["state_dict"]
    seconds = common.median(
        [b - a for a, b in zip(times.ends[args.warmup_steps - 1 :], times.ends[args.warmup_steps :])]
    )
    result = {"s_per_step": seconds, "tokens_per_s": shape.batch_size * args.seq / seconds, "steps": len(times.ends)}
    if torch.cuda.is_available():
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    result["checkpoint_tensors"] = len(saved)
    result["checkpoint_only_adapters_and_head"] = all("lora_" in k or k.startswith("head.") for k in saved)
    result["checkpoint_mib"] = sum(v.numel() * v.element_size() for v in saved.values()) / 2**20
    del module, trainer
    free()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return result


# -------------------------------------------------------------------------------------------------- main
SECTIONS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "probe": probe,
    "lora_step": lora_step,
    "lora_step_flash": lambda args: lora_step(args, attn="flash_attention_2"),
    "qlora_step": lambda args: lora_step(args, weights="nf4"),
    "fsdp_step": fsdp_step,
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run every section (each on its own), write and return the JSON."""
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on a GPU machine, or --cpu-tiny for the CPU variant")
    result: dict[str, Any] = {"args": vars(args), "machine": common.machine()}
    started = time.perf_counter()
    for name in args.sections:
        start = time.perf_counter()
        try:
            result[name] = SECTIONS[name](args)
        except Exception as error:  # noqa: BLE001  (a failed section is a result; the others still run)
            result[name] = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()[-3000:]}
        result[name + "_seconds"] = time.perf_counter() - start
        print(f"{name} ({result[name + '_seconds']:.0f} s): {result[name]}", flush=True)
        free()
    result["total_seconds"] = time.perf_counter() - started
    common.dump(result, args.json)
    print(f"wrote {args.json} ({result['total_seconds']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
