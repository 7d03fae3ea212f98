"""The numpy NMS twins against ops.nms / ops.batched_nms: identical kept indices."""

from __future__ import annotations

import numpy as np
import torch

from edgevision.ops.nms import batched_nms as torch_batched_nms
from edgevision.ops.nms import nms as torch_nms
from edgevision.runtime.nms import batched_nms, nms


def _clustered(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 300, (5, 2))[rng.integers(0, 5, count)]
    corner = centres + rng.normal(0, 10, (count, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(10, 60, (count, 2))], 1).astype(np.float32)
    scores = rng.random(count).astype(np.float32)
    scores[::7] = scores[0]  # ties: both must keep the lower index first
    return boxes, scores, rng.integers(0, 4, count)


def test_nms_keeps_the_same_boxes_as_ops_nms():
    for seed in range(6):
        boxes, scores, _ = _clustered(120, seed)
        for threshold in (0.3, 0.5, 0.7):
            want = torch_nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold)
            np.testing.assert_array_equal(nms(boxes, scores, threshold), want.numpy())


def test_batched_nms_keeps_the_same_boxes_as_ops_batched_nms():
    for seed in range(6):
        boxes, scores, classes = _clustered(150, seed)
        want = torch_batched_nms(
            torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(classes), 0.45
        )
        got = batched_nms(boxes, scores, classes, 0.45)
        np.testing.assert_array_equal(got, want.numpy())
        assert got.dtype == np.int64


def test_empty_input_and_cross_class_overlap():
    assert batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), 0.5).shape == (0,)
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 10, 10]], dtype=np.float32)
    scores = np.array([0.9, 0.8, 0.7], dtype=np.float32)
    assert batched_nms(boxes, scores, np.array([0, 1, 0]), 0.5).tolist() == [0, 1]
