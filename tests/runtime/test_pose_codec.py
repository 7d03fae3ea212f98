"""The numpy pose twin against the torch pose codec + ``ops.nms.postprocess``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgevision.models.codecs.pose import PoseCodec
from edgevision.ops.nms import postprocess as torch_postprocess
from edgevision.runtime.codecs import CODECS, pose

STRIDES = (8, 16, 32)
HW = (96, 160)
ANCHORS = sum((HW[0] // s) * (HW[1] // s) for s in STRIDES)
NUM_KEYPOINTS = 5
NUM_CLASSES = 3
TORCH_CODEC = PoseCodec(STRIDES, NUM_KEYPOINTS)


def _raw(batch: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = rng.normal(0, 1.5, (batch, ANCHORS, 4 + NUM_CLASSES + 3 * NUM_KEYPOINTS))
    raw[..., 4 : 4 + NUM_CLASSES] -= 2.5  # a realistic few percent of points above conf
    return raw.astype(np.float32)


def _torch_detections(raw: np.ndarray, **thresholds) -> list[dict[str, torch.Tensor]]:
    """The PyTorch path: decode, postprocess, gather the kept points' keypoints by ``index``."""
    tensor = torch.from_numpy(raw)
    found = torch_postprocess(*TORCH_CODEC.decode(tensor, HW), **thresholds)
    keypoints = TORCH_CODEC.decode_keypoints(tensor, HW)
    for image, result in enumerate(found):
        result["keypoints"] = keypoints[image, result["index"]]
    return found


def test_the_family_is_registered_and_named_as_the_torch_codec():
    assert CODECS[TORCH_CODEC.family] is pose and pose.FAMILY == "pose"


def test_decode_keypoints_equals_the_torch_codec():
    raw = _raw()
    got = pose.decode_keypoints(raw, STRIDES, NUM_KEYPOINTS, HW)
    want = TORCH_CODEC.decode_keypoints(torch.from_numpy(raw), HW).numpy()
    assert got.shape == (3, ANCHORS, NUM_KEYPOINTS, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("class_agnostic, max_candidates", [(False, 1000), (True, 50)])
def test_detect_keeps_the_same_boxes_and_keypoints_as_torch(class_agnostic, max_candidates):
    raw = _raw(seed=1)
    thresholds = {"conf": 0.25, "iou": 0.5, "max_det": 40, "class_agnostic": class_agnostic}
    want = _torch_detections(raw, max_candidates=max_candidates, **thresholds)
    got = pose.detect(raw, STRIDES, NUM_KEYPOINTS, HW, max_candidates=max_candidates, **thresholds)
    assert sum(len(w["scores"]) for w in want) > 20
    for found, expected in zip(got, want, strict=True):
        np.testing.assert_array_equal(found["index"], expected["index"].numpy())
        np.testing.assert_array_equal(found["classes"], expected["classes"].numpy())
        np.testing.assert_allclose(found["boxes"], expected["boxes"].numpy(), atol=1e-4)
        np.testing.assert_allclose(found["scores"], expected["scores"].numpy(), atol=1e-6)
        assert found["keypoints"].shape == (len(found["index"]), NUM_KEYPOINTS, 3)
        np.testing.assert_allclose(found["keypoints"], expected["keypoints"].numpy(), atol=1e-4)


def test_detections_reads_the_codec_metadata_and_empty_images_have_keypoint_arrays():
    raw = _raw(batch=2, seed=2)
    raw[1, :, 4 : 4 + NUM_CLASSES] = -20.0  # nothing above conf in image 1
    got = pose.detections(raw, TORCH_CODEC.metadata(), HW, conf=0.3, iou=0.45, max_det=10)
    want = pose.detect(raw, STRIDES, NUM_KEYPOINTS, HW, 0.3, 0.45, 10)
    np.testing.assert_array_equal(got[0]["keypoints"], want[0]["keypoints"])
    assert 0 < len(got[0]["scores"]) <= 10
    assert got[1]["keypoints"].shape == (0, NUM_KEYPOINTS, 3) and len(got[1]["boxes"]) == 0


def test_mismatched_raw_is_explained():
    with pytest.raises(ValueError, match="5 keypoints: expected \\(B, A, 4 \\+ classes \\+ 15\\)"):
        pose.split(np.zeros((1, ANCHORS, 18), np.float32), NUM_KEYPOINTS)
    with pytest.raises(ValueError, match="divisible by 32"):
        pose.decode_keypoints(_raw(), STRIDES, NUM_KEYPOINTS, (96, 96))
    with pytest.raises(ValueError, match="divisible by 32"):
        pose.detect(_raw(), STRIDES, NUM_KEYPOINTS, (96, 96))


def test_metadata_of_a_pose_file_round_trips_and_describes_the_keypoint_outputs():
    from edgevision.runtime.metadata import (
        ModelInfo,
        letterbox_preprocess,
        parse_metadata,
        to_metadata,
    )

    info = ModelInfo(
        class_names=["person"],
        imgsz=(320, 320),
        output_layout="nms",
        task="pose",
        strides=STRIDES,
        head="pose",
        codec=TORCH_CODEC.metadata(),
        nms={"conf": 0.25, "iou": 0.45, "max_det": 100},
        keypoints={"num_keypoints": NUM_KEYPOINTS, "flip_idx": [0, 2, 1, 4, 3]},
        preprocess=letterbox_preprocess(114),
    )
    outputs = ["num_dets", "boxes", "scores", "classes", "keypoints"]
    props = to_metadata(info, outputs)
    assert props["head"] == "pose" and '"num_keypoints": 5' in props["codec"]
    assert "keypoints (B, max_det, K, 3)" in props["output_description"]
    assert parse_metadata(props, "pose.onnx") == info
    raw_props = to_metadata(ModelInfo(**{**info.__dict__, "output_layout": "raw"}), ["raw"])
    assert "3K keypoint channels" in raw_props["output_description"]
    box_only = to_metadata(ModelInfo(["car"], (320, 320), "raw", strides=STRIDES), ["raw"])
    assert "keypoint" not in box_only["output_description"]
