"""Metrics: torchmetrics for sequence classification, seqeval (entity level, on words) for token classification.

Both keep the example index of what they saw, so that examples that Lightning's distributed sampler repeats to
even out the processes are counted once, and both synchronise across processes before computing, so a metric is
computed over the whole evaluation set, never per process.
"""

from __future__ import annotations

import torch
from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities
from torchmetrics import Metric, MetricCollection
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score


def _first_occurrences(example_ids: torch.Tensor) -> torch.Tensor:
    """Indices of the first occurrence of each example id (sorted by id)."""
    order = torch.argsort(example_ids, stable=True)
    sorted_ids = example_ids[order]
    keep = torch.ones_like(sorted_ids, dtype=torch.bool)
    keep[1:] = sorted_ids[1:] != sorted_ids[:-1]
    return order[keep]


def _cat(state: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    return torch.cat(state) if isinstance(state, list) else state


class ClassificationMetrics(Metric):
    """Accuracy and macro-F1 (torchmetrics) over whole, de-duplicated evaluation sets.

    Args:
        num_labels: number of classes.
    """

    full_state_update = False

    def __init__(self, num_labels: int) -> None:
        super().__init__()
        self.num_labels = num_labels
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")
        self.add_state("example_ids", default=[], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, target: torch.Tensor, example_ids: torch.Tensor) -> None:
        """Add a batch: `preds (B,)` and `target (B,)` class ids, `example_ids (B,)` dataset indices."""
        self.preds.append(preds.detach())
        self.target.append(target.detach())
        self.example_ids.append(example_ids.detach())

    def compute(self) -> dict[str, torch.Tensor]:
        """`acc` (micro accuracy) and `f1` (macro F1)."""
        keep = _first_occurrences(_cat(self.example_ids))
        preds, target = _cat(self.preds)[keep], _cat(self.target)[keep]
        return {
            "acc": multiclass_accuracy(preds, target, self.num_labels, average="micro"),
            "f1": multiclass_f1_score(preds, target, self.num_labels, average="macro"),
        }

    def example_rows(self) -> list[dict[str, int]]:
        """Per de-duplicated example: `example_id`, `target`, `pred` (for paired bootstraps over test examples)."""
        ids = _cat(self.example_ids)
        keep = _first_occurrences(ids)
        rows = zip(ids[keep].tolist(), _cat(self.target)[keep].tolist(), _cat(self.preds)[keep].tolist())
        return [{"example_id": i, "target": t, "pred": p} for i, t, p in rows]


class SeqevalMetrics(Metric):
    """Entity-level precision/recall/F1 (seqeval, micro over entities) and word accuracy, on whole words.

    Args:
        label_names: tag names by id (BIO/IOB2, e.g. `O`, `B-PER`, `I-PER`).
        mode: None for seqeval's default (conlleval-compatible) or `strict` to require exact IOB2 chunks.
    """

    full_state_update = False

    def __init__(self, label_names: list[str], mode: str | None = None) -> None:
        super().__init__()
        self.label_names = list(label_names)
        self.mode = mode
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")
        self.add_state("lengths", default=[], dist_reduce_fx="cat")
        self.add_state("example_ids", default=[], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, target: torch.Tensor, example_ids: torch.Tensor) -> None:
        """Add a batch of word-level tag ids: `preds (B, W)`, `target (B, W)` with -100 after each sentence's end."""
        lengths = (target != -100).sum(dim=1)  # (B,)
        real = target != -100
        self.preds.append(preds[real].detach())
        self.target.append(target[real].detach())
        self.lengths.append(lengths.detach())
        self.example_ids.append(example_ids.detach())

    def compute(self) -> dict[str, torch.Tensor]:
        """`f1`, `precision`, `recall` over entities, `word_acc` over words."""
        pred_tags, gold_tags = self.sentences()
        # zero_division=0: an entity type never predicted (early in training) scores 0, without seqeval's warning
        kwargs: dict = {"mode": self.mode, "zero_division": 0} if self.mode else {"zero_division": 0}
        if self.mode == "strict":
            from seqeval.scheme import IOB2

            kwargs["scheme"] = IOB2
        scores = {
            "f1": f1_score(gold_tags, pred_tags, **kwargs),
            "precision": precision_score(gold_tags, pred_tags, **kwargs),
            "recall": recall_score(gold_tags, pred_tags, **kwargs),
            "word_acc": accuracy_score(gold_tags, pred_tags),
        }
        # seqeval's per-type report: f1_PER, f1_LOC, ... (types of the label set, 0 where a type never occurs)
        report = classification_report(gold_tags, pred_tags, output_dict=True, **kwargs)
        for entity_type in self.entity_types:
            scores[f"f1_{entity_type}"] = report.get(entity_type, {}).get("f1-score", 0.0)
        return {name: torch.tensor(float(value)) for name, value in scores.items()}

    @property
    def entity_types(self) -> list[str]:
        """The entity types of the tag set (`PER` for `B-PER`/`I-PER`), in label order."""
        return list(dict.fromkeys(name[2:] for name in self.label_names if name[:2] in ("B-", "I-")))

    def example_rows(self) -> list[dict[str, int]]:
        """Per de-duplicated sentence: `example_id`, entity counts `gold`, `pred`, `correct` (exact type and span,
        as seqeval counts them) and `words`; summing the counts over sentences gives seqeval's micro P/R/F1."""
        pred_tags, gold_tags = self.sentences()
        ids = _cat(self.example_ids)[_first_occurrences(_cat(self.example_ids))].tolist()
        rows = []
        for example_id, pred, gold in zip(ids, pred_tags, gold_tags):
            pred_entities, gold_entities = set(get_entities(pred)), set(get_entities(gold))
            rows.append(
                {
                    "example_id": example_id,
                    "gold": len(gold_entities),
                    "pred": len(pred_entities),
                    "correct": len(gold_entities & pred_entities),
                    "words": len(gold),
                }
            )
        return rows

    def sentences(self) -> tuple[list[list[str]], list[list[str]]]:
        """The de-duplicated sentences seen so far as `(predicted tags, gold tags)`, in example-id order."""
        lengths = _cat(self.lengths).tolist()
        starts = torch.tensor([0] + lengths).cumsum(0).tolist()
        preds, target = _cat(self.preds).tolist(), _cat(self.target).tolist()
        names = self.label_names
        pred_tags, gold_tags = [], []
        for index in _first_occurrences(_cat(self.example_ids)).tolist():
            start, end = starts[index], starts[index + 1]
            pred_tags.append([names[i] for i in preds[start:end]])
            gold_tags.append([names[i] for i in target[start:end]])
        return pred_tags, gold_tags


def build_metrics(task: str, label_names: list[str], seqeval_mode: str | None = None) -> MetricCollection:
    """The metric collection of a task (clone it with a prefix per split)."""
    if task == "token":
        return MetricCollection({"entities": SeqevalMetrics(label_names, mode=seqeval_mode)})
    return MetricCollection({"classes": ClassificationMetrics(len(label_names))})
