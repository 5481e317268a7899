"""Statistics over seeds and test examples: mean ± std, and percentile-bootstrap intervals.

The test stage writes one row per test example (`test_examples.csv`, see `LabelSupervisedModule`): for
classification its `target` and `pred`, for NER the sentence's entity counts `gold`, `pred`, `correct` (seqeval's
exact type-and-span matching). A score is computed from a set of rows (accuracy; micro entity F1 from summed
counts), so an interval can resample test examples.

Intervals are percentile bootstraps over TEST EXAMPLES, pooled over seeds: one resample draws example indices with
replacement (the same indices for every seed and, for a paired difference, for both methods: the runs of one seed
see the same test set), scores every run on them and averages over seeds. This captures test-set sampling noise and
averages out seed noise; with 3 seeds the spread over seeds is reported beside it (mean ± std, n), not folded in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats


def score(rows: pd.DataFrame) -> float:
    """Accuracy (columns `target`, `pred`) or micro entity F1 (columns `gold`, `pred`, `correct`) of rows."""
    if "correct" in rows.columns:
        return entity_f1(rows["gold"].to_numpy(), rows["pred"].to_numpy(), rows["correct"].to_numpy())
    return float((rows["target"].to_numpy() == rows["pred"].to_numpy()).mean())


def entity_f1(gold: np.ndarray, pred: np.ndarray, correct: np.ndarray) -> float:
    """Micro F1 from entity counts, summed over the last axis (seqeval's convention: 0 when nothing is found)."""
    found, expected, hits = pred.sum(-1), gold.sum(-1), correct.sum(-1)
    precision = np.divide(hits, found, out=np.zeros_like(hits, dtype=float), where=found > 0)
    recall = np.divide(hits, expected, out=np.zeros_like(hits, dtype=float), where=expected > 0)
    total = precision + recall
    return np.divide(2 * precision * recall, total, out=np.zeros_like(total, dtype=float), where=total > 0)


def _aligned(runs: Sequence[pd.DataFrame]) -> list[pd.DataFrame]:
    """The runs' rows ordered by `example_id`, checked to cover the same test examples."""
    ordered = [run.sort_values("example_id").reset_index(drop=True) for run in runs]
    ids = ordered[0]["example_id"].to_numpy()
    for run in ordered[1:]:
        if not np.array_equal(run["example_id"].to_numpy(), ids):
            raise ValueError("the runs were tested on different examples: they cannot be paired")
    return ordered


def _resampled_scores(run: pd.DataFrame, draws: np.ndarray) -> np.ndarray:
    """The score of `run` on each resample `draws (B, N)` of its rows: `(B,)`."""
    if "correct" in run.columns:
        counts = [run[c].to_numpy()[draws] for c in ("gold", "pred", "correct")]  # each (B, N)
        return entity_f1(*counts)
    hits = (run["target"].to_numpy() == run["pred"].to_numpy()).astype(float)
    return hits[draws].mean(axis=1)


def bootstrap_interval(
    runs: Sequence[pd.DataFrame],
    baseline: Sequence[pd.DataFrame] | None = None,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """`(estimate, low, high)` of the mean score over seeds of `runs` (one frame per seed), or of the paired
    difference mean(runs) - mean(baseline) when `baseline` (the same seeds, same test examples) is given."""
    if not runs:
        raise ValueError("no runs to bootstrap")
    every = _aligned([*runs, *(baseline or [])])
    runs, baseline = every[: len(runs)], every[len(runs) :]
    draws = np.random.default_rng(seed).integers(0, len(runs[0]), size=(resamples, len(runs[0])))  # (B, N)
    values = np.mean([_resampled_scores(run, draws) for run in runs], axis=0)  # (B,)
    estimate = float(np.mean([score(run) for run in runs]))
    if baseline:
        values = values - np.mean([_resampled_scores(run, draws) for run in baseline], axis=0)
        estimate -= float(np.mean([score(run) for run in baseline]))
    low, high = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return estimate, float(low), float(high)


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof=1; 0 for one value) and count."""
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0, len(array)


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """`(mean, low, high)`: Student's t-interval of the mean over seeds (n - 1 degrees of freedom); the bounds are
    NaN for fewer than two values. It captures seed noise, which the bootstrap over test examples averages out."""
    array = np.asarray(values, dtype=float)
    mean = float(array.mean())
    if len(array) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(array) - 1) * array.std(ddof=1) / np.sqrt(len(array)))
    return mean, mean - half, mean + half
