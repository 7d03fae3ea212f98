"""OKS, PCK and the keypoint offsets against pycocotools, brute-force loops and hand cases."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
import torch

from edgevision.ops.keypoints import (
    elementwise_oks,
    keypoint_error_normalised,
    keypoints_to_offsets,
    offsets_to_keypoints,
    oks,
    pck,
)

SIGMAS = np.array([0.026, 0.05, 0.079, 0.107, 0.062, 0.089, 0.035])


def random_case(seed: int, num_pred: int = 8, num_gt: int = 5, num_keypoints: int = 7):
    """Predictions near the gts (some far), gts with mixed labels, the last with none labelled."""
    rng = np.random.default_rng(seed)
    corners = rng.uniform(0, 120, (num_gt, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(10, 80, (num_gt, 2))], axis=1)
    gt = np.zeros((num_gt, num_keypoints, 3))
    gt[..., :2] = boxes[:, None, :2] + rng.uniform(0, 1, (num_gt, num_keypoints, 2)) * (
        boxes[:, None, 2:] - boxes[:, None, :2]
    )
    gt[..., 2] = rng.integers(0, 3, (num_gt, num_keypoints))
    gt[-1, :, 2] = 0  # COCO's box rule
    gt[gt[..., 2] == 0] = 0.0  # unlabelled points are written 0, 0, 0
    source = rng.integers(0, num_gt, num_pred)
    pred = gt[source, :, :2] + rng.normal(0, 6, (num_pred, num_keypoints, 2))
    pred[0] += 200  # far from everything: tests the box rule's outside distances
    areas = rng.uniform(0.4, 1.0, num_gt) * np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    return pred, gt, areas, boxes


def brute_oks(pred, gt, areas, boxes, sigmas):
    """``COCOeval.computeOks`` restated with loops (xyxy boxes in place of COCO's xywh)."""
    result = np.zeros((len(pred), len(gt)))
    variances = (2 * sigmas) ** 2
    for j, (g, area, box) in enumerate(zip(gt, areas, boxes, strict=True)):
        labelled = g[:, 2] > 0
        width, height = box[2] - box[0], box[3] - box[1]
        for i, d in enumerate(pred):
            total = 0.0
            for k in range(len(sigmas)):
                if labelled.any():
                    if not labelled[k]:
                        continue
                    dx, dy = d[k, 0] - g[k, 0], d[k, 1] - g[k, 1]
                else:
                    dx = max(0, box[0] - width - d[k, 0]) + max(0, d[k, 0] - box[2] - width)
                    dy = max(0, box[1] - height - d[k, 1]) + max(0, d[k, 1] - box[3] - height)
                total += math.exp(-(dx**2 + dy**2) / variances[k] / (area + np.spacing(1)) / 2)
            result[i, j] = total / (labelled.sum() if labelled.any() else len(sigmas))
    return result


def pycocotools_oks(pred, gt, areas, boxes, sigmas):
    """The (N, M) matrix ``COCOeval.computeOks`` gives for one image with these objects."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    names = [f"point{k}" for k in range(len(sigmas))]
    annotations = [
        {
            "id": j + 1,
            "image_id": 1,
            "category_id": 1,
            "iscrowd": 0,
            "area": float(areas[j]),
            "bbox": [float(v) for v in (*boxes[j, :2], *(boxes[j, 2:] - boxes[j, :2]))],
            "keypoints": [float(v) for v in gt[j].reshape(-1)],
            "num_keypoints": int((gt[j, :, 2] > 0).sum()),
        }
        for j in range(len(gt))
    ]
    # Scores in row order, so COCO's sort by score keeps the rows where they are.
    results = [
        {"image_id": 1, "category_id": 1, "score": 1.0 - i / 100,
         "keypoints": [float(v) for v in np.c_[pred[i], np.ones(len(sigmas))].reshape(-1)]}
        for i in range(len(pred))
    ]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO()
        ground_truth.dataset = {
            "images": [{"id": 1, "width": 400, "height": 400}],
            "categories": [{"id": 1, "name": "thing", "keypoints": names, "skeleton": []}],
            "annotations": annotations,
        }
        ground_truth.createIndex()
        evaluator = COCOeval(ground_truth, ground_truth.loadRes(results), iouType="keypoints")
        evaluator.params.kpt_oks_sigmas = np.array(sigmas)
        evaluator.evaluate()
    return np.asarray(evaluator.ious[(1, 1)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_oks_equals_pycocotools_and_a_brute_force_loop(seed):
    pred, gt, areas, boxes = random_case(seed)
    got = oks(pred, gt, areas, SIGMAS, boxes)
    reference = pycocotools_oks(pred, gt, areas, boxes, SIGMAS)
    assert got.shape == (8, 5) and got.dtype == np.float64
    np.testing.assert_allclose(got, reference, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got, brute_oks(pred, gt, areas, boxes, SIGMAS), rtol=0, atol=1e-12)
    assert 0.05 < got[1:, :-1].max() and got[0, :-1].max() < 1e-6  # near and far predictions
    assert 0 < got[:, -1].max() < 1  # the box rule gives a graded value, not 0 or 1


def test_oks_in_torch_equals_numpy_and_without_boxes_unlabelled_objects_score_zero():
    pred, gt, areas, boxes = random_case(3)
    expected = oks(pred, gt, areas, SIGMAS, boxes)
    for dtype, tolerance in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        tensors = [torch.tensor(a, dtype=dtype) for a in (pred, gt, areas, boxes)]
        got = oks(*tensors[:3], SIGMAS, tensors[3])
        assert isinstance(got, torch.Tensor) and got.dtype == dtype
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=tolerance)
    without_boxes = oks(pred, gt, areas, SIGMAS)
    np.testing.assert_array_equal(without_boxes[:, :-1], expected[:, :-1])
    assert not without_boxes[:, -1].any()


def test_one_point_off_by_a_known_distance():
    gt = np.array([[[10.0, 10.0, 2], [30.0, 40.0, 1], [0.0, 0.0, 0.0]]])
    pred = gt[:, :, :2].copy()
    pred[0, 1] += (3.0, 4.0)  # 5 px off; the unlabelled third point is ignored wherever it is
    pred[0, 2] = (500.0, 500.0)
    sigmas, area = [0.05, 0.1, 0.2], 400.0
    expected = (1 + math.exp(-25 / (2 * area * (2 * 0.1) ** 2))) / 2
    assert oks(pred, gt, [area], sigmas)[0, 0] == pytest.approx(expected, abs=1e-12)
    assert oks(gt, gt, [area], sigmas)[0, 0] == 1.0  # a third column in pred is ignored
    pair = elementwise_oks(torch.tensor(pred), torch.tensor(gt), torch.tensor([area]), sigmas)
    assert pair.shape == (1,) and float(pair[0]) == pytest.approx(expected, abs=1e-12)


def test_pck_counts_labelled_points_within_a_fraction_of_the_diagonal():
    boxes = np.array([[0.0, 0.0, 30.0, 40.0], [0.0, 0.0, 10.0, 10.0]])  # diagonals 50 and 14.1
    gt = np.zeros((2, 4, 3))
    gt[0, :, :2], gt[0, :3, 2] = [[10, 10], [20, 20], [5, 5], [1, 1]], 2  # point 3 unlabelled
    pred = gt[..., :2].copy()
    pred[0, 0] += (6.0, 8.0)  # 10 px = exactly 0.2 * 50: correct (<=)
    pred[0, 1] += (0.0, 10.5)  # beyond: wrong
    pred[0, 3] += 100.0  # unlabelled: not counted
    got = pck(pred, gt, boxes, fraction=0.2)
    assert got[0] == pytest.approx(2 / 3) and math.isnan(got[1])  # object 1 has no labels
    torch_got = pck(torch.tensor(pred), torch.tensor(gt), torch.tensor(boxes), fraction=0.2)
    np.testing.assert_allclose(torch_got.numpy(), got, equal_nan=True)


def test_keypoint_error_is_mean_distance_over_sqrt_area():
    gt = np.zeros((2, 3, 3))
    gt[0, :, 2] = [2, 1, 0]
    pred = gt[..., :2].copy()
    pred[0, 0] += (3.0, 4.0)  # 5 px
    pred[0, 1] += (0.0, 1.0)  # 1 px
    pred[0, 2] += 99.0  # unlabelled
    got = keypoint_error_normalised(pred, gt, np.array([36.0, 1.0]))
    assert got[0] == pytest.approx(3 / 6) and math.isnan(got[1])


def test_offsets_round_trip_and_decode_from_the_cell_centre():
    points = torch.tensor([[4.0, 4.0], [24.0, 8.0]])
    strides = torch.tensor([8.0, 16.0])
    offsets = torch.tensor([[[0.0, 0.0], [0.5, -1.0]], [[1.0, 0.25], [-2.0, 3.0]]])
    keypoints = offsets_to_keypoints(points, strides, offsets)
    assert keypoints[0, 0].tolist() == [4.0, 4.0]  # zero offset: the cell centre
    assert keypoints[0, 1].tolist() == [12.0, -12.0]  # 2 * d * stride
    assert keypoints[1, 1].tolist() == [24.0 - 64.0, 8.0 + 96.0]
    torch.testing.assert_close(keypoints_to_offsets(points, strides, keypoints), offsets)
    batched = offsets_to_keypoints(points.numpy(), strides.numpy(), offsets.numpy()[None])
    np.testing.assert_array_equal(batched[0], keypoints.numpy())
