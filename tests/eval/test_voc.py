"""VOC AP: hand-computed values, and parity with py-faster-rcnn's voc_eval in +1 pixel coordinates."""

from __future__ import annotations

import numpy as np
import pytest

from edgevision.core.errors import ConfigError
from edgevision.eval.voc import voc_ap, voc_evaluate
from tests.eval.cases import make_record_set, random_case, record

# ---------------------------------------------------------------- voc_ap on hand-made curves


def test_voc_ap_two_points():
    recall, precision = np.array([0.5, 1.0]), np.array([1.0, 0.5])
    # Area: 0.5 * 1.0 + 0.5 * 0.5.  11-point: t = 0..0.5 (6 points) -> 1.0, t = 0.6..1 -> 0.5.
    assert voc_ap(recall, precision, use_07_metric=False) == pytest.approx(0.75, abs=1e-12)
    assert voc_ap(recall, precision, use_07_metric=True) == pytest.approx(8.5 / 11, abs=1e-12)


def test_voc_ap_uses_the_right_monotone_envelope():
    recall = np.array([0.2, 0.4, 0.4, 0.5])
    precision = np.array([1.0, 0.5, 0.75, 0.5])
    # Envelope: 1.0 up to 0.2, 0.75 up to 0.4, 0.5 up to 0.5, then 0 up to 1.
    assert voc_ap(recall, precision, False) == pytest.approx(
        0.2 + 0.2 * 0.75 + 0.1 * 0.5, abs=1e-12
    )
    # t = 0, .1, .2 -> 1.0; t = .3, .4 -> 0.75; t = .5 -> 0.5; t >= .6 -> 0.
    assert voc_ap(recall, precision, True) == pytest.approx((3 + 2 * 0.75 + 0.5) / 11, abs=1e-12)


def test_voc_ap_empty_curve_is_zero():
    assert voc_ap(np.zeros(0), np.zeros(0), False) == 0.0
    assert voc_ap(np.zeros(0), np.zeros(0), True) == 0.0


def test_voc_ap_11_point_thresholds_are_py_faster_rcnn_floats():
    """np.arange(0, 1.1, 0.1)[3] is 0.30000000000000004, so a recall of 0.3 misses that point."""
    assert voc_ap(np.array([0.3]), np.array([1.0]), True) == pytest.approx(3 / 11, abs=1e-12)
    assert voc_ap(np.array([0.3]), np.array([1.0]), False) == pytest.approx(0.3, abs=1e-12)


# ---------------------------------------------------------------- voc_evaluate by hand


def _hand_case(root):
    """Class car: a found object, a duplicate, a difficult object, a miss, a far FP.

    Scores sorted: FP (0.95), TP (0.9), duplicate FP (0.8), on-difficult ignored (0.7), TP (0.6).
    """
    records = [
        record(root, "a.jpg", [[10, 10, 50, 50], [60, 60, 90, 90]], [0, 0], difficult=[0, 1]),
        record(root, "b.jpg", [[0, 0, 40, 40], [50, 50, 80, 80]], [0, 0]),
    ]
    detections = [
        {
            "boxes": [[10, 10, 50, 50], [12, 12, 52, 52], [60, 60, 90, 90]],
            "scores": [0.9, 0.8, 0.7],
            "classes": [0, 0, 0],
        },
        {
            "boxes": [[0, 0, 40, 40], [60, 0, 70, 10], [0, 0, 40, 40]],
            "scores": [0.6, 0.95, 0.5],
            "classes": [0, 0, 1],  # the last is class "truck", which has no ground truth
        },
    ]
    return make_record_set(records, root, names=["car", "truck"]), detections


