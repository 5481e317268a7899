"""Issue 17's diagnosis of LS-unLLaMA: one table of variant x dataset, each paired with LS-LLaMA at the same seeds,
and the depth-of-bidirectionality figure (score against the first bidirectional layer k).

    python -m experiments.diagnosis_table experiments/results/2026-12-07_unllama_diagnosis \\
        --baselines experiments/results/2026-11-29_repro_seeds

A variant is a setting `<data>-<backbone>-ls_unllama_<variant>` (`sst2-smollm2-ls_unllama_from15`); its baseline is
`<data>-<backbone>-ls_llama` and its reference `<data>-<backbone>-ls_unllama` (LS-unLLaMA as the seed study ran it),
found in the folder or in `--baselines`. Per variant and dataset: mean ± std over seeds with a t-interval over seeds;
the paired difference to LS-LLaMA (per-seed differences: mean ± std, t-interval over seeds, and the bootstrap over
test examples pooled over seeds, paired by seed and example) and to LS-unLLaMA (mean, t-interval). Writes
`diagnosis.md`, `diagnosis.csv` and `k_sweep.png` into the folder (or `--out`).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from experiments.results_table import results_frame, test_examples
from experiments.stats import bootstrap_interval, mean_std, t_interval

BASELINE, REFERENCE = "ls_llama", "ls_unllama"
# (pattern of the variant name, hypothesis); the first match names a variant's hypothesis
HYPOTHESES = [
    (r"^lr", "H1 recipe (lr)"),
    (r"^(mean|last|logit_max)$", "H2 pooling"),
    (r"^from\d+$", "H3 depth (bidirectional from layer k)"),
    (r"^mntp", "H5 MNTP"),
]
DATA_HYPOTHESES = [(r"_x\d+$", "H1 recipe (steps)"), (r"_\d+$", "H4 data")]  # on the data part of the id


def split_setting(setting: str) -> tuple[str, str, str] | None:
    """`(data, backbone, variant)` of a setting id `<data>-<backbone>-ls_unllama[_<variant>]`, variant '' for
    LS-unLLaMA itself; None for any other setting."""
    parts = setting.split("-", 2)  # a variant may hold a dash: ls_unllama_lr8e-5
    if len(parts) != 3 or not re.fullmatch(rf"{REFERENCE}(_.+)?", parts[2]):
        return None
    return parts[0], parts[1], parts[2].removeprefix(REFERENCE).removeprefix("_")


def hypothesis(data: str, variant: str) -> str:
    """The hypothesis a variant tests, from its variant name or its data part (`sst2_4000`, `sst2_x4`)."""
    for pattern, name in HYPOTHESES:
        if variant and re.search(pattern, variant):
            return name
    for pattern, name in DATA_HYPOTHESES:
        if re.search(pattern, data):
            return name
    return "LS-unLLaMA as in the seed study" if not variant else "other"


def load(folders: list[Path]) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Every finished run of `folders` (a run id found twice is kept from the first folder) and its test examples."""
    frames, examples = [], {}
    for folder in folders:
        runs = results_frame(folder)
        runs = runs[~runs["run"].isin(set().union(*(set(f["run"]) for f in frames)))] if frames else runs
        frames.append(runs)
        for run in runs["run"]:
            found = test_examples(folder / run)
            if found is not None:
                examples[run] = found
    return pd.concat(frames, ignore_index=True), examples


def _scores(runs: pd.DataFrame, setting: str) -> pd.DataFrame:
    return runs.loc[runs["setting"] == setting, ["run", "seed", "test_score"]]


