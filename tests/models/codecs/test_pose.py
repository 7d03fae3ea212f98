"""The pose codec: exact keypoints from hand-made raw tensors, the round trip, the traced decode."""

from __future__ import annotations

import math

import pytest
import torch

from edgevision.models.codecs.anchor_free import AnchorFreeCodec
from edgevision.models.codecs.pose import PoseCodec

STRIDES = (8, 16, 32)
NUM_KEYPOINTS = 3
NUM_CLASSES = 2
CODEC = PoseCodec(STRIDES, NUM_KEYPOINTS)
HW = (64, 96)  # level sizes 8x12, 4x6, 2x3 -> A = 96 + 24 + 6 = 126
ANCHORS = 126
CHANNELS = 4 + NUM_CLASSES + 3 * NUM_KEYPOINTS


def _random_raw(batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, ANCHORS, CHANNELS, generator=torch.Generator().manual_seed(seed))


def test_hand_made_keypoints_decode_from_the_cell_centre_in_strides():
    raw = torch.zeros(1, ANCHORS, CHANNELS)
    # Level 0, row 1, col 2: centre (20, 12), stride 8. Keypoint 1: dx 0.5, dy -1, logit ln 3.
    raw[0, 14, 6 + 3 : 6 + 6] = torch.tensor([0.5, -1.0, math.log(3)])
    # Level 2 (offset 120), row 1, col 2: centre (80, 48), stride 32. Keypoint 2: dx 1, dy 0.25.
    raw[0, 125, 6 + 6 : 6 + 9] = torch.tensor([1.0, 0.25, 0.0])
    keypoints = CODEC.decode_keypoints(raw, HW)
    assert keypoints.shape == (1, ANCHORS, NUM_KEYPOINTS, 3) and keypoints.dtype == torch.float32
    torch.testing.assert_close(keypoints[0, 14, 1], torch.tensor([28.0, -4.0, 0.75]))
    torch.testing.assert_close(keypoints[0, 14, 0], torch.tensor([20.0, 12.0, 0.5]))  # raw 0
    torch.testing.assert_close(keypoints[0, 125, 2], torch.tensor([144.0, 64.0, 0.5]))


def test_boxes_and_scores_are_the_anchor_free_decode_of_the_box_channels():
    raw = _random_raw()
    boxes, scores = CODEC.decode(raw, HW)
    want_boxes, want_scores = AnchorFreeCodec(STRIDES).decode(raw[..., : 4 + NUM_CLASSES], HW)
    assert torch.equal(boxes, want_boxes) and torch.equal(scores, want_scores)
    box_raw, keypoint_raw = CODEC.split(raw)
    assert torch.equal(box_raw, raw[..., :6])
    assert torch.equal(keypoint_raw[:, :, 1], raw[..., 9:12])  # x, y, v of keypoint 1


def test_encode_decode_round_trip():
    generator = torch.Generator().manual_seed(1)
    keypoints = torch.rand(2, ANCHORS, NUM_KEYPOINTS, 2, generator=generator) * 200 - 50
    offsets = CODEC.encode_keypoints(keypoints, HW)
    raw = _random_raw()
    raw[..., 6:] = torch.cat([offsets, torch.zeros(2, ANCHORS, NUM_KEYPOINTS, 1)], -1).flatten(2)
    decoded = CODEC.decode_keypoints(raw, HW)
    torch.testing.assert_close(decoded[..., :2], keypoints, atol=1e-4, rtol=0)
    assert torch.equal(decoded[..., 2], torch.full_like(decoded[..., 2], 0.5))


def test_traced_decode_agrees_and_half_raw_decodes_in_float32():
    raw = _random_raw()
    images = torch.zeros(2, 3, *HW)
    for got, want in zip(CODEC.decode_traced(raw, images), CODEC.decode(raw, HW), strict=True):
        torch.testing.assert_close(got, want)
    traced = CODEC.decode_keypoints_traced(raw, images)
    torch.testing.assert_close(traced, CODEC.decode_keypoints(raw, HW))
    assert CODEC.decode_keypoints(raw.half(), HW).dtype == torch.float32


def test_mismatched_raw_is_explained():
    with pytest.raises(ValueError, match="3 keypoints: expected \\(B, A, 4 \\+ classes \\+ 9\\)"):
        CODEC.decode(torch.zeros(1, ANCHORS, 4 + 9), HW)
    with pytest.raises(ValueError, match="divisible by 32"):
        CODEC.decode_keypoints(_random_raw(), (64, 64))
    with pytest.raises(ValueError, match="divisible by 32"):
        CODEC.decode(_random_raw(), (64, 64))
    with pytest.raises(ValueError, match="at least 1"):
        PoseCodec(STRIDES, 0)


def test_metadata_names_the_family_and_the_keypoint_count():
    assert CODEC.family == "pose" and CODEC.strides == STRIDES
    assert CODEC.metadata() == {"head": "pose", "strides": [8, 16, 32], "num_keypoints": 3}
    points, strides = CODEC.points(HW)
    assert points.shape == (ANCHORS, 2) and strides[-1] == 32
