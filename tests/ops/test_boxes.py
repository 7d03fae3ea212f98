"""Box math against brute-force references and round trips."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from edgevision.core.image import unletterbox_boxes
from edgevision.ops.boxes import (
    box_area,
    box_iou_numpy,
    clip_boxes,
    cxcywh_to_xyxy,
    order_corners,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_xywh,
)
from edgevision.ops.grid import distance_to_xyxy, make_anchor_points, xyxy_to_distance
from edgevision.ops.iou import box_iou, elementwise_iou


def random_boxes(n, seed, size=100.0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * size / 2 + 0.5
    return torch.cat([xy, xy + wh], dim=1).double()


def brute_iou(a, b):
    """Pixel-free reference: scalar formulas, one pair at a time."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    union = area(a) + area(b) - inter
    iou = inter / union
    cw = max(a[2], b[2]) - min(a[0], b[0])
    ch = max(a[3], b[3]) - min(a[1], b[1])
    giou = iou - (cw * ch - union) / (cw * ch)
    rho2 = ((a[0] + a[2]) / 2 - (b[0] + b[2]) / 2) ** 2 + (
        (a[1] + a[3]) / 2 - (b[1] + b[3]) / 2
    ) ** 2
    c2 = cw**2 + ch**2
    diou = iou - rho2 / c2
    v = (
        4
        / math.pi**2
        * (math.atan((b[2] - b[0]) / (b[3] - b[1])) - math.atan((a[2] - a[0]) / (a[3] - a[1]))) ** 2
    )
    alpha = v / (v - iou + 1)
    return {"iou": iou, "giou": giou, "diou": diou, "ciou": diou - alpha * v}


@pytest.mark.parametrize("kind", ["iou", "giou", "diou", "ciou"])
def test_pairwise_iou_matches_brute_force(kind):
    a, b = random_boxes(7, 0), random_boxes(5, 1)
    ours = box_iou(a, b, kind=kind, eps=0)
    for i in range(len(a)):
        for j in range(len(b)):
            ref = brute_iou(a[i].tolist(), b[j].tolist())[kind]
            assert ours[i, j].item() == pytest.approx(ref, abs=1e-9)


def test_elementwise_equals_diagonal_of_pairwise():
    a, b = random_boxes(6, 2), random_boxes(6, 3)
    for kind in ("iou", "giou", "ciou"):
        torch.testing.assert_close(elementwise_iou(a, b, kind), box_iou(a, b, kind).diagonal())


def test_numpy_iou_matches_torch():
    a, b = random_boxes(8, 4), random_boxes(9, 5)
    np.testing.assert_allclose(
        box_iou_numpy(a.numpy(), b.numpy()), box_iou(a, b, eps=0).numpy(), atol=1e-12
    )


def test_unknown_iou_kind_is_refused():
    with pytest.raises(ValueError, match="unknown IoU kind"):
        box_iou(random_boxes(1, 0), random_boxes(1, 0), kind="siouu")


def test_conversions_round_trip_in_torch_and_numpy():
    boxes = random_boxes(10, 6)
    torch.testing.assert_close(cxcywh_to_xyxy(xyxy_to_cxcywh(boxes)), boxes)
    torch.testing.assert_close(xywh_to_xyxy(xyxy_to_xywh(boxes)), boxes)
    np.testing.assert_allclose(cxcywh_to_xyxy(xyxy_to_cxcywh(boxes.numpy())), boxes.numpy())
    assert xyxy_to_xywh(np.array([[1.0, 2, 4, 8]])).tolist() == [[1, 2, 3, 6]]
    assert xyxy_to_cxcywh(np.array([[0.0, 0, 4, 2]])).tolist() == [[2, 1, 4, 2]]


def test_area_clip_order():
    boxes = np.array([[-5.0, 2, 20, 8], [10, 10, 2, 3]])
    assert box_area(boxes).tolist() == [150.0, 56.0]
    assert clip_boxes(boxes, 12, 9).tolist() == [[0, 2, 12, 8], [10, 9, 2, 3]]
    assert order_corners(boxes).tolist() == [[-5, 2, 20, 8], [2, 3, 10, 10]]
    assert boxes[1, 0] == 10  # inputs are not modified


def test_anchor_points_and_distance_coding():
    points, strides = make_anchor_points([(2, 3), (1, 1)], [8, 16])
    assert points.tolist()[:4] == [[4, 4], [12, 4], [20, 4], [4, 12]]
    assert points[-1].tolist() == [8, 8] and strides.tolist() == [8] * 6 + [16]
    boxes = torch.tensor([[1.0, 2, 30, 40]]).expand(7, 4)
    torch.testing.assert_close(distance_to_xyxy(points, xyxy_to_distance(points, boxes)), boxes)


def test_unletterbox_inverts_letterbox_mapping():
    original = np.array([[10.0, 20, 110, 90]])
    ratio, pad = 0.5, (16.0, 40.0)
    letterboxed = original * ratio + np.array([pad[0], pad[1], pad[0], pad[1]])
    np.testing.assert_allclose(unletterbox_boxes(letterboxed, ratio, pad, (100, 200)), original)


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
box_strategy = st.tuples(finite, finite, st.floats(0.1, 500), st.floats(0.1, 500)).map(
    lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]]
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(box_strategy, min_size=1, max_size=6), st.lists(box_strategy, min_size=1, max_size=6)
)
def test_iou_properties(a, b):
    ta, tb = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    iou = box_iou(ta, tb)
    assert ((iou >= 0) & (iou <= 1 + 1e-9)).all()
    torch.testing.assert_close(iou, box_iou(tb, ta).T)
    giou = box_iou(ta, tb, "giou")
    assert (giou <= iou + 1e-9).all() and (giou >= -1 - 1e-9).all()


@settings(max_examples=100, deadline=None)
@given(st.lists(box_strategy, min_size=1, max_size=8))
def test_conversion_round_trip_property(a):
    t = torch.tensor(a, dtype=torch.float64)
    torch.testing.assert_close(cxcywh_to_xyxy(xyxy_to_cxcywh(t)), t, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(xywh_to_xyxy(xyxy_to_xywh(t)), t, atol=1e-9, rtol=1e-9)
