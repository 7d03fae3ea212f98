"""The anchor-free codec: exact boxes from hand-made raw tensors, the grid, the traced decode."""

from __future__ import annotations

import math

import pytest
import torch

from edgevision.models.codecs.anchor_free import AnchorFreeCodec

STRIDES = (8, 16, 32)
CODEC = AnchorFreeCodec(STRIDES)


def _inverse_softplus(values: list[float]) -> torch.Tensor:
    return torch.tensor([math.log(math.expm1(v)) for v in values])


def test_decode_hand_made_points_give_exact_boxes():
    # 64 x 96 input: level sizes 8x12, 4x6, 2x3 -> A = 96 + 24 + 6 = 126.
    raw = torch.zeros(1, 126, 4 + 2)
    # Level 0, row 1, col 2: centre (20, 12); distances 1 stride each -> box (12, 4, 28, 20).
    raw[0, 1 * 12 + 2, :4] = _inverse_softplus([1, 1, 1, 1])
    raw[0, 1 * 12 + 2, 4:] = torch.tensor([0.0, math.log(3)])
    # Level 2 (offset 96 + 24 = 120), row 1, col 2: centre (80, 48), stride 32.
    raw[0, 120 + 1 * 3 + 2, :4] = _inverse_softplus([0.5, 1.0, 1.5, 2.0])
    boxes, scores = CODEC.decode(raw, (64, 96))
    assert boxes.shape == (1, 126, 4) and scores.shape == (1, 126, 2)
    torch.testing.assert_close(boxes[0, 14], torch.tensor([12.0, 4.0, 28.0, 20.0]))
    torch.testing.assert_close(boxes[0, 125], torch.tensor([64.0, 16.0, 128.0, 112.0]))
    torch.testing.assert_close(scores[0, 14], torch.tensor([0.5, 0.75]))
    # Level 1 (offset 96), first point: centre (8, 8), softplus(0) * 16 = ln2 * 16 per side.
    side = math.log(2) * 16
    torch.testing.assert_close(boxes[0, 96], torch.tensor([8 - side, 8 - side, 8 + side, 8 + side]))


def test_decode_rejects_raw_of_another_input_size():
    with pytest.raises(ValueError, match="divisible by 32"):
        CODEC.decode(torch.zeros(1, 126, 6), (64, 64))


def test_decode_returns_float32_for_half_raw():
    boxes, scores = CODEC.decode(torch.zeros(2, 21, 5, dtype=torch.float16), (32, 32))
    assert boxes.dtype == scores.dtype == torch.float32


def test_points_follow_the_raw_order_and_the_traced_decode_agrees():
    points, strides = CODEC.points((64, 96))
    assert points.shape == (126, 2) and strides.tolist()[:1] + strides.tolist()[-1:] == [8, 32]
    assert points[0].tolist() == [4, 4] and points[13].tolist() == [12, 12]  # row 1, col 1
    raw = torch.randn(2, 126, 7, generator=torch.Generator().manual_seed(0))
    images = torch.zeros(2, 3, 64, 96)
    for got, want in zip(
        CODEC.decode_traced(raw, images), CODEC.decode(raw, (64, 96)), strict=True
    ):
        torch.testing.assert_close(got, want)
    assert CODEC.metadata() == {"head": "anchor_free", "strides": [8, 16, 32]}
