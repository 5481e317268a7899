"""Benchmark 1: the authors' pipeline (rebuilt with public APIs) vs ours, on CPU, same model, data, LoRA and steps.

    python -m experiments.benchmarks.reference_vs_ours                 # 6-15 min on 2 cores (3 repeats)
    python -m experiments.benchmarks.reference_vs_ours --peer --compiled   # + the careful user's Trainer, + compile
    python -m experiments.benchmarks.reference_vs_ours --tiny          # seconds: the variant the tests run

Reference: HF `Trainer` + peft LoRA (r=12, alpha=32, dropout=0.1, peft's default targets, task SEQ_CLS) over
`LlamaForSequenceClassification`; tokenized in `datasets.map(batched=True)` over map batches of 1,000 with
`padding='longest', max_length=64, truncation=True`, then `DataCollatorWithPadding`.
Ours: `LabelSupervisedModule` (same LoRA) + our data path (tokenize once, per-batch padding, length-grouped
training batches, length-sorted evaluation batches) + Lightning `Trainer`.
Both: the same random LLaMA weights (and head), the same SST-2 sentences (read by our `SST2` data module: 1,600 of
train, evaluated on the 872 of GLUE dev, the paper's test set), fp32, batch 8, AdamW at the same lr with linear
decay, gradient clipping 1.0, in one process with the same torch threads. Repeats are interleaved (the order
alternates) and medians reported, by the wall clock and by CPU time (steadier when other processes share the
cores). `--packed` adds ours with padding-free packed batches (`data.pack_sequences`, `core.packing`).

`--peer` adds the pipeline a careful user would pick instead of the authors': the same HF `Trainer` + peft model,
tokenized per example without padding, `DataCollatorWithPadding` padding each batch to its longest, and
`train_sampling_strategy="group_by_length"` (transformers 5's name for `group_by_length=True`: megabatches of 50
batches sorted by length). `DataCollatorWithFlattening` does not apply: it packs a batch into one row, and
`LlamaForSequenceClassification` pools one position per row. `--compiled` adds ours with `model.compile: true`.
Summaries give each pipeline's speed-up over the reference and, with `--peer`, over the peer.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import warnings
from typing import Any

import lightning
import torch
from peft import LoraConfig, get_peft_model
from torchmetrics.functional.classification import multiclass_accuracy
from transformers import (
    AutoConfig,
    DataCollatorWithPadding,
    LlamaForSequenceClassification,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from core.hub import load_backbone, load_tokenizer
from experiments.benchmarks import common
from lightning_modules import LabelSupervisedModule


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (`--help`)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-examples", type=int, default=1600, help="seeded random subset of SST-2 train")
    parser.add_argument(
        "--eval-examples", type=int, default=None, help="first N of SST-2 test = GLUE dev (default: all 872)"
    )
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: one epoch)")
    parser.add_argument("--warmup-steps", type=int, default=10, help="steps left out of the timing")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3, help="same for both (random backbone: LoRA+head learn)")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; medians are reported")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads, same for both (1: steadier on shared cores)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--packed", action="store_true", help="also run ours with packed (padding-free) batches")
    parser.add_argument(
        "--peer", action="store_true", help="also run HF Trainer with length grouping + dynamic padding"
    )
    parser.add_argument("--compiled", action="store_true", help="also run ours with model.compile (torch.compile)")
    parser.add_argument("--progress", action="store_true", help="show both frameworks' progress bars")
    parser.add_argument("--tiny", action="store_true", help="tiny model and data (seconds; used by the tests)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.tiny:
        args.train_examples, args.eval_examples = 160, 96
        args.steps, args.warmup_steps, args.repeats = args.steps or 12, 2, 1
    args.steps = args.steps or args.train_examples // args.batch_size
    return args


# ------------------------------------------------------------------------------------------------- reference
class _CountingCollator:
    """The reference's `DataCollatorWithPadding`, recording the token counts of each batch it builds."""

    def __init__(self, tokenizer: Any) -> None:
        self.inner = DataCollatorWithPadding(tokenizer)
        self.counts: list[tuple[int, int, int]] = []

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self.inner(features)
        self.counts.append(common.batch_tokens(batch))
        return batch


