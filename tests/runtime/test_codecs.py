"""The numpy codec twins against the torch codecs, ``ops.nms.postprocess`` and the grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgevision.models.codecs.anchor_free import AnchorFreeCodec
from edgevision.ops.grid import make_anchor_points as torch_anchor_points
from edgevision.ops.nms import postprocess as torch_postprocess
from edgevision.runtime.codecs import CODECS
from edgevision.runtime.codecs.anchor_free import FAMILY, decode, detect, make_anchor_points
from edgevision.runtime.nms import postprocess

STRIDES = (8, 16, 32)
HW = (96, 160)
ANCHORS = sum((HW[0] // s) * (HW[1] // s) for s in STRIDES)
TORCH_CODEC = AnchorFreeCodec(STRIDES)


def torch_decode(raw, strides, hw):
    assert tuple(strides) == STRIDES
    return TORCH_CODEC.decode(raw, hw)


def test_every_torch_family_has_its_twin():
    assert FAMILY == TORCH_CODEC.family and CODECS[FAMILY].decode is decode


def _raw(batch: int = 2, classes: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = rng.normal(0, 1.5, (batch, ANCHORS, 4 + classes)).astype(np.float32)
    raw[..., 4:] -= 2.5  # a realistic few percent of points above conf
    return raw


def test_anchor_points_equal_ops():
    sizes = [(HW[0] // s, HW[1] // s) for s in STRIDES]
    points, strides = make_anchor_points(sizes, STRIDES)
    want_points, want_strides = torch_anchor_points(sizes, list(STRIDES))
    np.testing.assert_array_equal(points, want_points.numpy())
    np.testing.assert_array_equal(strides, want_strides.numpy())


def test_decode_equals_models_decode():
    raw = _raw()
    raw[0, :5, :4] = [
        [30.0] * 4,
        [-30.0] * 4,
        [0.0] * 4,
        [5.0] * 4,
        [-5.0] * 4,
    ]  # softplus extremes
    boxes, scores = decode(raw, STRIDES, HW)
    want_boxes, want_scores = torch_decode(torch.from_numpy(raw), STRIDES, HW)
    np.testing.assert_allclose(boxes, want_boxes.numpy(), rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(scores, want_scores.numpy(), rtol=0, atol=1e-6)


def test_decode_rejects_a_raw_of_another_size():
    with pytest.raises(ValueError, match="divisible by 32"):
        decode(_raw(), STRIDES, (96, 96))


@pytest.mark.parametrize("class_agnostic, max_candidates", [(False, 1000), (True, 50)])
def test_postprocess_and_detect_equal_models_postprocess(class_agnostic, max_candidates):
    raw = _raw(batch=3, seed=1)
    boxes, scores = decode(raw, STRIDES, HW)
    want = torch_postprocess(
        *torch_decode(torch.from_numpy(raw), STRIDES, HW),
        conf=0.25,
        iou=0.5,
        max_det=40,
        class_agnostic=class_agnostic,
        max_candidates=max_candidates,
    )
    got = postprocess(boxes, scores, 0.25, 0.5, 40, class_agnostic, max_candidates)
    fast = detect(raw, STRIDES, HW, 0.25, 0.5, 40, class_agnostic, max_candidates)
    assert sum(len(w["scores"]) for w in want) > 20
    for expected, slow_path, fast_path in zip(want, got, fast, strict=True):
        for found in (slow_path, fast_path):
            np.testing.assert_array_equal(found["classes"], expected["classes"].numpy())
            np.testing.assert_allclose(found["boxes"], expected["boxes"].numpy(), atol=1e-4)
            np.testing.assert_allclose(found["scores"], expected["scores"].numpy(), atol=1e-6)
            np.testing.assert_array_equal(found["index"], expected["index"].numpy())
