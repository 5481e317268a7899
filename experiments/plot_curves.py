"""Training-loss, validation-loss and validation-score curves of several runs on one figure (the paper's Figs 3-5).

    python -m experiments.plot_curves experiments/runs/repro_smollm2/conll2003-* --out curves_conll.png
    python -m experiments.plot_curves logs/sst2-Llama-2-7b-hf-causal-last logs/sst2-bert-base-cased-bidirectional-first
    python -m experiments.plot_curves --wandb me/ls-llama/abc123 me/ls-llama/def456 --out curves.png

A local run is any of: a suite run folder (`<run>/fit/version_N/metrics.csv`), a CSV logger run folder
(`logs/<run>/version_N/metrics.csv`), a version folder, or a `metrics.csv` file. The versions of a run (a resumed
run logs into a new one) are joined in order; where two versions logged the same step, the later one wins.
W&B runs (`entity/project/run_id`, synced ones) are read through `wandb.Api`; without network or W&B login they
are skipped with a message, so the local curves are always drawn.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
from pathlib import Path

import pandas as pd

log = logging.getLogger("experiments.plot_curves")

PANELS = (("train/loss", "training loss"), ("val/loss", "validation loss"), ("val/score", "validation score"))


def _version(path: Path) -> int:
    match = re.fullmatch(r"version_(\d+)", path.parent.name)
    return int(match.group(1)) if match else -1


def metrics_files(run: str | os.PathLike) -> list[Path]:
    """The `metrics.csv` files of a local run, oldest version first.

    Raises:
        FileNotFoundError: the path holds no metrics.csv in any of the accepted layouts.
    """
    path = Path(run)
    if path.is_file():
        return [path]
    for folder in (path, path / "fit"):
        if (folder / "metrics.csv").is_file():
            return [folder / "metrics.csv"]
        found = sorted(folder.glob("version_*/metrics.csv"), key=_version)
        if found:
            return found
    raise FileNotFoundError(f"{path}: no metrics.csv (looked in it, in version_*/ and in fit/version_*/)")


def load_local(run: str | os.PathLike) -> pd.DataFrame:
    """The logged metrics of a local run as one frame indexed by `step`, versions joined (later wins)."""
    frames = []
    for order, file in enumerate(metrics_files(run)):
        frame = pd.read_csv(file)
        if "step" not in frame.columns:
            raise ValueError(f"{file}: no 'step' column (columns: {list(frame.columns)})")
        frames.append(frame.assign(_order=order))
    joined = pd.concat(frames, ignore_index=True)
    columns = [c for c, _ in PANELS if c in joined.columns]
    if not columns:
        raise ValueError(f"{run}: none of {[c for c, _ in PANELS]} was logged")
    series = {}
    for column in columns:
        rows = joined.dropna(subset=[column]).drop_duplicates("step", keep="last")  # later version wins
        series[column] = rows.set_index("step")[column]
    return pd.DataFrame(series).sort_index()


def load_wandb(run_path: str) -> pd.DataFrame | None:
    """The history of a synced W&B run (`entity/project/run_id`) indexed by step; None when W&B is unreachable."""
    if os.environ.get("WANDB_MODE") in {"offline", "disabled"}:
        log.warning("W&B run %s skipped: WANDB_MODE=%s", run_path, os.environ["WANDB_MODE"])
        return None
    try:
        import wandb

        history = wandb.Api(timeout=20).run(run_path).history(keys=None, pandas=True)
    except Exception as error:  # no login, no network, unknown run: the local curves still get drawn
        log.warning("W&B run %s skipped: %s: %s", run_path, type(error).__name__, error)
        return None
    step = "trainer/global_step" if "trainer/global_step" in history.columns else "_step"
    columns = [c for c, _ in PANELS if c in history.columns]
    series = {c: history.dropna(subset=[c]).drop_duplicates(step, keep="last").set_index(step)[c] for c in columns}
    return pd.DataFrame(series).sort_index()


def smooth(values: pd.Series, weight: float) -> pd.Series:
    """Exponential moving average (TensorBoard-style smoothing); weight 0 = none."""
    return values.ewm(alpha=1 - weight).mean() if weight > 0 else values


Y_LABELS = {
    "train/loss": "training loss (cross-entropy)",
    "val/loss": "validation loss (cross-entropy)",
    "val/score": "validation score (accuracy or entity F1)",
}


def seed_groups(curves: dict[str, pd.DataFrame]) -> dict[str, list[pd.DataFrame]]:
    """Runs grouped by their label without the seed suffix (`conll-ls_llama-s0`, `-s1` -> `conll-ls_llama`)."""
    groups: dict[str, list[pd.DataFrame]] = {}
    for label, frame in curves.items():
        groups.setdefault(re.sub(r"-s\d+$", "", label), []).append(frame)
    return groups


def band(frames: list[pd.DataFrame], column: str, smoothing: float) -> pd.DataFrame | None:
    """Mean, min and max over the runs of a group at the steps where every run logged `column`."""
    series = [f[column].dropna() for f in frames if column in f.columns and f[column].notna().any()]
    if not series:
        return None
    if column == "train/loss":
        series = [smooth(s, smoothing) for s in series]
    joined = pd.concat(series, axis=1, join="inner")  # steps shared by all seeds
    return pd.DataFrame({"mean": joined.mean(axis=1), "low": joined.min(axis=1), "high": joined.max(axis=1)})


def plot(curves: dict[str, pd.DataFrame], out: str | os.PathLike, title: str = "", smoothing: float = 0.6) -> Path:
    """Draw the runs' curves, one panel per metric, and save the figure (PNG, PDF or SVG by extension). Runs that
    differ only in their seed (`-s<n>`) are one line, their mean, with a band from the lowest to the highest seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not curves:
        raise ValueError("no runs to plot")
    groups = seed_groups(curves)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 3.8))
    for ax, (column, name) in zip(axes, PANELS):
        for label, frames in groups.items():
            values = band(frames, column, smoothing)
            if values is None:
                continue
            seeds = f" ({len(frames)} seeds)" if len(frames) > 1 else ""
            (line,) = ax.plot(
                values.index,
                values["mean"],
                label=label + seeds,
                marker=None if column == "train/loss" else "o",
                markersize=3,
            )
            if len(frames) > 1:
                ax.fill_between(values.index, values["low"], values["high"], color=line.get_color(), alpha=0.2)
        ax.set_title(name + (f" (EMA {smoothing})" if column == "train/loss" and smoothing else ""))
        ax.set_xlabel("training step")
        ax.set_ylabel(Y_LABELS[column])
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06 * ((len(labels) + 2) // 3), 1, 1))  # room for the legend below the panels
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def label_of(run: str | os.PathLike) -> str:
    """A run's legend label: its folder name (the suite run id or the CSV logger's run name)."""
    path = Path(run)
    if path.name == "metrics.csv":
        path = path.parent
    while path.name.startswith("version_") or path.name == "fit":
        path = path.parent
    return path.name


def main(argv: list[str] | None = None) -> Path:
    """Command line: local runs and/or W&B runs to one figure."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="local run folders or metrics.csv files")
    parser.add_argument("--wandb", nargs="+", default=[], metavar="ENTITY/PROJECT/RUN", help="synced W&B runs")
    parser.add_argument("--out", default="curves.png", help="output figure")
    parser.add_argument("--title", default="")
    parser.add_argument("--smoothing", type=float, default=0.6, help="EMA weight of the training loss (0 = raw)")
    args = parser.parse_args(argv)
    curves = {label_of(run): load_local(run) for run in args.runs}
    for run_path in args.wandb:
        frame = load_wandb(run_path)
        if frame is not None:
            curves[f"wandb:{run_path.rsplit('/', 1)[-1]}"] = frame
    out = plot(curves, args.out, args.title, args.smoothing)
    print(f"written {out}")
    return out


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