class _StepEnds(TrainerCallback):
    def __init__(self) -> None:
        self.ends: list[tuple[float, float]] = []

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.ends.append(common.clocks())


def reference_tokenize(dataset: Any, tokenizer: Any, max_length: int) -> Any:
    """The authors' tokenization: padding to the longest of each map batch of 1,000 examples."""

    def encode(batch: dict[str, list]) -> dict[str, list]:
        return tokenizer(batch["text"], padding="longest", max_length=max_length, truncation=True)

    return dataset.map(encode, batched=True, batch_size=1000, remove_columns=["text"])


def build_reference(args: argparse.Namespace, config: dict, tokenizer: Any, ours: LabelSupervisedModule) -> Any:
    """`LlamaForSequenceClassification` with the same random weights and head as ours, wrapped by peft (SEQ_CLS)."""
    hf_config = AutoConfig.for_model(num_labels=2, pad_token_id=tokenizer.pad_token_id, **config)
    model = LlamaForSequenceClassification(hf_config)
    base = load_backbone(None, config=dict(config, pad_token_id=tokenizer.pad_token_id), seed=args.seed)
    model.model.load_state_dict(base.state_dict())
    model.score.weight.data.copy_(ours.head.score.weight.data)
    torch.manual_seed(args.seed)
    lora = LoraConfig(task_type="SEQ_CLS", r=12, lora_alpha=32, lora_dropout=0.1)
    return get_peft_model(model, lora)


def peer_tokenize(dataset: Any, tokenizer: Any, max_length: int) -> Any:
    """The careful user's tokenization: each example alone (truncated, not padded); batches are padded later."""

    def encode(batch: dict[str, list]) -> dict[str, list]:
        return tokenizer(batch["text"], max_length=max_length, truncation=True)

    return dataset.map(encode, batched=True, batch_size=1000, remove_columns=["text"])


def reference_trainer(
    args: argparse.Namespace, config: dict, tokenizer: Any, raw: dict, ours: Any, output_dir: str, peer: bool = False
) -> tuple[Trainer, _CountingCollator, _StepEnds]:
    """The reference's (or, with `peer`, the careful user's) HF `Trainer` over the raw `train`/`test` examples,
    not yet trained, with its counting collator and step-end callback."""
    tokenize = peer_tokenize if peer else reference_tokenize
    train = tokenize(raw["train"], tokenizer, args.max_length)
    dev = tokenize(raw["test"], tokenizer, args.max_length)
    collator, step_ends = _CountingCollator(tokenizer), _StepEnds()
    training_args = TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=args.lr,
        weight_decay=0.0,
        max_grad_norm=1.0,
        optim="adamw_torch",
        lr_scheduler_type="linear",
        save_strategy="no",
        eval_strategy="no",
        logging_steps=50,
        report_to="none",
        use_cpu=True,
        seed=args.seed,
        disable_tqdm=not args.progress,
        train_sampling_strategy="group_by_length" if peer else "random",
    )
    trainer = Trainer(
        model=build_reference(args, config, tokenizer, ours),
        args=training_args,
        train_dataset=train,
        eval_dataset=dev,
        data_collator=collator,
        compute_metrics=lambda p: {
            "accuracy": multiclass_accuracy(
                torch.as_tensor(p.predictions).argmax(-1), torch.as_tensor(p.label_ids), 2, average="micro"
            ).item()
        },
        callbacks=[step_ends],
    )
    return trainer, collator, step_ends


def run_reference(
    args: argparse.Namespace, config: dict, tokenizer: Any, raw: dict, ours: Any, peer: bool = False
) -> dict:
    """Train and evaluate the reference (or, with `peer`, the careful user's Trainer set-up) on the raw
    `train`/`test` examples; returns timings, token counts and accuracy."""
    with tempfile.TemporaryDirectory() as output_dir:
        trainer, collator, step_ends = reference_trainer(args, config, tokenizer, raw, ours, output_dir, peer)
        trainer.train()
        train_counts, collator.counts = collator.counts, []
        start = common.clocks()
        metrics = trainer.evaluate()
        eval_seconds = [b - a for a, b in zip(start, common.clocks())]
    return _summary(args, step_ends.ends, train_counts, collator.counts, eval_seconds, metrics["eval_accuracy"])


