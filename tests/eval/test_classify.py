"""Classification metrics on hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest

from edgevision.core.errors import ConfigError
from edgevision.eval.classify import (
    class_confusion_matrix,
    classification_metrics,
    format_classification_report,
    precision_recall,
    topk_accuracy,
)

# 4 samples, 3 classes. Rankings: s0 (2, 1, 0), s1 (0, 1, 2), s2 (1, 0, 2), s3 (0, 2, 1).
SCORES = np.array([[0.1, 0.3, 0.6], [0.5, 0.4, 0.1], [0.3, 0.6, 0.1], [0.5, 0.2, 0.3]])
LABELS = np.array([2, 1, 1, 2])


def test_topk_accuracy_by_hand():
    # top-1: s0 and s2 right; top-2 adds s1 and s3, whose labels rank second.
    assert topk_accuracy(SCORES, LABELS, (1, 2, 3, 5)) == {1: 0.5, 2: 1.0, 3: 1.0, 5: 1.0}
    assert topk_accuracy(SCORES[1:2], np.array([2]), (1, 2)) == {1: 0.0, 2: 0.0}


def test_ties_rank_the_lower_class_first():
    scores = np.array([[0.5, 0.5, 0.0]])
    assert topk_accuracy(scores, np.array([0]), (1,)) == {1: 1.0}
    assert topk_accuracy(scores, np.array([1]), (1, 2)) == {1: 0.0, 2: 1.0}


def test_confusion_matrix_precision_recall_by_hand():
    matrix = class_confusion_matrix(np.array([2, 0, 1, 0]), LABELS, 3)
    # rows predicted, columns true: true 2 -> predicted 2 and 0; true 1 -> predicted 0 and 1.
    assert matrix.tolist() == [[0, 1, 1], [0, 1, 0], [0, 0, 1]]
    precision, recall = precision_recall(matrix)
    assert precision.tolist() == [0.0, 1.0, 1.0]
    assert np.isnan(recall[0]) and recall[1:].tolist() == [0.5, 0.5]


def test_metrics_and_report():
    metrics = classification_metrics(SCORES, LABELS, ["cat", "dog", "emu"])
    assert metrics["top1"] == 0.5 and metrics["top5"] == 1.0
    assert metrics["support"].tolist() == [0, 2, 2]
    text = format_classification_report(metrics, ["cat", "dog", "emu"])
    assert text.splitlines()[1].split() == ["cat", "0", "0.000", "-"]
    assert text.splitlines()[-1].split() == ["all", "4", "top-1", "0.5000", "top-5", "1.0000"]


def test_bad_shapes_and_labels_are_refused():
    with pytest.raises(ConfigError, match="labels must lie"):
        topk_accuracy(SCORES, np.array([0, 1, 2, 3]))
    with pytest.raises(ConfigError, match=r"\(N, C\)"):
        topk_accuracy(SCORES[0], LABELS)
    with pytest.raises(ConfigError, match="3 classes but 2 names"):
        classification_metrics(SCORES, LABELS, ["a", "b"])
    assert np.isnan(topk_accuracy(np.zeros((0, 3)), np.zeros(0, np.int64))[1])