def test_voc_evaluate_hand_example(tmp_path):
    record_set, detections = _hand_case(tmp_path)
    area = voc_evaluate(record_set, detections, use_07_metric=False)
    assert area["num_gt"] == [3, 0]
    assert area["num_detections"] == [5, 1]
    np.testing.assert_allclose(area["recall"][0], [0, 1 / 3, 1 / 3, 1 / 3, 2 / 3], atol=1e-12)
    np.testing.assert_allclose(area["precision"][0], [0, 1 / 2, 1 / 3, 1 / 3, 1 / 2], atol=1e-12)
    # Envelope 0.5 from recall 0 to 2/3: AP = (2/3) * 0.5.
    assert area["ap"][0] == pytest.approx(1 / 3, abs=1e-12)
    assert np.isnan(area["ap"][1])  # no truck in the split: undefined, excluded from the mean
    assert area["mAP"] == pytest.approx(1 / 3, abs=1e-12)
    # 11-point: precision 0.5 is reached for t = 0 .. 0.6 (recall 2/3), 7 points.
    assert voc_evaluate(record_set, detections, use_07_metric=True)["mAP"] == pytest.approx(
        3.5 / 11
    )


def test_difficult_duplicates_are_ignored_not_penalised(tmp_path):
    records = [record(tmp_path, "a.jpg", [[10, 10, 50, 50]], [0], difficult=[1])]
    records.append(record(tmp_path, "b.jpg", [[10, 10, 50, 50]], [0]))
    record_set = make_record_set(records, tmp_path, names=["car"])
    boxes = [[10, 10, 50, 50], [11, 11, 50, 50]]
    detections = [
        {"boxes": boxes, "scores": [0.9, 0.8], "classes": [0, 0]},
        {"boxes": boxes[:1], "scores": [0.7], "classes": [0]},
    ]
    assert voc_evaluate(record_set, detections)["mAP"] == pytest.approx(1.0)


def test_iou_exactly_at_threshold_counts(tmp_path):
    """Devkit rule ``ovmax >= minoverlap``: a box covering half the object is a true positive."""
    record_set = make_record_set([record(tmp_path, "a.jpg", [[0, 0, 40, 20]], [0])], tmp_path)
    half = [{"boxes": [[0, 0, 20, 20]], "scores": [0.9], "classes": [0]}]
    assert voc_evaluate(record_set, half, iou_threshold=0.5)["ap"][0] == 1.0


def test_best_iou_object_already_taken_is_a_duplicate(tmp_path):
    """As in the devkit, a detection is judged against its best-IoU object only, even if taken."""
    objects = [[0, 0, 40, 40], [10, 0, 50, 40]]
    record_set = make_record_set([record(tmp_path, "a.jpg", objects, [0, 0])], tmp_path)
    # The second box has IoU 0.82 with object 0 (taken by the first) and 0.74 with the free
    # object 1: VOC calls it a duplicate, where COCO's matching would give it object 1.
    boxes = [[0, 0, 40, 40], [4, 0, 44, 40]]
    detections = [{"boxes": boxes, "scores": [0.9, 0.8], "classes": [0, 0]}]
    result = voc_evaluate(record_set, detections)
    np.testing.assert_allclose(result["precision"][0], [1.0, 0.5])
    np.testing.assert_allclose(result["recall"][0], [0.5, 0.5])


def test_equal_scores_keep_record_order(tmp_path):
    """Ties are broken by a stable sort (MATLAB's sort): image order, then detection order."""
    records = [record(tmp_path, "a.jpg", [], []), record(tmp_path, "b.jpg", [[0, 0, 9, 9]], [0])]
    record_set = make_record_set(records, tmp_path, names=["car"])
    detections = [
        {"boxes": [[50, 50, 60, 60]], "scores": [0.5], "classes": [0]},  # FP, first record
        {"boxes": [[0, 0, 9, 9]], "scores": [0.5], "classes": [0]},  # TP, second record
    ]
    np.testing.assert_allclose(voc_evaluate(record_set, detections)["precision"][0], [0.0, 0.5])


def test_bad_threshold(tmp_path):
    record_set, detections = _hand_case(tmp_path)
    with pytest.raises(ConfigError, match="iou_threshold"):
        voc_evaluate(record_set, detections, iou_threshold=0.0)


# ---------------------------------------------------------------- parity with py-faster-rcnn


