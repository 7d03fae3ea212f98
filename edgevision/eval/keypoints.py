"""COCO keypoint metrics (OKS AP) through a maintained COCO evaluator, with the data's sigmas.

The ten numbers are COCOeval's ``iouType="keypoints"`` summary (AP, AP50, AP75, AP_medium,
AP_large, AR, AR50, AR75, AR_medium, AR_large) computed with the per-keypoint ``sigmas`` given
here, never COCO's 17 person values by default: OKS with the wrong sigmas, or with Ultralytics'
uniform 1/K for K != 17, measures another thing. Every caller states which sigmas it used.

Conventions, as COCO's: object scale is the annotation ``area``, here the box area ``w * h``
(COCO person annotations use the segmentation area, which is smaller; datasets without masks
have only the box); ground truth with no labelled keypoint is ignored; a detection's keypoint
scores are its visibility scores and its ``score`` the box confidence. Beside OKS AP: a
sigma-free per-keypoint view (mean error / sqrt(area) and PCK at 0.05 and 0.1 of the box
diagonal) over detections matched to ground truth at box IoU >= 0.5.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence

import numpy as np

from edgevision.core.errors import ConfigError
from edgevision.core.records import RecordSet
from edgevision.data.formats.coco import coco_image_ids
from edgevision.eval.coco import records_to_coco_gt, resolve_backend
from edgevision.ops.boxes import box_iou_numpy

KEYPOINT_STAT_NAMES = (
    "OKS mAP50-95",
    "OKS mAP50",
    "OKS mAP75",
    "OKS mAP_medium",
    "OKS mAP_large",
    "OKS AR",
    "OKS AR50",
    "OKS AR75",
    "OKS AR_medium",
    "OKS AR_large",
)


def keypoints_to_coco_gt(record_set: RecordSet) -> dict:
    """The box ground truth (``records_to_coco_gt``) with ``keypoints``/``num_keypoints`` on every
    annotation and keypoint names and skeleton (1-based) on every category."""
    gt = records_to_coco_gt(record_set, difficult="keep")
    num_keypoints = _num_keypoints(record_set)
    annotations = iter(gt["annotations"])
    for record in record_set.records:
        points = _points(record, num_keypoints)
        for k in range(record.num_objects):
            annotation = next(annotations)
            flat = points[k].copy()
            flat[:, 2] = np.clip(np.round(flat[:, 2]), 0, 2)
            annotation["keypoints"] = [float(v) for v in flat.reshape(-1)]
            annotation["num_keypoints"] = int((flat[:, 2] > 0).sum())
    names = record_set.kpt_names or [f"kp{i}" for i in range(num_keypoints)]
    skeleton = [[a + 1, b + 1] for a, b in record_set.skeleton or []]
    for category in gt["categories"]:
        category.update(keypoints=list(names), skeleton=skeleton)
    return gt


def keypoint_results(record_set: RecordSet, detections: Sequence[Mapping]) -> list[dict]:
    """COCO keypoint results: ``keypoints`` flat x, y, score per point, ``score`` the box's."""
    ids = coco_image_ids(record_set)
    results = []
    for image_id, found in zip(ids, detections, strict=True):
        boxes = np.asarray(found["boxes"], dtype=np.float64).reshape(-1, 4)
        if not len(boxes):
            continue
        points = np.asarray(found["keypoints"], dtype=np.float64).reshape(len(boxes), -1)
        for box, kp, score, cls in zip(
            boxes, points, found["scores"], found["classes"], strict=True
        ):
            x0, y0, x1, y1 = (float(v) for v in box)
            results.append(
                {
                    "image_id": image_id,
                    "category_id": int(cls) + 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "keypoints": [float(v) for v in kp],
                    "score": float(score),
                }
            )
    return results


def keypoint_evaluate(
    record_set: RecordSet,
    detections: Sequence[Mapping],
    sigmas: Sequence[float],
    backend: str = "auto",
) -> dict:
    """COCO's 10 keypoint stats with ``sigmas`` (K,), named, plus ``summary_text`` and ``backend``.

    Raises:
        ConfigError: ``sigmas`` does not have one positive value per keypoint.
    """
    num_keypoints = _num_keypoints(record_set)
    sigmas = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    if len(sigmas) != num_keypoints or not (sigmas > 0).all():
        raise ConfigError(f"sigmas: need {num_keypoints} positive values, got {sigmas.tolist()}")
    gt = keypoints_to_coco_gt(record_set)
    results = keypoint_results(record_set, detections)
    name = resolve_backend(backend)
    run = _run_faster if name == "faster_coco_eval" else _run_pycocotools
    stats, text = run(gt, results, sigmas)
    out: dict = {key: float(value) for key, value in zip(KEYPOINT_STAT_NAMES, stats, strict=True)}
    out.update(summary_text=text, backend=name, sigmas=sigmas.tolist())
    return out


