"""NMS against a brute-force reference."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from edgevision.ops.iou import box_iou
from edgevision.ops.nms import batched_nms, nms, postprocess


def brute_nms(boxes, scores, threshold):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i].item(), i))
    keep = []
    for i in order:
        if all(box_iou(boxes[i : i + 1], boxes[k : k + 1]).item() <= threshold for k in keep):
            keep.append(i)
    return keep


def clustered_boxes(n, seed):
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(4, 2, generator=g) * 200
    pick = torch.randint(0, 4, (n,), generator=g)
    xy = centres[pick] + torch.randn(n, 2, generator=g) * 8
    wh = 20 + torch.rand(n, 2, generator=g) * 20
    return torch.cat([xy, xy + wh], 1), torch.rand(n, generator=g)


def test_nms_equals_brute_force_on_clusters():
    for seed in range(5):
        boxes, scores = clustered_boxes(60, seed)
        for threshold in (0.3, 0.5, 0.7):
            assert nms(boxes, scores, threshold).tolist() == brute_nms(boxes, scores, threshold)


def test_batched_nms_never_suppresses_across_classes():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    classes = torch.tensor([0, 1, 0])
    assert batched_nms(boxes, scores, classes, 0.5).tolist() == [0, 1]


def test_batched_nms_equals_per_class_brute_force():
    boxes, scores = clustered_boxes(80, 11)
    classes = torch.randint(0, 3, (80,), generator=torch.Generator().manual_seed(1))
    expected = []
    for c in range(3):
        idx = (classes == c).nonzero().flatten()
        expected += [idx[k].item() for k in brute_nms(boxes[idx], scores[idx], 0.5)]
    got = batched_nms(boxes, scores, classes, 0.5).tolist()
    assert sorted(got) == sorted(expected)
    assert scores[got].tolist() == sorted(scores[got].tolist(), reverse=True)


def test_empty_input():
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).numel() == 0
    assert (
        batched_nms(
            torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5
        ).numel()
        == 0
    )


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 40), st.floats(0.1, 0.9))
def test_nms_output_is_subset_without_overlapping_pairs(seed, n, threshold):
    boxes, scores = clustered_boxes(n, seed)
    keep = nms(boxes, scores, threshold)
    assert len(set(keep.tolist())) == len(keep) and all(0 <= k < n for k in keep.tolist())
    if len(keep) > 1:
        iou = box_iou(boxes[keep], boxes[keep]).fill_diagonal_(0)
        assert (iou <= threshold).all()


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
    for image, (result, reference) in enumerate(zip(results, expected, strict=True)):
        assert len(reference) > 0
        assert result["classes"].tolist() == [label for _, label, _ in reference]
        torch.testing.assert_close(result["scores"], torch.tensor([s for s, _, _ in reference]))
        torch.testing.assert_close(result["boxes"], torch.tensor([b for _, _, b in reference]))
        assert result["classes"].dtype == torch.int64
        # The kept points, for codecs that gather more per-point outputs (keypoints) with them.
        assert torch.equal(boxes[image][result["index"]], result["boxes"])


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
