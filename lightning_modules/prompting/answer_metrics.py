"""Metrics of generated answers: classification where an answer may name no label.

An invalid answer (no label, or several) is predicted as the extra class `num_labels`: it counts as wrong in the
accuracy, as a miss of its true class in the macro F1, and as nobody's false positive. With no invalid answers the
numbers equal `metrics.ClassificationMetrics` over the real labels. Entity answers use `metrics.SeqevalMetrics` as
they are (an unreadable answer predicts no entity).
"""

from __future__ import annotations

import torch
from typing_extensions import override

from lightning_modules.metrics import ClassificationMetrics


class AnswerMetrics(ClassificationMetrics):
    """Accuracy and macro-F1 over `num_labels` classes of predictions that may be `num_labels` (= invalid).

    Args:
        num_labels: number of real classes.
    """

    def __init__(self, num_labels: int) -> None:
        super().__init__(num_labels + 1)
        self.real_labels = num_labels

    @override
    def compute(self) -> dict[str, torch.Tensor]:
        rows = self.example_rows()  # de-duplicated examples
        preds, target = (torch.tensor([row[key] for row in rows]) for key in ("pred", "target"))
        # micro accuracy over num_labels + 1 classes is plain accuracy: an invalid answer never equals its target
        return {"acc": super().compute()["acc"], "f1": macro_f1(preds, target, self.real_labels)}


def macro_f1(preds: torch.Tensor, target: torch.Tensor, num_labels: int) -> torch.Tensor:
    """Mean F1 of the classes `0..num_labels-1` that occur in `target` or `preds` (as torchmetrics' macro average
    does); a prediction outside them is a miss of its target's class and no class's false positive."""
    classes = torch.arange(num_labels, device=preds.device)[:, None]  # (C, 1)
    predicted, actual = preds[None] == classes, target[None] == classes  # (C, N)
    tp = (predicted & actual).sum(1)
    fp, fn = (predicted & ~actual).sum(1), (~predicted & actual).sum(1)
    present = (tp + fp + fn) > 0  # (C,)
    f1 = 2 * tp / (2 * tp + fp + fn).clamp_min(1)
    return f1[present].float().mean() if bool(present.any()) else torch.tensor(0.0)