# ------------------------------------------------------------------------------------------------------ ours
def build_ours(args: argparse.Namespace, config: dict, tokenizer: Any, compile: bool = False) -> LabelSupervisedModule:
    """Our module with the same backbone seed, LoRA and optimizer settings (`compile`: `model.compile`)."""
    lightning.seed_everything(args.seed, verbose=False)
    return LabelSupervisedModule(
        compile=compile,
        backbone_config=config,
        backbone_seed=args.seed,
        lora_r=12,
        lora_alpha=32,
        lora_dropout=0.1,
        optimizer=lambda params: torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0),
        num_labels=2,
        label_names=["negative", "positive"],
        pad_token_id=tokenizer.pad_token_id,
        vocab_size=len(tokenizer),
    )


def data_options(args: argparse.Namespace) -> dict[str, Any]:
    """Our SST-2 data module's arguments: the subset of train, the first examples of test (all 872 by default)."""
    return {
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "max_train_examples": args.train_examples,
        "max_eval_examples": args.eval_examples,
    }


def trainer_options(args: argparse.Namespace) -> dict[str, Any]:
    """Our Lightning `Trainer`'s options for training and evaluation: CPU, no logger, checkpoints or summary."""
    return {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": args.progress,
        "enable_model_summary": False,
    }


def run_ours(args: argparse.Namespace, module: LabelSupervisedModule, packed: bool = False) -> dict:
    """Train (on `train`) and evaluate (on `test`) ours with Lightning; returns timings, token counts, accuracy."""
    data = common.sst2(pack_sequences=packed, **data_options(args))
    timer = common.StepTimer()
    options = trainer_options(args)
    trainer = lightning.Trainer(
        max_steps=args.steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        gradient_clip_val=1.0,
        callbacks=[timer],
        **options,
    )
    trainer.fit(module, datamodule=data)
    evaluator = lightning.Trainer(callbacks=[timer], **options)
    start = common.clocks()
    metrics = evaluator.test(module, datamodule=data, verbose=False)[0]
    eval_seconds = [b - a for a, b in zip(start, common.clocks())]
    return _summary(args, timer.ends, timer.train, timer.eval, eval_seconds, metrics["test/acc"])


def _summary(args: argparse.Namespace, ends: list, train: list, evaluation: list, eval_s: list, acc: float) -> dict:
    """Training throughput (warm-up excluded), evaluation throughput (the whole evaluate/validate call, by the wall
    clock and by CPU time), padding and accuracy."""
    eval_examples, eval_real, eval_padded = (sum(c[i] for c in evaluation) for i in range(3))
    evaluation_rates: dict[str, float] = {"examples": eval_examples}
    for prefix, seconds in zip(("", "cpu_"), eval_s):
        evaluation_rates.update(
            {
                f"{prefix}seconds": seconds,
                f"{prefix}examples_per_s": eval_examples / seconds,
                f"{prefix}real_tokens_per_s": eval_real / seconds,
                f"{prefix}padded_tokens_per_s": eval_padded / seconds,
            }
        )
    return {
        "train": common.throughput(ends, train, args.warmup_steps),
        "train_padding": common.padding(train),
        "eval": evaluation_rates,
        "eval_padding": common.padding(evaluation),
        "accuracy": float(acc),
    }


