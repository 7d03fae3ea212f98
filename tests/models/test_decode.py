"""decode: exact boxes from hand-made raw tensors; postprocess: against a brute-force reference."""

from __future__ import annotations

import math

import pytest
import torch

from edgevision.models import decode, postprocess

STRIDES = (8, 16, 32)


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
    boxes, scores = decode(raw, STRIDES, (64, 96))
    assert boxes.shape == (1, 126, 4) and scores.shape == (1, 126, 2)
    torch.testing.assert_close(boxes[0, 14], torch.tensor([12.0, 4.0, 28.0, 20.0]))
    torch.testing.assert_close(boxes[0, 125], torch.tensor([64.0, 16.0, 128.0, 112.0]))
    torch.testing.assert_close(scores[0, 14], torch.tensor([0.5, 0.75]))
    # Level 1 (offset 96), first point: centre (8, 8), softplus(0) * 16 = ln2 * 16 per side.
    side = math.log(2) * 16
    torch.testing.assert_close(boxes[0, 96], torch.tensor([8 - side, 8 - side, 8 + side, 8 + side]))


def test_decode_rejects_raw_of_another_input_size():
    with pytest.raises(ValueError, match="divisible by 32"):
        decode(torch.zeros(1, 126, 6), STRIDES, (64, 64))


def test_decode_returns_float32_for_half_raw():
    boxes, scores = decode(torch.zeros(2, 21, 5, dtype=torch.float16), STRIDES, (32, 32))
    assert boxes.dtype == scores.dtype == torch.float32


def _iou(a: list[float], b: list[float]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _reference(boxes, scores, conf, iou, max_det, class_agnostic, max_candidates):
    """Per-point Python loops: best class, top candidates, threshold, greedy NMS, max_det."""
    results = []
    for image_boxes, image_scores in zip(boxes.tolist(), scores.tolist(), strict=True):
        points = []
        for box, point_scores in zip(image_boxes, image_scores, strict=True):
            best = max(range(len(point_scores)), key=lambda c: point_scores[c])
            points.append((point_scores[best], best, box))
        points.sort(key=lambda p: -p[0])
        points = [p for p in points[:max_candidates] if p[0] > conf]
        kept = []
        for score, label, box in points:
            if all(
                _iou(box, other) <= iou
                for _, other_label, other in kept
                if class_agnostic or other_label == label
            ):
                kept.append((score, label, box))
        results.append(kept[:max_det])
    return results


@pytest.mark.parametrize(
    ("class_agnostic", "max_det", "max_candidates"),
    [(False, 300, 1000), (True, 300, 1000), (False, 7, 40)],
)
def test_postprocess_matches_brute_force(class_agnostic, max_det, max_candidates):
    generator = torch.Generator().manual_seed(0)
    batch, points, classes = 3, 150, 4
    corners = torch.rand(batch, points, 2, generator=generator) * 80
    sizes = torch.rand(batch, points, 2, generator=generator) * 30 + 2
    boxes = torch.cat([corners, corners + sizes], dim=-1)
    scores = torch.rand(batch, points, classes, generator=generator)  # distinct almost surely
    results = postprocess(boxes, scores, 0.3, 0.4, max_det, class_agnostic, max_candidates)
    expected = _reference(boxes, scores, 0.3, 0.4, max_det, class_agnostic, max_candidates)
    assert len(results) == batch
    for result, reference in zip(results, expected, strict=True):
        assert len(reference) > 0
        assert result["classes"].tolist() == [label for _, label, _ in reference]
        torch.testing.assert_close(result["scores"], torch.tensor([s for s, _, _ in reference]))
        torch.testing.assert_close(result["boxes"], torch.tensor([b for _, _, b in reference]))
        assert result["classes"].dtype == torch.int64


def test_postprocess_suppresses_same_class_but_not_other_classes():
    boxes = torch.tensor([[[0.0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10]]])
    scores = torch.tensor([[[0.9, 0.0], [0.8, 0.0], [0.0, 0.7]]])
    result = postprocess(boxes, scores, conf=0.25, iou=0.45)[0]
    assert result["scores"].tolist() == pytest.approx([0.9, 0.7])
    assert result["classes"].tolist() == [0, 1]
    agnostic = postprocess(boxes, scores, conf=0.25, iou=0.45, class_agnostic=True)[0]
    assert agnostic["classes"].tolist() == [0]


def test_postprocess_nothing_above_threshold_gives_empty_results():
    results = postprocess(torch.rand(2, 10, 4), torch.rand(2, 10, 3) * 0.2, conf=0.5)
    assert [r["boxes"].shape for r in results] == [(0, 4), (0, 4)]
    assert [r["scores"].shape for r in results] == [(0,), (0,)]
