"""Benchmark 2: a bare PyTorch loop vs our Lightning run, same model, batches, optimizer, LoRA and clipping.

    python -m experiments.benchmarks.framework_overhead               # ~3 min on 2 cores (3 interleaved repeats)
    python -m experiments.benchmarks.framework_overhead --tiny        # seconds: the variant the tests run
    python -m experiments.benchmarks.framework_overhead --model tiny --repeats 5 \
        --variants lightning no_progress_bar bar_every_10 log_at_flush quiet      # what the overhead is made of

Both train `LabelSupervisedModule` (the benchmark LLaMA, LoRA r=12, AdamW lr 8e-5, linear decay, gradient clipping
1.0) on the batches of our SST-2 data path (same seed: the same batches in the same order). The Lightning run is set
up as a real run: progress bar, CSV logger (every 50 steps), learning-rate monitor; validation is off in both.
Reported: the steady-state time per step (between step ends, warm-up excluded) as a ratio of totals and as the
median of per-step ratios (step i sees the same batch in both, so this is robust to bursts of CPU contention),
and the whole `fit()` call vs the whole bare loop (set-up, attention probe and teardown included), by the wall
clock and by CPU time (`cpu_`, steadier when other processes share the cores). `--variants` adds ablations: no
progress bar, a bar refreshed every 10 steps, and a prototype module that logs the training loss only on the steps
the loggers write. `--model tiny` makes the model's own compute small, so the framework's fixed cost per step
(`lightning_s_per_step - bare_s_per_step`, in seconds) stands out of the noise.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import warnings
from typing import Any

import lightning
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import LearningRateMonitor, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from transformers import get_linear_schedule_with_warmup
from typing_extensions import override

from core.hub import load_tokenizer
from experiments.benchmarks import common
from lightning_modules import LabelSupervisedModule


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (`--help`)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-examples", type=int, default=1600, help="seeded random subset of SST-2 train")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--warmup-steps", type=int, default=10, help="steps left out of the steady-state timing")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=8e-5)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; medians are reported")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared CPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["lightning"],
        choices=sorted(VARIANTS),
        help="Lightning runs to compare with the bare loop (ablations: see VARIANTS)",
    )
    parser.add_argument("--model", default="bench", choices=["bench", "tiny"], help="4x256 LLaMA, or 2x64")
    parser.add_argument("--tiny", action="store_true", help="tiny model and data (seconds; used by the tests)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.tiny:
        args.train_examples, args.steps, args.warmup_steps, args.repeats, args.model = 160, 12, 2, 1, "tiny"
    return args


def build(args: argparse.Namespace, tokenizer: Any, cls: type = LabelSupervisedModule) -> tuple[Any, Any]:
    """A fresh module (same seed every time) and our data module over the SST-2 subset."""
    lightning.seed_everything(args.seed, verbose=False)
    module = cls(
        backbone_config=common.TINY_LLAMA if args.model == "tiny" else common.BENCH_LLAMA,
        backbone_seed=args.seed,
        optimizer=lambda params: torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0),
        num_labels=2,
        pad_token_id=tokenizer.pad_token_id,
        vocab_size=len(tokenizer),
    )
    data = common.sst2(
        max_length=64,
        batch_size=args.batch_size,
        seed=args.seed,
        max_train_examples=args.train_examples,
        max_eval_examples=8,
    )
    data.setup("fit")
    return module, data


def run_bare(args: argparse.Namespace, module: LabelSupervisedModule, data: Any) -> dict[str, Any]:
    """The bare loop: forward, cross-entropy, backward, clip, AdamW, scheduler; nothing else."""
    start = common.clocks()
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, args.steps)
    module.train()
    ends: list[tuple[float, float]] = []
    for _, batch in zip(range(args.steps), data.train_dataloader()):
        logits = module(batch["input_ids"], batch["attention_mask"])  # (B, C)
        loss = F.cross_entropy(logits, batch["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        ends.append(common.clocks())
    return {"ends": ends, "total": elapsed(start), "final_loss": loss.item()}


class LogAtFlushModule(LabelSupervisedModule):
    """Prototype: log the training loss only on the steps the loggers write (`log_every_n_steps`), not every step
    (`self.log` moves its result object to the device on every call: about 1 ms of Python per call here)."""

    @override
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            return super().training_step(batch, batch_idx)
        loss, _ = self._step(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss is {loss.item()} at global step {self.global_step}")
        return loss


# Lightning runs: (module class, progress bar refresh rate, 0 = no bar). `lightning` is set up as a real run (the
# default bar refreshes every step); the others are ablations.
VARIANTS = {
    "lightning": (LabelSupervisedModule, 1),
    "no_progress_bar": (LabelSupervisedModule, 0),
    "bar_every_10": (LabelSupervisedModule, 10),
    "log_at_flush": (LogAtFlushModule, 1),
    "quiet": (LogAtFlushModule, 0),
}


def run_lightning(args: argparse.Namespace, module: LabelSupervisedModule, data: Any, bar: int = 1) -> dict:
    """Our run: `Trainer.fit` with a progress bar (refreshed every `bar` steps; 0 = none), CSV logging and a
    learning-rate monitor, as configured for real."""
    timer = common.StepTimer()
    callbacks = [timer, LearningRateMonitor(logging_interval="step")] + ([TQDMProgressBar(bar)] if bar else [])
    with tempfile.TemporaryDirectory() as logs:
        trainer = lightning.Trainer(
            accelerator="cpu",
            devices=1,
            max_steps=args.steps,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            gradient_clip_val=1.0,
            log_every_n_steps=50,
            logger=CSVLogger(logs),
            callbacks=callbacks,
            enable_checkpointing=False,
            enable_progress_bar=bar > 0,
        )
        start = common.clocks()
        trainer.fit(module, datamodule=data)
        total = elapsed(start)
    return {"ends": timer.ends, "total": total, "final_loss": timer.last_loss}


def elapsed(start: tuple[float, float]) -> tuple[float, float]:
    """Wall-clock and CPU seconds since `start = common.clocks()`."""
    return tuple(b - a for a, b in zip(start, common.clocks()))


def step_times(ends: list[tuple[float, float]], warmup: int, clock: int) -> list[float]:
    """Durations of the steps after `warmup` (end to end) on one clock (0 = wall, 1 = CPU)."""
    return [b[clock] - a[clock] for a, b in zip(ends[warmup - 1 : -1], ends[warmup:])]


def compare(args: argparse.Namespace, bare: dict, ours: dict) -> dict[str, float]:
    """Overheads of one repeat, by the wall clock and by CPU time (`cpu_`): steady state (ratio of the timed totals,
    and the median of per-step ratios) and the whole call (set-up, attention probe and teardown included)."""
    result: dict[str, float] = {}
    for prefix, clock in (("", 0), ("cpu_", 1)):
        bare_steps = step_times(bare["ends"], args.warmup_steps, clock)
        ours_steps = step_times(ours["ends"], args.warmup_steps, clock)
        result.update(
            {
                f"{prefix}bare_s_per_step": sum(bare_steps) / len(bare_steps),
                f"{prefix}lightning_s_per_step": sum(ours_steps) / len(ours_steps),
                f"{prefix}steady_overhead": sum(ours_steps) / sum(bare_steps) - 1,
                f"{prefix}overhead_s_per_step": (sum(ours_steps) - sum(bare_steps)) / len(bare_steps),
                f"{prefix}per_step_overhead_median": common.median([o / b for o, b in zip(ours_steps, bare_steps)]) - 1,
                f"{prefix}bare_total_s": bare["total"][clock],
                f"{prefix}lightning_total_s": ours["total"][clock],
                f"{prefix}total_overhead": ours["total"][clock] / bare["total"][clock] - 1,
            }
        )
    result.update(bare_final_loss=bare["final_loss"], lightning_final_loss=ours["final_loss"])
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Interleaved repeats (the order alternates); returns every repeat and the medians."""
    torch.set_num_threads(args.threads)
    tokenizer = load_tokenizer(str(common.require_shared(common.LLAMA2_TOKENIZER)))
    repeats: list[dict[str, dict]] = []
    names = ["bare", *args.variants]
    for repeat in range(args.repeats):
        results = {}
        for name in names if repeat % 2 == 0 else names[::-1]:
            if name == "bare":
                results[name] = run_bare(args, *build(args, tokenizer))
            else:
                cls, bar = VARIANTS[name]
                results[name] = run_lightning(args, *build(args, tokenizer, cls), bar=bar)
        repeats.append({name: compare(args, results["bare"], results[name]) for name in args.variants})
        for name, numbers in repeats[-1].items():
            print(
                f"repeat {repeat}: {name}: steady-state overhead {numbers['steady_overhead']:+.1%} (wall), "
                f"{numbers['cpu_steady_overhead']:+.1%} (CPU time)"
            )
    summary = {}
    for name in args.variants:
        keys = repeats[0][name].keys()
        summary[name] = {key: common.median([r[name][key] for r in repeats]) for key in keys}
        summary[name]["noise"] = {key: common.spread([r[name][key] for r in repeats]) for key in keys}
    return {"args": vars(args), "machine": common.machine(), "repeats": repeats, "summary": summary}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, return the results."""
    args = parse_args(argv)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    result = run(args)
    columns = [
        "cpu_bare_s_per_step",
        "cpu_lightning_s_per_step",
        "cpu_overhead_s_per_step",
        "cpu_steady_overhead",
        "cpu_per_step_overhead_median",
        "cpu_total_overhead",
        "steady_overhead",
        "total_overhead",
    ]
    rows = [
        {"variant": name, **{key: f"{numbers[key]:.4g} [{numbers['noise'][key]}]" for key in columns}}
        for name, numbers in result["summary"].items()
    ]
    common.print_table(
        f"bare loop vs Lightning, {args.model} model, {args.steps} steps (timed after {args.warmup_steps}); median "
        f"[range] of {args.repeats} interleaved repeats; overhead = Lightning / bare - 1; cpu_ = CPU time",
        rows,
        ["variant", *columns],
    )
    print(f"\nmachine: {result['machine']}")
    common.dump(result, args.json)
    return result


if __name__ == "__main__":
    main()
