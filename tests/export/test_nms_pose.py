"""The NMS graph of a pose model: keypoints gathered with the kept boxes, eager and in ONNX
Runtime."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgevision.export.nms import NmsDetector
from edgevision.export.parity import RAW_TOLERANCE, output_scale
from edgevision.export.trace import trace
from edgevision.models.zoo import build_model
from edgevision.ops.nms import postprocess
from tests.detector import fused_copy

NUM_CLASSES = 3
NUM_KEYPOINTS = 4
IMGSZ = 96
OUTPUTS = ["num_dets", "boxes", "scores", "classes", "keypoints"]
THRESHOLDS = {"conf": 0.45, "iou": 0.5, "max_det": 20}


@torch.no_grad()
def biased_pose_model() -> nn.Module:
    """A random nano-s-pose whose class scores spread over the range and whose keypoints move
    with the image (BN statistics from random batches, large predictor weights)."""
    torch.manual_seed(0)
    model = build_model("nano-s-pose", NUM_CLASSES, num_keypoints=NUM_KEYPOINTS)
    for level in model.head.detection.levels:
        nn.init.normal_(level.cls_pred.weight, std=0.1)
        nn.init.constant_(level.cls_pred.bias, -1.5)
        nn.init.normal_(level.box_pred.weight, std=0.1)
    for level in model.head.keypoint_levels:
        nn.init.normal_(level.pred.weight, std=0.1)
    batch_norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for module in batch_norms:
        module.momentum = None  # cumulative average: running stats = mean over the batches
    model.train()
    for _ in range(3):
        model(torch.rand(4, 3, IMGSZ, IMGSZ))
    for module in batch_norms:
        module.running_var.clamp_(min=0.05)
    return model.eval()


def expected_detections(model: nn.Module, images: torch.Tensor) -> list[dict]:
    """Eager decode + postprocess, keypoints gathered at the kept points."""
    raw = model(images)
    found = postprocess(*model.codec.decode(raw, (IMGSZ, IMGSZ)), **THRESHOLDS)
    keypoints = model.codec.decode_keypoints(raw, (IMGSZ, IMGSZ))
    for image, result in enumerate(found):
        result["keypoints"] = keypoints[image, result["index"]]
    return found


@pytest.fixture(scope="module")
def model_and_images():
    model = biased_pose_model()
    images = torch.rand(3, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(1))
    return model, images


@torch.no_grad()
def test_nms_detector_carries_keypoints_of_the_kept_boxes(model_and_images):
    model, images = model_and_images
    module = NmsDetector(model, **THRESHOLDS).eval()
    assert module.num_keypoints == NUM_KEYPOINTS
    num_dets, boxes, scores, classes, keypoints = module(images)
    assert keypoints.shape == (3, 20, NUM_KEYPOINTS, 3)
    expected = expected_detections(model, images)
    assert sum(len(e["scores"]) for e in expected) > 10
    for i, want in enumerate(expected):
        count = int(num_dets[i, 0])
        assert count == len(want["scores"])
        torch.testing.assert_close(boxes[i, :count], want["boxes"])
        torch.testing.assert_close(keypoints[i, :count], want["keypoints"])
        assert torch.equal(classes[i, :count], want["classes"])
        assert not keypoints[i, count:].any()


@torch.no_grad()
def test_box_models_keep_four_outputs():
    model = build_model("nano-s", NUM_CLASSES).eval()
    module = NmsDetector(model, **THRESHOLDS)
    assert module.num_keypoints == 0 and len(module(torch.rand(1, 3, 64, 64))) == 4


def test_onnx_runtime_nms_graph_equals_pytorch_decode_and_nms(model_and_images, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    model, images = model_and_images
    fused = fused_copy(model)
    axes = {"images": {0: "batch"}, **{name: {0: "batch"} for name in OUTPUTS}}
    proto = trace(NmsDetector(fused, **THRESHOLDS), images[:1], OUTPUTS, axes)
    path = tmp_path / "pose_nms.onnx"
    path.write_bytes(proto.SerializeToString())
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [output.name for output in session.get_outputs()] == OUTPUTS
    num_dets, boxes, scores, classes, keypoints = session.run(None, {"images": images.numpy()})
    assert keypoints.shape == (3, 20, NUM_KEYPOINTS, 3) and keypoints.dtype == np.float32
    with torch.no_grad():
        expected = expected_detections(fused, images)
    for i, want in enumerate(expected):
        count = int(num_dets[i, 0])
        assert count == len(want["scores"]) > 0
        np.testing.assert_array_equal(classes[i, :count], want["classes"].numpy())
        np.testing.assert_allclose(scores[i, :count], want["scores"].numpy(), atol=1e-3)
        # 1e-3 of the output scale, as every export's parity check: the decode multiplies the
        # raw outputs' float32 rounding (ONNX Runtime's kernels against PyTorch's) by the stride.
        for got, reference in ((boxes, want["boxes"]), (keypoints, want["keypoints"])):
            limit = RAW_TOLERANCE * output_scale(reference)
            np.testing.assert_allclose(got[i, :count], reference.numpy(), rtol=0, atol=limit)
        assert not keypoints[i, count:].any()