# ------------------------------------------------------------------------------------------------------ main
def run(args: argparse.Namespace) -> dict[str, Any]:
    """Interleaved repeats of both pipelines (and ours packed); returns all runs and their medians."""
    torch.set_num_threads(args.threads)
    tokenizer = load_tokenizer(str(common.require_shared(common.LLAMA2_TOKENIZER)))
    data = common.sst2(**data_options(args))
    raw = {split: common.raw_split(data, split) for split in ("train", "test")}
    config = common.TINY_LLAMA if args.tiny else common.BENCH_LLAMA
    names = ["reference"] + (["peer"] if args.peer else []) + ["ours"]
    names += (["ours_packed"] if args.packed else []) + (["ours_compiled"] if args.compiled else [])
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for repeat in range(args.repeats):
        order = names if repeat % 2 == 0 else names[::-1]
        for name in order:
            ours = build_ours(args, config, tokenizer, compile=name == "ours_compiled")
            if name in ("reference", "peer"):
                runs[name].append(run_reference(args, config, tokenizer, raw, ours, peer=name == "peer"))
            else:
                runs[name].append(run_ours(args, ours, packed=name == "ours_packed"))
            print(f"repeat {repeat}: {name}: {runs[name][-1]['train']['examples_per_s']:.1f} train examples/s")
    return {"args": vars(args), "machine": common.machine(), "runs": runs, "summary": summarize(runs)}


def summarize(runs: dict[str, list[dict]]) -> dict[str, dict[str, Any]]:
    """Medians per pipeline, and speed-ups over the reference: the median of the per-repeat ratios and their range,
    by the wall clock and by CPU time (`cpu_`, steadier when other processes share the cores)."""
    summary: dict[str, dict[str, Any]] = {}
    for name, results in runs.items():
        row: dict[str, Any] = {"pipeline": name}
        for phase in ("train", "eval"):
            for key in ("examples_per_s", "real_tokens_per_s", "padded_tokens_per_s", "cpu_examples_per_s"):
                row[f"{phase}_{key}"] = common.median([r[phase][key] for r in results])
            row[f"{phase}_padding_fraction"] = results[0][f"{phase}_padding"]["padding_fraction"]
            for clock in ("", "cpu_"):
                ratios = [
                    r[phase][f"{clock}examples_per_s"] / ref[phase][f"{clock}examples_per_s"]
                    for r, ref in zip(results, runs["reference"])
                ]
                row[f"{phase}_{clock}speedup"] = common.median(ratios)
                row[f"{phase}_{clock}speedup_range"] = common.spread(ratios)
        if "peer" in runs:  # the careful user's Trainer as the baseline
            for clock in ("", "cpu_"):
                ratios = [
                    r["train"][f"{clock}examples_per_s"] / peer["train"][f"{clock}examples_per_s"]
                    for r, peer in zip(results, runs["peer"])
                ]
                row[f"train_{clock}vs_peer"] = common.median(ratios)
                row[f"train_{clock}vs_peer_range"] = common.spread(ratios)
        row["accuracy"] = common.median([r["accuracy"] for r in results])
        summary[name] = row
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, return the results."""
    args = parse_args(argv)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    result = run(args)
    rows = list(result["summary"].values())
    common.print_table(
        f"training, {args.steps} steps (timed after {args.warmup_steps}); medians of {args.repeats} interleaved "
        "repeats; speed-up = median of per-repeat ratios to the reference [range]",
        rows,
        [
            "pipeline",
            "train_examples_per_s",
            "train_real_tokens_per_s",
            "train_padded_tokens_per_s",
            "train_padding_fraction",
            "train_speedup",
            "train_speedup_range",
            "train_cpu_examples_per_s",
            "train_cpu_speedup",
            "train_cpu_speedup_range",
        ],
    )
    if args.peer:
        common.print_table(
            "training throughput over the peer (HF Trainer, length-grouped, per-batch padding): median of per-repeat "
            "ratios [range]",
            rows,
            ["pipeline", "train_vs_peer", "train_vs_peer_range", "train_cpu_vs_peer", "train_cpu_vs_peer_range"],
        )
    common.print_table(
        "evaluation (whole evaluate/validate call) and quality",
        rows,
        [
            "pipeline",
            "eval_examples_per_s",
            "eval_real_tokens_per_s",
            "eval_padded_tokens_per_s",
            "eval_padding_fraction",
            "eval_speedup",
            "eval_speedup_range",
            "eval_cpu_speedup",
            "accuracy",
        ],
    )
    print(f"\nmachine: {result['machine']}")
    common.dump(result, args.json)
    return result


if __name__ == "__main__":
    main()