def paired(ours: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """Runs of two settings joined on the seed: columns run, seed, test_score and their `_base` twins."""
    return ours.merge(other, on="seed", suffixes=("", "_base"))


def diagnosis_row(runs: pd.DataFrame, examples: dict[str, pd.DataFrame], setting: str) -> dict[str, Any] | None:
    """One table row: the variant's scores over seeds and its paired differences to LS-LLaMA and LS-unLLaMA."""
    data, backbone, variant = split_setting(setting)
    ours = _scores(runs, setting)
    row: dict[str, Any] = {"hypothesis": hypothesis(data, variant), "variant": variant or "max, lr 5e-4", "data": data}
    row["n"] = len(ours)
    row["mean"], row["t_low"], row["t_high"] = t_interval(ours["test_score"])
    row["std"] = mean_std(ours["test_score"])[1]
    for name, method in (("llama", BASELINE), ("unllama", REFERENCE)):
        if name == "unllama" and not variant:  # LS-unLLaMA itself
            continue
        pairs = paired(ours, _scores(runs, f"{data}-{backbone}-{method}"))
        differences = pairs["test_score"] - pairs["test_score_base"]
        row[f"vs_{name}_n"] = len(pairs)
        if pairs.empty:
            continue
        row[f"vs_{name}"], row[f"vs_{name}_t_low"], row[f"vs_{name}_t_high"] = t_interval(differences)
        row[f"vs_{name}_std"] = mean_std(differences)[1]
        runs_here = list(pairs["run"]) + list(pairs["run_base"])
        if name == "llama" and all(r in examples for r in runs_here):
            _, row["vs_llama_boot_low"], row["vs_llama_boot_high"] = bootstrap_interval(
                [examples[r] for r in pairs["run"]], [examples[r] for r in pairs["run_base"]]
            )
    return row


def diagnosis_frame(runs: pd.DataFrame, examples: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per LS-unLLaMA setting (variant x dataset), ordered by hypothesis, data and variant."""
    rows = [diagnosis_row(runs, examples, s) for s in runs["setting"].unique() if split_setting(s)]
    frame = pd.DataFrame(rows)
    order = frame["variant"].map(lambda v: int(v[4:]) if re.fullmatch(r"from\d+", v) else -1)
    return frame.assign(_k=order).sort_values(["hypothesis", "data", "_k", "variant"]).drop(columns="_k")


def _pct(value: Any, signed: bool = False) -> str:
    return "" if pd.isna(value) else f"{100 * value:{'+' if signed else ''}.1f}"


def _mean_std(mean: Any, std: Any, n: int, signed: bool = False) -> str:
    return "" if pd.isna(mean) else _pct(mean, signed) + (f" ± {_pct(std)}" if n > 1 else "")


def _interval(row: pd.Series, prefix: str, signed: bool = True) -> str:
    low, high = row.get(f"{prefix}_low"), row.get(f"{prefix}_high")
    return "" if low is None or pd.isna(low) else f"[{_pct(low, signed)}, {_pct(high, signed)}]"


def markdown(frame: pd.DataFrame) -> str:
    """The table in percent points: one line per variant and dataset."""
    header = "| hypothesis | variant | data | n | score mean ± std | t-interval | Δ LS-LLaMA mean ± std | t-interval"
    header += " | bootstrap | Δ LS-unLLaMA | t-interval |"
    lines = [header, "|" + "---|" * 11]
    for _, r in frame.iterrows():
        cells = [r["hypothesis"], r["variant"], r["data"], r["n"], _mean_std(r["mean"], r["std"], r["n"])]
        cells.append(_interval(r, "t", signed=False))
        cells.append(_mean_std(r.get("vs_llama"), r.get("vs_llama_std"), r.get("vs_llama_n", 0), signed=True))
        cells += [_interval(r, "vs_llama_t"), _interval(r, "vs_llama_boot")]
        cells += [_pct(r.get("vs_unllama", float("nan")), True), _interval(r, "vs_unllama_t")]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    notes = [
        "",
        "Scores in percent (accuracy; CoNLL-2003: entity F1). Δ: paired by seed (n = shared seeds). t-interval: 95%"
        " Student's t over seeds (n - 1 degrees of freedom; none for n = 1). bootstrap: 95% percentile bootstrap over"
        " test examples pooled over the shared seeds, paired by seed and example (2,000 resamples).",
    ]
    return "\n".join(lines + notes) + "\n"


def k_sweep_frame(runs: pd.DataFrame, num_layers: int) -> pd.DataFrame:
    """Per dataset, k and seed: the test score with the first bidirectional layer k (0 = LS-unLLaMA's mask,
    `num_layers` = LS-LLaMA's), for datasets with at least one from-k variant."""
    rows = []
    for setting in runs["setting"].unique():
        parsed = split_setting(setting)
        if parsed and re.fullmatch(r"from\d+", parsed[2]):
            data, backbone, _ = parsed
            for k, name in ((int(parsed[2][4:]), setting), (0, f"{data}-{backbone}-{REFERENCE}")):
                for _, r in _scores(runs, name).iterrows():
                    rows.append({"data": data, "k": k, "seed": r["seed"], "score": r["test_score"]})
            for _, r in _scores(runs, f"{data}-{backbone}-{BASELINE}").iterrows():
                rows.append({"data": data, "k": num_layers, "seed": r["seed"], "score": r["test_score"]})
    return pd.DataFrame(rows).drop_duplicates()


def plot_k_sweep(sweep: pd.DataFrame, out: Path, num_layers: int) -> Path:
    """Score against k: one line per dataset (mean over seeds), a band of ± one std, a dot per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for data, group in sweep.groupby("data"):
        stats = group.groupby("k")["score"].agg(["mean", "std", "count"]).fillna(0.0) * [100, 100, 1]
        line = ax.plot(
            stats.index,
            stats["mean"],
            marker="o",
            label=f"{data} (n per k: {stats['count'].min():.0f}-{stats['count'].max():.0f})",
        )[0]
        ax.fill_between(
            stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"], alpha=0.2, color=line.get_color()
        )
        ax.scatter(group["k"], 100 * group["score"], s=8, color=line.get_color(), alpha=0.6)
    ax.set_xlabel(f"first bidirectional layer k (0 = LS-unLLaMA, {num_layers} = LS-LLaMA's causal mask)")
    ax.set_ylabel("test score (accuracy / entity F1, %)")
    ax.set_title("SmolLM2-135M: bidirectional attention from layer k on")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line; returns the exit status (2 when a folder holds no finished run)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="the diagnosis runs (<run>/result.json)")
    parser.add_argument("--baselines", type=Path, nargs="*", default=[], help="folders with the LS-LLaMA runs")
    parser.add_argument("--out", type=Path, help="output folder (default: folder)")
    parser.add_argument("--num-layers", type=int, default=30, help="the backbone's layers (SmolLM2-135M: 30)")
    args = parser.parse_args(argv)
    out = args.out or args.folder
    try:
        runs, examples = load([args.folder, *args.baselines])
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    frame = diagnosis_frame(runs, examples)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "diagnosis.csv", index=False)
    (out / "diagnosis.md").write_text(markdown(frame))
    sweep = k_sweep_frame(runs, args.num_layers)
    if not sweep.empty:
        plot_k_sweep(sweep, out / "k_sweep.png", args.num_layers)
    print((out / "diagnosis.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
