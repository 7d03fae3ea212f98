"""OKS AP through our conversion equals pycocotools on COCO dicts built by hand, for K = 5 and
K = 17, with the sigmas given (never COCO's person sigmas by default); the per-keypoint view."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest

from edgevision.core.errors import ConfigError
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.eval.keypoints import (
    KEYPOINT_STAT_NAMES,
    keypoint_evaluate,
    per_keypoint_errors,
)


def _scene(num_keypoints: int, seed: int = 0):
    """(records, detections): 12 images of 1-3 objects; detections are noisy copies of the
    objects (some points far off), a few misses and a few false positives, random scores."""
    rng = np.random.default_rng(seed)
    records, detections = [], []
    for index in range(12):
        count = int(rng.integers(1, 4))
        xy = rng.uniform(20, 180, (count, 2))
        wh = rng.uniform(20, 120, (count, 2))
        boxes = np.concatenate([xy, xy + wh], 1)
        points = xy[:, None] + rng.uniform(0, 1, (count, num_keypoints, 2)) * wh[:, None]
        visibility = rng.choice([0, 1, 2], (count, num_keypoints), p=[0.2, 0.2, 0.6])
        points = np.where(visibility[..., None] > 0, points, 0)
        keypoints = np.concatenate([points, visibility[..., None]], 2).astype(np.float32)
        records.append(
            ImageRecord(Path(f"/d/{index}.jpg"), 320, 320, boxes, [0] * count, keypoints=keypoints)
        )
        keep = rng.uniform(size=count) > 0.15
        noise = rng.normal(0, rng.uniform(1, 8), (count, num_keypoints, 2))
        noise[rng.uniform(size=(count, num_keypoints)) < 0.1] += 40
        found = np.concatenate([points + noise, rng.uniform(0, 1, (count, num_keypoints, 1))], 2)
        extra = int(rng.integers(0, 2))
        detections.append(
            {
                "boxes": np.concatenate(
                    [boxes[keep] + rng.normal(0, 2, (keep.sum(), 4)), boxes[:extra] + 60]
                ),
                "scores": rng.uniform(0.05, 1, int(keep.sum()) + extra),
                "classes": np.zeros(int(keep.sum()) + extra, np.int64),
                "keypoints": np.concatenate([found[keep], found[:extra] + 30]),
            }
        )
    names = [f"p{i}" for i in range(num_keypoints)]
    return RecordSet(records, ["thing"], Path("/d"), "coco", kpt_names=names), detections


def _reference(records: RecordSet, detections: list[dict], sigmas: np.ndarray) -> list[float]:
    """pycocotools on COCO dicts written here from the arrays, independently of our converter."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    for image_id, (record, found) in enumerate(
        zip(records.records, detections, strict=True), start=1
    ):
        images.append({"id": image_id, "width": 320, "height": 320, "file_name": f"{image_id}.jpg"})
        for box, kp in zip(record.boxes.astype(float), record.keypoints.astype(float), strict=True):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append(
                {
                    "id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                    "bbox": [box[0], box[1], w, h], "area": w * h, "iscrowd": 0,
                    "keypoints": kp.reshape(-1).tolist(), "num_keypoints": int((kp[:, 2] > 0).sum()),
                }
            )  # fmt: skip
        for box, kp, score in zip(found["boxes"], found["keypoints"], found["scores"], strict=True):
            x0, y0, x1, y1 = (float(v) for v in box)
            results.append(
                {"image_id": image_id, "category_id": 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                 "keypoints": np.asarray(kp, float).reshape(-1).tolist(), "score": float(score)}
            )  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations,
                      "categories": [{"id": 1, "name": "thing", "keypoints": records.kpt_names}]}  # fmt: skip
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(results), "keypoints")
        evaluator.params.kpt_oks_sigmas = sigmas
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return list(evaluator.stats)


@pytest.mark.parametrize("num_keypoints", [5, 17])
@pytest.mark.parametrize("backend", ["pycocotools", "faster_coco_eval"])
def test_oks_ap_equals_pycocotools_with_the_same_sigmas(num_keypoints, backend):
    records, detections = _scene(num_keypoints, seed=num_keypoints)
    sigmas = np.linspace(0.03, 0.1, num_keypoints)
    ours = keypoint_evaluate(records, detections, sigmas, backend=backend)
    reference = _reference(records, detections, sigmas)
    for name, value in zip(KEYPOINT_STAT_NAMES, reference, strict=True):
        assert ours[name] == pytest.approx(value, abs=1e-6), name
    assert 0.05 < ours["OKS mAP50"] < 0.95  # a scene where the sigmas matter
    assert ours["sigmas"] == pytest.approx(sigmas.tolist())


def test_tighter_sigmas_give_lower_ap_and_wrong_lengths_are_refused():
    records, detections = _scene(5)
    tight = keypoint_evaluate(records, detections, [0.025] * 5)["OKS mAP50-95"]
    loose = keypoint_evaluate(records, detections, [0.2] * 5)["OKS mAP50-95"]
    assert tight < loose
    with pytest.raises(ConfigError, match="need 5 positive values"):
        keypoint_evaluate(records, detections, [0.05] * 4)


def test_per_keypoint_errors_on_a_hand_case():
    box = np.array([[0, 0, 30, 40]], np.float32)  # diagonal 50, sqrt(area) ~ 34.64
    truth = np.array([[[10, 10, 2], [20, 20, 2], [5, 5, 0]]], np.float32)
    records = RecordSet(
        [ImageRecord(Path("/d/a.jpg"), 64, 64, box, [0], keypoints=truth)],
        ["t"],
        Path("/d"),
        "coco",
    )
    found = {
        "boxes": box,
        "scores": np.array([0.9]),
        "classes": np.array([0]),
        "keypoints": np.array([[[13, 14, 0.9], [20, 20, 0.8], [50, 50, 0.1]]]),  # off by 5 px, 0
    }
    result = per_keypoint_errors(records, [found])
    assert result["matched"] == 1
    assert result["error_per_scale"][:2] == pytest.approx([5 / np.sqrt(1200), 0.0])
    assert result["pck_0.05"][:2] == [0.0, 1.0] and result["pck_0.1"][:2] == [1.0, 1.0]
    assert np.isnan(result["error_per_scale"][2])  # the unlabelled point is not scored