def per_keypoint_errors(record_set: RecordSet, detections: Sequence[Mapping]) -> dict:
    """Sigma-free per keypoint: mean error / sqrt(box area), PCK@0.05 and PCK@0.1 of the box
    diagonal, over labelled points of ground truth matched (box IoU >= 0.5, same class, highest
    score first) to a detection. Returns lists of K values (NaN where no point was matched)."""
    num_keypoints = _num_keypoints(record_set)
    errors, diagonals, scales = [], [], []
    for record, found in zip(record_set.records, detections, strict=True):
        truth = _points(record, num_keypoints)
        for g, d in _matches(record, found):
            predicted = np.asarray(found["keypoints"], dtype=np.float64).reshape(
                -1, num_keypoints, 3
            )[d]
            box = record.boxes[g].astype(np.float64)
            width, height = box[2] - box[0], box[3] - box[1]
            distance = np.hypot(*(predicted[:, :2] - truth[g, :, :2]).T)
            errors.append(np.where(truth[g, :, 2] > 0, distance, np.nan))
            diagonals.append(np.hypot(width, height))
            scales.append(np.sqrt(max(width * height, 1e-9)))
    if not errors:
        nan = [float("nan")] * num_keypoints
        return {"error_per_scale": nan, "pck_0.05": nan, "pck_0.1": nan, "matched": 0}
    errors = np.stack(errors)
    diagonals, scales = np.asarray(diagonals)[:, None], np.asarray(scales)[:, None]
    labelled = ~np.isnan(errors)

    def mean(values: np.ndarray) -> list[float]:
        with np.errstate(invalid="ignore"):
            return (np.where(labelled, values, 0).sum(0) / labelled.sum(0)).tolist()

    return {
        "error_per_scale": mean(np.nan_to_num(errors) / scales),
        "pck_0.05": mean(np.nan_to_num(errors) <= 0.05 * diagonals),
        "pck_0.1": mean(np.nan_to_num(errors) <= 0.1 * diagonals),
        "matched": len(errors),
    }


def _matches(record, found: Mapping) -> list[tuple[int, int]]:
    boxes = np.asarray(found["boxes"], dtype=np.float64).reshape(-1, 4)
    if not len(boxes) or not record.num_objects:
        return []
    iou = box_iou_numpy(record.boxes.astype(np.float64), boxes)
    same = record.labels[:, None] == np.asarray(found["classes"]).reshape(1, -1)
    iou = np.where(same, iou, 0.0)
    pairs, used = [], set()
    for d in np.argsort(-np.asarray(found["scores"], dtype=np.float64), kind="stable"):
        candidates = [(iou[g, d], g) for g in range(len(iou)) if g not in used and iou[g, d] >= 0.5]
        if candidates:
            g = max(candidates)[1]
            used.add(g)
            pairs.append((g, int(d)))
    return pairs


def _num_keypoints(record_set: RecordSet) -> int:
    for record in record_set.records:
        if record.keypoints is not None and record.keypoints.ndim == 3:
            return int(record.keypoints.shape[1])
    if record_set.kpt_names:
        return len(record_set.kpt_names)
    raise ConfigError("the data has no keypoints; pose metrics need (N, K, 3) keypoints")


def _points(record, num_keypoints: int) -> np.ndarray:
    if record.keypoints is None:
        return np.zeros((record.num_objects, num_keypoints, 3), dtype=np.float64)
    return np.asarray(record.keypoints, dtype=np.float64).reshape(record.num_objects, -1, 3)


def _run_faster(gt: dict, results: list[dict], sigmas: np.ndarray) -> tuple[list[float], str]:
    from faster_coco_eval import COCO, COCOeval_faster

    coco_gt = COCO(gt)
    coco_dt = coco_gt.loadRes(results) if results else COCO(_empty(gt))
    evaluator = COCOeval_faster(
        coco_gt,
        coco_dt,
        "keypoints",
        print_function=_discard,
        kpt_oks_sigmas=sigmas.tolist(),
    )
    evaluator.evaluate()
    evaluator.accumulate()
    lines: list[str] = []
    evaluator.print_function = lines.append
    evaluator.summarize()
    return list(evaluator.stats[:10]), "\n".join(str(line) for line in lines)


def _run_pycocotools(gt: dict, results: list[dict], sigmas: np.ndarray) -> tuple[list[float], str]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        if results:
            coco_dt = coco_gt.loadRes(results)
        else:
            coco_dt = COCO()
            coco_dt.dataset = _empty(gt)
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, "keypoints")
        evaluator.params.kpt_oks_sigmas = sigmas
        evaluator.evaluate()
        evaluator.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        evaluator.summarize()
    return list(evaluator.stats[:10]), summary.getvalue().rstrip("\n")


def _empty(gt: dict) -> dict:
    return {"images": list(gt["images"]), "categories": list(gt["categories"]), "annotations": []}


def _discard(*args, **kwargs) -> None:
    """print_function that drops the evaluator's progress messages."""
