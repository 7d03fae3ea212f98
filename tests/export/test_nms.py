"""The NMS graph against the eager decode + postprocess it restates (eager mode)."""

from __future__ import annotations

import torch

from edgevision.export.nms import NmsDetector
from edgevision.ops.nms import postprocess
from edgevision.tasks.detect.export_check import letterboxed_batch, sample_images
from tests.detector import biased_detector


@torch.no_grad()
def test_nms_detector_equals_postprocess_padded_to_max_det():
    model = biased_detector()
    images = letterboxed_batch(sample_images(None, count=3)[0], 128)
    num_dets, boxes, scores, classes = NmsDetector(model, 0.25, 0.5, 20).eval()(images)
    raw_boxes, raw_scores = model.codec.decode(model(images), (128, 128))
    expected = postprocess(raw_boxes, raw_scores, 0.25, 0.5, 20)
    assert num_dets.shape == (3, 1) and boxes.shape == (3, 20, 4) and classes.dtype == torch.int64
    assert sum(len(e["scores"]) for e in expected) > 0
    for count, image_boxes, image_scores, image_classes, want in zip(
        num_dets[:, 0], boxes, scores, classes, expected, strict=True
    ):
        assert count == len(want["scores"])
        torch.testing.assert_close(image_scores[:count], want["scores"])
        torch.testing.assert_close(image_boxes[:count], want["boxes"])
        assert torch.equal(image_classes[:count], want["classes"])
        assert not image_scores[count:].any() and not image_boxes[count:].any()
