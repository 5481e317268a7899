"""The MNTP study's table: per setting the three arms over seeds, their paired differences (LS-unLLaMA after MNTP vs
LS-unLLaMA and vs LS-LLaMA; LS-unLLaMA vs LS-LLaMA), and what the adaptation stage cost.

    python -m experiments.mntp.compare                          # experiments/runs/{mntp,mntp_adapt}
    python -m experiments.mntp.compare RUNS_DIR --adapt ADAPT_RUNS_DIR --out FOLDER

Writes `comparison.md` (and `differences.csv`) into `--out` (default: RUNS_DIR) and prints it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from experiments.results_table import differences_frame, markdown, results_frame, settings_frame

COMPARISONS = [("ls_unllama_mntp", "ls_unllama"), ("ls_unllama_mntp", "ls_llama"), ("ls_unllama", "ls_llama")]


def with_arms(runs: pd.DataFrame) -> pd.DataFrame:
    """The arm of each run from its setting's last part (`...-ls_llama`, `-ls_unllama`, `-ls_unllama_mntp`), whether or
    not its result.json records a method."""
    runs = runs.copy()
    runs["method"] = runs["setting"].str.rsplit("-", n=1).str[-1]
    return runs


def adaptation_cost(adapt_dir: Path) -> list[str]:
    """Markdown table of the MNTP stage per setting: fit minutes and validation masked-token accuracy over seeds."""
    runs = results_frame(adapt_dir)
    lines = ["| MNTP setting | n | fit minutes (mean, max) | val masked-token acc (mean) |", "|---|---|---|---|"]
    for setting, group in runs.groupby("setting", sort=False):
        minutes = group["fit_minutes"]
        accuracy = 100 * group["best_val"].mean()
        lines.append(f"| {setting} | {len(group)} | {minutes.mean():.1f}, {minutes.max():.1f} | {accuracy:.1f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs_dir", nargs="?", default="experiments/runs/mntp", help="stage 2's runs folder")
    parser.add_argument("--adapt", default="experiments/runs/mntp_adapt", help="stage 1's runs folder")
    parser.add_argument("--out", help="output folder (default: runs_dir)")
    args = parser.parse_args(argv)
    try:
        runs = with_arms(results_frame(args.runs_dir))
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    settings = settings_frame(args.runs_dir, runs)
    differences = differences_frame(args.runs_dir, runs, COMPARISONS)
    text = markdown(runs, settings, differences)
    if list(Path(args.adapt).glob("*/result.json")):
        text += (
            "\nThe adaptation stage (MNTP, experiments/mntp/adapt.yaml):\n\n"
            + "\n".join(adaptation_cost(Path(args.adapt)))
            + "\n"
        )
    out = Path(args.out or args.runs_dir)
    out.mkdir(parents=True, exist_ok=True)
    differences.to_csv(out / "differences.csv", index=False)
    (out / "comparison.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
