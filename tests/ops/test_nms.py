"""NMS against a brute-force reference."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from edgevision.ops import batched_nms, box_iou, nms


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
