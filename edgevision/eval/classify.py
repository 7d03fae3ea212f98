"""Classification metrics: top-k accuracy, confusion matrix, per-class precision / recall.

The confusion matrix uses the detection matrix's orientation (``eval/confusion.py``):
``matrix[predicted, true]``, so column ``t`` says where the images of class ``t`` went. A class
with no images (recall) or no predictions (precision) gets NaN, not 0: "undefined" and "always
wrong" are different findings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgevision.core.errors import ConfigError


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    if scores.ndim != 2 or labels.shape != (len(scores),):
        raise ConfigError(
            f"scores must be (N, C) and labels (N,); got {scores.shape} and {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ConfigError(
            f"labels must lie in [0, {scores.shape[1]}); got {labels.min()}..{labels.max()}"
        )
    return scores, labels


def topk_predictions(scores: np.ndarray, k: int) -> np.ndarray:
    """(N, min(k, C)) class indices, best first; ties keep the lower class index first."""
    return np.argsort(-np.asarray(scores), axis=1, kind="stable")[:, :k]


def topk_accuracy(
    scores: np.ndarray, labels: np.ndarray, ks: Sequence[int] = (1, 5)
) -> dict[int, float]:
    """Share of samples whose label is among the ``k`` best scores, for each ``k``.

    Args:
        scores: (N, C) logits or probabilities (any monotonic score).
        labels: (N,) true class indices.
        ks: the k values; k >= C counts every sample as correct (reported, not refused, so
            "top5" exists for a 3-class problem as it does in torchvision's references).

    Returns:
        ``{k: accuracy in [0, 1]}``; NaN for every k when N is 0.
    """
    scores, labels = _check(scores, labels)
    if not len(labels):
        return {k: float("nan") for k in ks}
    ranked = topk_predictions(scores, max(ks))
    return {k: float((ranked[:, :k] == labels[:, None]).any(axis=1).mean()) for k in ks}


def class_confusion_matrix(predicted: np.ndarray, true: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) int64 counts ``matrix[predicted, true]``."""
    predicted, true = np.asarray(predicted, np.int64), np.asarray(true, np.int64)
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (predicted, true), 1)
    return matrix


def precision_recall(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision (diagonal / row sums) and recall (diagonal / column sums), (C,) each,
    NaN where the class was never predicted (precision) or never present (recall)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    diagonal = np.diag(matrix)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(matrix.sum(1) > 0, diagonal / matrix.sum(1), np.nan)
        recall = np.where(matrix.sum(0) > 0, diagonal / matrix.sum(0), np.nan)
    return precision, recall


def classification_metrics(
    scores: np.ndarray, labels: np.ndarray, class_names: Sequence[str]
) -> dict:
    """Everything ``val`` reports for a classifier.

    Args:
        scores: (N, C) logits or probabilities.
        labels: (N,) true class indices.
        class_names: C names.

    Returns:
        ``top1``, ``top5`` (floats), ``matrix`` (C, C) ``[predicted, true]``, ``precision``,
        ``recall`` and ``support`` (images per true class), each (C,).
    """
    scores, labels = _check(scores, labels)
    if scores.shape[1] != len(class_names):
        raise ConfigError(
            f"scores have {scores.shape[1]} classes but {len(class_names)} names were given"
        )
    accuracy = topk_accuracy(scores, labels, (1, 5))
    predicted = topk_predictions(scores, 1)[:, 0] if len(labels) else np.zeros(0, np.int64)
    matrix = class_confusion_matrix(predicted, labels, len(class_names))
    precision, recall = precision_recall(matrix)
    return {
        "top1": accuracy[1],
        "top5": accuracy[5],
        "matrix": matrix,
        "precision": precision,
        "recall": recall,
        "support": matrix.sum(0),
    }


def format_classification_report(metrics: dict, class_names: Sequence[str]) -> str:
    """Text table: one line per class (images, precision, recall), then top-1 / top-5."""
    width = max([len("class"), *(len(name) for name in class_names)])
    lines = [f"{'class':<{width}} {'images':>7} {'precision':>9} {'recall':>7}"]
    for k, name in enumerate(class_names):
        precision, recall = metrics["precision"][k], metrics["recall"][k]
        lines.append(
            f"{name:<{width}} {int(metrics['support'][k]):>7} "
            f"{_fmt(precision):>9} {_fmt(recall):>7}"
        )
    total = int(np.sum(metrics["support"]))
    lines.append(
        f"{'all':<{width}} {total:>7}  top-1 {metrics['top1']:.4f}  top-5 {metrics['top5']:.4f}"
    )
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return "-" if np.isnan(value) else f"{value:.3f}"
