"""Result types: the line predict prints, the JSON rows, and top-k from a probability row."""

from __future__ import annotations

import numpy as np

from edgevision.core.results import Classifications, Detections


def test_top_k_is_best_first_with_ties_to_the_lower_index_and_capped():
    row = np.array([0.1, 0.3, 0.3, 0.25, 0.05], np.float32)
    top = Classifications.top("a.jpg", row, list("abcde"), 3)
    assert (top.indices, top.labels) == ([1, 2, 3], ["b", "c", "d"])
    assert top.probabilities == [round(float(v), 6) for v in row[[1, 2, 3]]]
    assert len(Classifications.top("a.jpg", row, list("abcde"), 9)) == 5
    assert top.summary() == "a.jpg: b 0.30, c 0.30, d 0.25"
    assert top.to_records()[0]["topk"][0] == {"label": "b", "index": 1, "probability": 0.3}


def test_detections_summary_and_coco_rows():
    boxes = np.array([[1, 2, 11, 22], [0, 0, 5, 5], [3, 3, 4, 4]], np.float32)
    found = Detections(boxes, np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1]), ["a", "b"], "x/y.png")
    assert found.summary() == "x/y.png: 2 b, 1 a"
    row = found.to_records()[0]
    assert row == {"file_name": "y.png", "category_id": 2, "category": "b",
                   "bbox": [1.0, 2.0, 10.0, 20.0], "score": 0.9}  # fmt: skip
    empty = Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), ["a"], "z.png")
    assert empty.summary() == "z.png: nothing" and empty.to_records() == []
