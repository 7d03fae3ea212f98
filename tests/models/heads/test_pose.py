"""The pose head: composed of the detection head and keypoint branches, in the raw contract."""

from __future__ import annotations

import pytest
import torch

from edgevision.models.codecs.pose import PoseCodec
from edgevision.models.heads.pose import PoseHead

IN_CHANNELS = (16, 24, 32)
SIZES = ((8, 12), (4, 6), (2, 3))  # a 64 x 96 input at strides 8, 16, 32


def _features(batch: int = 2, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [
        torch.randn(batch, channels, height, width, generator=generator)
        for channels, (height, width) in zip(IN_CHANNELS, SIZES, strict=True)
    ]


@torch.no_grad()
def test_output_is_the_detection_head_then_the_keypoint_levels_in_point_order():
    torch.manual_seed(0)
    head = PoseHead(IN_CHANNELS, num_classes=2, num_keypoints=4, width=16).eval()
    features = _features()
    raw = head(features)
    assert raw.shape == (2, 126, 4 + 2 + 12)
    assert torch.equal(raw[..., :6], head.detection(features))
    # Level 1 (offset 96), row 2, col 5 of its 4 x 6 map: keypoint 3 is channels 15:18.
    level_map = head.keypoint_levels[1](features[1])  # (2, 12, 4, 6)
    torch.testing.assert_close(raw[:, 96 + 2 * 6 + 5, 6 + 9 :], level_map[:, 9:, 2, 5])


@torch.no_grad()
def test_fresh_head_puts_keypoints_on_their_cell_centres_with_visibility_one_half():
    torch.manual_seed(0)
    head = PoseHead(IN_CHANNELS, num_classes=1, num_keypoints=17, width=16).eval()
    codec = head.codec((8, 16, 32))
    assert isinstance(codec, PoseCodec) and codec.num_keypoints == 17
    keypoints = codec.decode_keypoints(head(_features()), (64, 96))
    points, strides = codec.points((64, 96))
    offsets_in_strides = (keypoints[..., :2] - points[:, None]) / strides[:, None, None]
    assert offsets_in_strides.abs().max() < 0.1
    assert (keypoints[..., 2] - 0.5).abs().max() < 0.01


def test_attributes_and_bad_counts():
    head = PoseHead(IN_CHANNELS, num_classes=3, num_keypoints=5, width=16, depthwise=False)
    assert head.num_classes == 3 and head.num_keypoints == 5
    with pytest.raises(ValueError, match="num_keypoints must be at least 1"):
        PoseHead(IN_CHANNELS, num_classes=3, num_keypoints=0)
    with pytest.raises(ValueError, match="num_classes must be at least 1"):
        PoseHead(IN_CHANNELS, num_classes=0, num_keypoints=5)