def _reference_voc_ap(rec, prec, use_07_metric):
    """py-faster-rcnn lib/datasets/voc_eval.py::voc_ap, loop for loop."""
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def _one_based(boxes):
    """Continuous 0-based xyxy (integer valued) -> VOC 1-based inclusive pixels."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([boxes[:, 0] + 1, boxes[:, 1] + 1, boxes[:, 2], boxes[:, 3]], axis=1)


def _reference_voc_eval(record_set, detections, class_index, ovthresh, use_07_metric):
    """py-faster-rcnn lib/datasets/voc_eval.py::voc_eval with its +1 pixel arithmetic.

    Two deliberate differences, both documented in edgevision.eval.voc: the sort is stable
    (MATLAB's sort; numpy's default quicksort is not) and the IoU test is ``>=`` (devkit).
    """
    class_recs, npos = {}, 0
    for i, rec in enumerate(record_set.records):
        mask = rec.labels == class_index
        difficult = rec.difficult[mask]
        npos += int(np.sum(~difficult))
        class_recs[i] = {"bbox": _one_based(rec.boxes[mask]), "difficult": difficult,
                         "det": [False] * int(mask.sum())}  # fmt: skip
    image_ids, confidence, boxes = [], [], []
    for i, det in enumerate(detections):
        mask = np.asarray(det["classes"]) == class_index
        image_ids += [i] * int(mask.sum())
        confidence += list(np.asarray(det["scores"])[mask])
        boxes.append(_one_based(np.asarray(det["boxes"])[mask]))
    confidence, BB = np.array(confidence), np.concatenate(boxes)
    sorted_ind = np.argsort(-confidence, kind="stable")
    BB = BB[sorted_ind, :]
    image_ids = [image_ids[x] for x in sorted_ind]
    nd = len(image_ids)
    tp, fp = np.zeros(nd), np.zeros(nd)
    for d in range(nd):
        R = class_recs[image_ids[d]]
        bb = BB[d, :].astype(float)
        ovmax = -np.inf
        BBGT = R["bbox"].astype(float)
        if BBGT.size > 0:
            ixmin = np.maximum(BBGT[:, 0], bb[0])
            iymin = np.maximum(BBGT[:, 1], bb[1])
            ixmax = np.minimum(BBGT[:, 2], bb[2])
            iymax = np.minimum(BBGT[:, 3], bb[3])
            iw = np.maximum(ixmax - ixmin + 1.0, 0.0)
            ih = np.maximum(iymax - iymin + 1.0, 0.0)
            inters = iw * ih
            uni = ((bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0)
                   + (BBGT[:, 2] - BBGT[:, 0] + 1.0) * (BBGT[:, 3] - BBGT[:, 1] + 1.0) - inters)  # fmt: skip
            overlaps = inters / uni
            ovmax = np.max(overlaps)
            jmax = np.argmax(overlaps)
        if ovmax >= ovthresh:
            if not R["difficult"][jmax]:
                if not R["det"][jmax]:
                    tp[d] = 1.0
                    R["det"][jmax] = 1
                else:
                    fp[d] = 1.0
        else:
            fp[d] = 1.0
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return _reference_voc_ap(rec, prec, use_07_metric)


@pytest.mark.parametrize("use_07_metric", [False, True])
@pytest.mark.parametrize("iou_threshold", [0.5, 0.75])
def test_matches_py_faster_rcnn(tmp_path, use_07_metric, iou_threshold):
    record_set, detections = random_case(
        seed=3, root=tmp_path, num_images=40, difficult_rate=0.15, crowd_rate=0.0,
        integer_detections=True,
    )  # fmt: skip
    ours = voc_evaluate(record_set, detections, iou_threshold, use_07_metric)
    reference = [
        _reference_voc_eval(record_set, detections, k, iou_threshold, use_07_metric)
        for k in range(record_set.num_classes)
    ]
    np.testing.assert_allclose(ours["ap"], reference, rtol=0, atol=1e-9)
    assert ours["mAP"] == pytest.approx(np.mean(reference), abs=1e-9)
    assert 0.1 < ours["mAP"] < 0.95  # a case that is neither trivial nor hopeless
