"""Benchmark 12: where the CPU of our `Trainer.test` goes, against the peer's `Trainer.evaluate()` (issue 19).

    python -m experiments.benchmarks.evaluation_cost                  # ~2 min on 2 busy cores (5 repeats)
    python -m experiments.benchmarks.evaluation_cost --profile 30     # + cProfile of our call: top 30 functions
    python -m experiments.benchmarks.evaluation_cost --model tiny     # a 2 x 64 LLaMA: the framework's cost stands out
    python -m experiments.benchmarks.evaluation_cost --model tiny --step-log --repeats 30  # + per-step log ablation
    python -m experiments.benchmarks.evaluation_cost --tiny           # seconds: the variant the tests run

The models and data of `reference_vs_ours.py --peer` (its helpers build them): the benchmark LLaMA (4 x 256,
random, LoRA r=12 q/v), the 872 SST-2 test sentences (GLUE dev), batch 8, fp32, one thread; both sides are trained
for a few steps first (`--steps`), then evaluated again and again, interleaved (the order alternates), and timed
by the CPU time of this process (steady when other processes share the cores). Timed per repeat:

- `ours_call`: our whole `lightning.Trainer(...).test(module, datamodule=data)` on a data module that has its test
  split already tokenized; `ours_call_setup`: the same on the data module as `reference_vs_ours.py` hands it over
  (set up for the fit only: reading and tokenizing the test split happen inside the call, while the peer's split
  is tokenized before its timed call);
- `peer_call`: the peer's whole `Trainer.evaluate()`;
- `ours_bare`, `peer_bare`: each model's forward alone (`torch.inference_mode`, eval mode) over its own
  evaluation batches, collated beforehand; `ours_loader`, `peer_loader`: iterating each side's data loader alone.

Fixed cost = whole call - bare forward, reported in CPU ms per batch and as a share of the call. Accuracy of our
call and of our bare loop must agree (the same predictions). `--step-log` adds `ours_call_step_log`: our call with
the evaluation loss handed to `self.log` in every step, as before issue 19 (`StepLoggedLoss`), on a copy of the
same weights; `step_log_ms_per_batch` is its median per-batch excess over `ours_call` (paired by repeat).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import pstats
import tempfile
import warnings
from collections.abc import Callable
from typing import Any

import lightning
import torch

from core.hub import load_tokenizer
from experiments.benchmarks import common, reference_vs_ours
from lightning_modules import LabelSupervisedModule

TIMED = ("ours_call_setup", "ours_call", "peer_call", "ours_bare", "peer_bare", "ours_loader", "peer_loader")


class StepLoggedLoss(LabelSupervisedModule):
    """Ablation: the evaluation loss as it was logged before issue 19, the MeanMetric handed to `self.log` in every
    step (Lightning computes and resets it at the epoch's end), not once in `_log_metrics`."""

    def _eval_step(self, batch: dict[str, torch.Tensor], split: str, metrics: Any) -> None:
        super()._eval_step(batch, split, metrics)
        losses = self.val_loss if split == "val" else self.test_loss
        self.log(f"{split}/loss", losses, on_epoch=True, batch_size=len(batch["labels"]))

    def _log_metrics(self, split: str, metrics: Any) -> None:
        values = metrics.compute()
        self.log_dict(values, sync_dist=False)
        self.log(f"{split}/score", values[f"{split}/acc" if self.task == "sequence" else f"{split}/f1"], prog_bar=True)
        metrics.reset()


def step_logged_copy(module: LabelSupervisedModule) -> StepLoggedLoss:
    """A `StepLoggedLoss` with `module`'s arguments and weights, its attention probe counted as done."""
    copy = StepLoggedLoss(**{**module.hparams, "optimizer": None, "scheduler": None})
    copy.load_state_dict(module.state_dict())
    copy._verified_on = set(getattr(module, "_verified_on", set()))
    return copy


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (`--help`)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-examples", type=int, default=400, help="seeded random subset of SST-2 train")
    parser.add_argument("--eval-examples", type=int, default=None, help="first N of SST-2 test (default: all 872)")
    parser.add_argument("--steps", type=int, default=10, help="training steps of each side before evaluating")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats; medians and ranges reported")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on shared cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="bench", choices=["bench", "tiny"], help="4x256 LLaMA, or 2x64")
    parser.add_argument("--step-log", action="store_true", help="also time the per-step loss logging ablation")
    parser.add_argument("--profile", type=int, default=0, help="cProfile one more call of ours; print the top N")
    parser.add_argument("--profile-out", default=None, help="also write that profile (pstats) to this file")
    parser.add_argument("--tiny", action="store_true", help="tiny model and data (seconds; used by the tests)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    args.progress = False  # reference_vs_ours' trainers read it
    if args.tiny:
        args.train_examples, args.eval_examples, args.steps, args.repeats, args.model = 160, 96, 2, 2, "tiny"
    return args


def cpu_seconds(call: Callable[[], Any]) -> tuple[float, Any]:
    """CPU seconds of this process spent in `call()`, and its result."""
    start = common.clocks()[1]
    result = call()
    return common.clocks()[1] - start, result


@torch.inference_mode()
def bare_forward(model: torch.nn.Module, batches: list[dict[str, torch.Tensor]], ours: bool) -> torch.Tensor:
    """Predicted classes `(N,)` of `model` over `batches`, forward only (ours: input ids and mask; the peer's
    peft model: the whole batch, labels included, as `Trainer.evaluate` hands it)."""
    was_training = model.training
    model.eval()
    preds = []
    for batch in batches:
        logits = model(batch["input_ids"], batch["attention_mask"]) if ours else model(**batch).logits
        preds.append(logits.argmax(-1))
    model.train(was_training)
    return torch.cat(preds)


def ours_test(args: argparse.Namespace, module: LabelSupervisedModule, data: Any) -> float:
    """Our whole test call (a new Trainer, as `reference_vs_ours.run_ours`); returns the test accuracy."""
    evaluator = lightning.Trainer(**reference_vs_ours.trainer_options(args))
    return evaluator.test(module, datamodule=data, verbose=False)[0]["test/acc"]


def without_test_split(data: Any) -> Any:
    """`data` as `reference_vs_ours.run_ours` hands it to the test call: set up for the fit, not yet for the test."""
    data.datasets.pop("test", None)
    return data


def build(args: argparse.Namespace, output_dir: str) -> dict[str, Any]:
    """Both sides, trained for `args.steps` steps, with their evaluation batches collated beforehand."""
    tokenizer = load_tokenizer(str(common.require_shared(common.LLAMA2_TOKENIZER)))
    data = common.sst2(**reference_vs_ours.data_options(args))
    raw = {split: common.raw_split(data, split) for split in ("train", "test")}
    config = common.TINY_LLAMA if args.model == "tiny" else common.BENCH_LLAMA
    module = reference_vs_ours.build_ours(args, config, tokenizer)
    fit = lightning.Trainer(
        max_steps=args.steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        gradient_clip_val=1.0,
        **reference_vs_ours.trainer_options(args),
    )
    fit.fit(module, datamodule=data)
    peer, _, _ = reference_vs_ours.reference_trainer(args, config, tokenizer, raw, module, output_dir, peer=True)
    peer.train()
    data.setup("test")
    return {
        "step_logged": step_logged_copy(module) if args.step_log else None,
        "module": module,
        "data": data,
        "peer": peer,
        "ours_batches": list(data.test_dataloader()),
        "peer_batches": list(peer.get_eval_dataloader()),
    }


def timed_names(args: argparse.Namespace) -> tuple[str, ...]:
    """What is timed in each repeat (`TIMED`, and the ablation with `--step-log`)."""
    return TIMED[:2] + ("ours_call_step_log",) + TIMED[2:] if args.step_log else TIMED


def measure(args: argparse.Namespace, built: dict[str, Any]) -> dict[str, list[float]]:
    """Interleaved repeats of every timed call; CPU seconds per call."""
    module, data, peer = built["module"], built["data"], built["peer"]
    calls: dict[str, Callable[[], Any]] = {
        "ours_call_setup": lambda: ours_test(args, module, without_test_split(data)),
        "ours_call": lambda: ours_test(args, module, data),
        "ours_call_step_log": lambda: ours_test(args, built["step_logged"], data),
        "peer_call": lambda: peer.evaluate()["eval_accuracy"],
        "ours_bare": lambda: bare_forward(module, built["ours_batches"], ours=True),
        "peer_bare": lambda: bare_forward(peer.model, built["peer_batches"], ours=False),
        "ours_loader": lambda: sum(1 for _ in data.test_dataloader()),
        "peer_loader": lambda: sum(1 for _ in peer.get_eval_dataloader()),
    }
    timed = timed_names(args)
    seconds: dict[str, list[float]] = {name: [] for name in timed}
    results: dict[str, Any] = {}
    for repeat in range(args.repeats):
        for name in timed if repeat % 2 == 0 else timed[::-1]:
            spent, results[name] = cpu_seconds(calls[name])
            seconds[name].append(spent)
        print(f"repeat {repeat}: " + ", ".join(f"{n} {seconds[n][-1]:.3f}" for n in timed) + " (CPU s)")
    labels = torch.cat([b["labels"] for b in built["ours_batches"]])
    bare_acc = (results["ours_bare"] == labels).float().mean().item()
    seconds["accuracy"] = [results["ours_call"], results["ours_call_setup"], bare_acc, results["peer_call"]]
    if args.step_log:
        seconds["accuracy"].append(results["ours_call_step_log"])
    return seconds


def summarize(args: argparse.Namespace, built: dict[str, Any], seconds: dict[str, list[float]]) -> dict[str, Any]:
    """Medians and ranges per timed call; the fixed cost of each whole call over its bare forward."""
    batches = {"ours": len(built["ours_batches"]), "peer": len(built["peer_batches"])}
    examples = sum(len(b["labels"]) for b in built["ours_batches"])
    rows = []
    for name in timed_names(args):
        side = name.split("_")[0]
        values = seconds[name]
        row = {
            "timed": name,
            "cpu_s": common.median(values),
            "cpu_s_range": common.spread(values),
            "examples_per_cpu_s": examples / common.median(values),
            "cpu_ms_per_batch": 1000 * common.median(values) / batches[side],
        }
        if "_call" in name:
            fixed = [c - b for c, b in zip(values, seconds[f"{side}_bare"])]
            row["fixed_cpu_ms_per_batch"] = 1000 * common.median(fixed) / batches[side]
            row["fixed_share"] = common.median([f / c for f, c in zip(fixed, values)])
        rows.append(row)
    ratios = {
        name: [p / o for p, o in zip(seconds["peer_call"], seconds[name])] for name in ("ours_call", "ours_call_setup")
    }
    step_log: dict[str, Any] = {}
    if args.step_log:
        excess = [s - c for s, c in zip(seconds["ours_call_step_log"], seconds["ours_call"])]
        step_log = {
            "step_log_ms_per_batch": 1000 * common.median(excess) / batches["ours"],
            "step_log_ms_per_batch_range": common.spread([1000 * e / batches["ours"] for e in excess]),
        }
    return {
        **step_log,
        "examples": examples,
        "batches": batches,
        "rows": rows,
        "ours_vs_peer": {name: common.median(r) for name, r in ratios.items()},
        "ours_vs_peer_range": {name: common.spread(r) for name, r in ratios.items()},
        "accuracy": dict(
            zip(("ours_call", "ours_call_setup", "ours_bare", "peer_call", "ours_call_step_log"), seconds["accuracy"])
        ),
    }


def profile(args: argparse.Namespace, built: dict[str, Any]) -> str:
    """cProfile of one more call of ours as `reference_vs_ours.py` times it (the test split set up inside the call):
    the top functions by cumulative and by own time."""
    profiler = cProfile.Profile()
    profiler.runcall(ours_test, args, built["module"], without_test_split(built["data"]))
    if args.profile_out:
        profiler.dump_stats(args.profile_out)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(args.profile)
    stats.sort_stats("tottime").print_stats(args.profile)
    return out.getvalue()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, return the results."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    with tempfile.TemporaryDirectory() as output_dir:
        built = build(args, output_dir)
        seconds = measure(args, built)
        summary = summarize(args, built, seconds)
        profiled = profile(args, built) if args.profile else ""
    common.print_table(
        f"{summary['examples']} test examples, {summary['batches']} batches; CPU time, medians of {args.repeats} "
        "interleaved repeats [range]; fixed = whole call - bare forward of the same side",
        summary["rows"],
        [
            "timed",
            "cpu_s",
            "cpu_s_range",
            "examples_per_cpu_s",
            "cpu_ms_per_batch",
            "fixed_cpu_ms_per_batch",
            "fixed_share",
        ],
    )
    print(f"\nours / peer (whole call, CPU time): {summary['ours_vs_peer']} [{summary['ours_vs_peer_range']}]")
    if args.step_log:
        print(
            f"per-step loss logging (ablation) costs {summary['step_log_ms_per_batch']:.3f} CPU ms per batch "
            f"[{summary['step_log_ms_per_batch_range']}] (median of per-repeat excesses over ours_call)"
        )
    print(f"accuracy: {summary['accuracy']}")
    if profiled:
        print(profiled)
    result = {"args": vars(args), "machine": common.machine(), "seconds": seconds, "summary": summary}
    result["profile"] = profiled
    print(f"\nmachine: {result['machine']}")
    common.dump(result, args.json)
    return result


if __name__ == "__main__":
    main()
