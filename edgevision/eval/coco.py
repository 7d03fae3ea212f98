"""COCO detection metrics through a maintained COCO evaluator (faster-coco-eval or pycocotools).

We never re-implement COCOeval: the 12 numbers everyone quotes are only comparable when they come
from the reference matching and 101-point interpolation. This module converts records and
detections to COCO dicts, runs the evaluator quietly and names its outputs.

VOC ``difficult`` objects. COCO has no such flag, and pycocotools overwrites any ``ignore`` key
with ``iscrowd`` in ``COCOeval._prepare``, so the choices are:

- ``"ignore"`` (default): export difficult objects with ``iscrowd=1``. A detection on them is then
  neither a true nor a false positive and missing them costs nothing, as in VOC AP (and as
  mmdetection's COCO metric does with VOC ``ignore_flag``). One difference from VOC remains: a
  crowd region matches on intersection over the *detection's* area, so a small box inside a
  difficult object is ignored too.
- ``"keep"``: ordinary objects; the detector is charged for missing them.
- ``"drop"``: removed; detections on them are false positives (what Ultralytics' VOC.yaml
  conversion does, since it writes no label for them).
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from edgevision.core.errors import ConfigError, EdgevisionError
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.formats.coco import coco_image_ids
from edgevision.eval.detections import check_detections, ground_truth_boxes
from edgevision.ops.boxes import xyxy_to_xywh

STAT_NAMES = (
    "mAP50-95",
    "mAP50",
    "mAP75",
    "mAP_small",
    "mAP_medium",
    "mAP_large",
    "AR1",
    "AR10",
    "AR100",
    "AR_small",
    "AR_medium",
    "AR_large",
)
BACKENDS = ("faster_coco_eval", "pycocotools")
DIFFICULT_MODES = ("ignore", "keep", "drop")


def image_file_names(record_set: RecordSet) -> list[str]:
    """Image paths relative to the dataset root (posix); absolute for an image outside it."""
    bases = (Path(record_set.root), Path(record_set.root).resolve())  # resolve once, not per image
    return [_relative(record.image_path, bases) for record in record_set.records]


def _relative(path: Path, bases: tuple[Path, Path]) -> str:
    for base in bases:
        with contextlib.suppress(ValueError):  # not under this spelling of the root: try the next
            return path.relative_to(base).as_posix()
    return path.as_posix()


def records_to_coco_gt(record_set: RecordSet, difficult: str = "ignore") -> dict:
    """A COCO ground-truth dict (images, annotations, categories) for the records.

    Args:
        record_set: the evaluation split; category ``k + 1`` is ``class_names[k]``.
        difficult: how VOC difficult objects are exported, see the module docstring.

    Returns:
        A dict ``COCO()`` accepts. Annotation ids start at 1 (COCOeval treats a matched id of
        0 as "unmatched"); ``area`` is the box area ``w * h``, which decides small/medium/large.
    """
    if difficult not in DIFFICULT_MODES:
        raise ConfigError(f"difficult={difficult!r}; choose one of {DIFFICULT_MODES}")
    images, annotations = [], []
    ids, names = coco_image_ids(record_set), image_file_names(record_set)
    for image_id, name, record in zip(ids, names, record_set.records, strict=True):
        images.append(
            {
                "id": image_id,
                "file_name": name,
                "width": int(record.width),
                "height": int(record.height),
            }
        )
        annotations.extend(_annotations(record, image_id, difficult, len(annotations) + 1))
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(record_set.class_names)]
    info = {"description": f"edgevision ground truth ({record_set.format}, {record_set.split})"}
    return {"info": info, "images": images, "annotations": annotations, "categories": categories}


def _annotations(record: ImageRecord, image_id: int, difficult: str, first_id: int) -> list[dict]:
    xywh = xyxy_to_xywh(ground_truth_boxes(record))
    crowd = record.iscrowd | (record.difficult if difficult == "ignore" else False)
    keep = ~record.difficult if difficult == "drop" else np.ones(len(xywh), dtype=bool)
    out = []
    for index in np.flatnonzero(keep):
        x, y, w, h = (float(v) for v in xywh[index])
        out.append(
            {
                "id": first_id + len(out),
                "image_id": image_id,
                "category_id": int(record.labels[index]) + 1,
                "bbox": [x, y, w, h],
                "area": w * h,
                "iscrowd": int(crowd[index]),
                "difficult": int(record.difficult[index]),
            }
        )
    return out


def detections_to_coco(
    record_set: RecordSet, detections: Sequence[Mapping], image_ids: Sequence[int] | None = None
) -> list[dict]:
    """COCO results (image_id, category_id, bbox xywh, score) at full float precision.

    Args:
        record_set: the records the detections align with.
        detections: one ``{"boxes", "scores", "classes"}`` mapping per record.
        image_ids: COCO ids of the records; defaults to :func:`coco_image_ids`.
    """
    checked = check_detections(detections, len(record_set), record_set.num_classes)
    ids = coco_image_ids(record_set) if image_ids is None else list(image_ids)
    results = []
    for image_id, image_detections in zip(ids, checked, strict=True):
        xywh = xyxy_to_xywh(image_detections.boxes).tolist()
        scores = image_detections.scores.tolist()
        for box, score, cls in zip(xywh, scores, image_detections.classes.tolist(), strict=True):
            results.append(
                {"image_id": image_id, "category_id": cls + 1, "bbox": box, "score": score}
            )
    return results


def coco_results_with_file_names(
    record_set: RecordSet, detections: Sequence[Mapping]
) -> list[dict]:
    """COCO results plus ``file_name`` (relative to the root) for the exported JSON.

    The extra key lets a user join results with images without the GT file; COCO evaluators
    ignore unknown keys, so the file still loads with ``loadRes``.
    """
    ids = coco_image_ids(record_set)
    names = dict(zip(ids, image_file_names(record_set), strict=True))
    results = detections_to_coco(record_set, detections, ids)
    for result in results:
        result["file_name"] = names[result["image_id"]]
    return results


def coco_evaluate(
    record_set: RecordSet,
    detections: Sequence[Mapping],
    backend: str = "auto",
    iou_type: str = "bbox",
    difficult: str = "ignore",
) -> dict:
    """COCO's 12 detection stats and per-class AP, named.

    Args:
        record_set: ground truth.
        detections: one ``{"boxes", "scores", "classes"}`` mapping per record (original pixels).
        backend: "faster_coco_eval" (C++ matching, pycocotools-compatible numbers),
            "pycocotools", or "auto" (the first of the two that is installed).
        iou_type: only "bbox" for now.
        difficult: how VOC difficult objects count, see the module docstring.

    Returns:
        dict with the 12 :data:`STAT_NAMES` (COCO's -1 where no ground truth defines a value),
        ``per_class_ap50_95`` and ``per_class_ap50`` (lists, NaN for a class with no ground truth),
        ``num_gt`` (non-crowd objects per class), ``precision_iou50`` ((C, 101) interpolated
        precision at IoU 0.5, area all, 100 dets), ``recall_thresholds`` (101,),
        ``summary_text`` (the evaluator's printout), ``backend`` and ``difficult``.
    """
    if iou_type != "bbox":
        raise ConfigError(f"iou_type={iou_type!r} is not supported yet; use 'bbox'")
    name = resolve_backend(backend)
    gt = records_to_coco_gt(record_set, difficult)
    results = detections_to_coco(record_set, detections, [image["id"] for image in gt["images"]])
    run = _run_faster_coco_eval if name == "faster_coco_eval" else _run_pycocotools
    evaluator, summary_text = run(gt, results)
    out = _named_results(evaluator, len(record_set.class_names))
    out["num_gt"] = _count_gt(gt, len(record_set.class_names))
    out.update(summary_text=summary_text, backend=name, difficult=difficult)
    return out


def resolve_backend(backend: str) -> str:
    """The evaluator to use; raise a clear error when the requested one is not installed."""
    if backend not in ("auto", *BACKENDS):
        raise ConfigError(f"backend={backend!r}; choose 'auto' or one of {BACKENDS}")
    candidates = BACKENDS if backend == "auto" else (backend,)
    error: ImportError | None = None
    for name in candidates:
        try:
            importlib.import_module(name)
        except ImportError as e:  # try the next candidate; the last failure is chained below
            error = e
            continue
        return name
    raise EdgevisionError(
        f"COCO evaluation needs {' or '.join(candidates)}, which is not installed; "
        "install it with: pip install 'edgevision[eval]'"
    ) from error


def _run_faster_coco_eval(gt: dict, results: list[dict]):
    from faster_coco_eval import COCO, COCOeval_faster

    # The evaluators add keys to these dicts (ignore, area, id): fine, coco_evaluate built them.
    coco_gt = COCO(gt)
    coco_dt = coco_gt.loadRes(results)
    evaluator = COCOeval_faster(coco_gt, coco_dt, "bbox", print_function=_discard)
    evaluator.evaluate()
    evaluator.accumulate()
    lines: list[str] = []
    evaluator.print_function = lines.append
    evaluator.summarize()
    return evaluator, "\n".join(str(line) for line in lines)


def _run_pycocotools(gt: dict, results: list[dict]):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress to stdout
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results) if results else _empty_results(coco_gt)
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        evaluator.summarize()
    return evaluator, summary.getvalue().rstrip("\n")


def _empty_results(coco_gt):
    """A results object with no detections (pycocotools' loadRes indexes ``anns[0]``)."""
    empty = type(coco_gt)()
    empty.dataset = {
        "images": list(coco_gt.dataset["images"]),
        "categories": copy.deepcopy(coco_gt.dataset["categories"]),
        "annotations": [],
    }
    empty.createIndex()
    return empty


def _discard(*args, **kwargs) -> None:
    """print_function that drops the evaluator's progress messages."""


def _named_results(evaluator, num_classes: int) -> dict:
    stats = np.asarray(evaluator.stats, dtype=np.float64)[: len(STAT_NAMES)]
    out: dict = {name: float(value) for name, value in zip(STAT_NAMES, stats, strict=True)}
    # precision: (T iou thresholds, R recall thresholds, K classes, A areas, M maxDets).
    precision = np.asarray(evaluator.eval["precision"], dtype=np.float64)
    iou50 = int(np.flatnonzero(np.isclose(evaluator.params.iouThrs, 0.5))[0])
    all_area, max_dets = 0, -1  # area "all", maxDets 100: the setting of mAP50-95 and mAP50
    per_class = precision[:, :, :num_classes, all_area, max_dets]
    out["per_class_ap50_95"] = [_mean_valid(per_class[:, :, k]) for k in range(num_classes)]
    out["per_class_ap50"] = [_mean_valid(per_class[iou50, :, k]) for k in range(num_classes)]
    out["precision_iou50"] = per_class[iou50].T.copy()
    out["recall_thresholds"] = np.asarray(evaluator.params.recThrs, dtype=np.float64)
    return out


def _mean_valid(values: np.ndarray) -> float:
    """Mean over entries > -1, as COCOeval.summarize averages; NaN where none is defined."""
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else float("nan")


def _count_gt(gt: dict, num_classes: int) -> list[int]:
    counts = [0] * num_classes
    for annotation in gt["annotations"]:
        if not annotation["iscrowd"]:
            counts[annotation["category_id"] - 1] += 1
    return counts


AREA_NAMES = ("all", "small", "medium", "large")  # COCOeval's areaRng order: < 32², < 96², rest


def coco_precision(
    record_set: RecordSet,
    detections: Sequence[Mapping],
    backend: str = "auto",
    difficult: str = "ignore",
    iou_thresholds: Sequence[float] | None = None,
) -> dict:
    """COCOeval's accumulated precision per IoU threshold, class and area (100 detections).

    For analyses that need AP at one IoU threshold (mAP50-95 is the mean of ten) or per area,
    which :func:`coco_evaluate` summarises away. COCOeval matches each threshold on its own, so
    asking for a subset of thresholds gives the same numbers as the default ten, only faster.

    Args:
        record_set: ground truth.
        detections: one ``{"boxes", "scores", "classes"}`` mapping per record (original pixels).
        backend: as in :func:`coco_evaluate`.
        difficult: as in :func:`coco_evaluate`.
        iou_thresholds: thresholds to evaluate; COCO's 0.50:0.05:0.95 when None.

    Returns:
        ``precision`` (T, R, K, 4) interpolated precision at ``recall_thresholds`` (R,), -1 where
        class ``k`` has no (non-crowd) object in that area; the mean over R is the AP.
        ``iou_thresholds`` (T,), ``areas`` (:data:`AREA_NAMES`) and ``backend``.
    """
    name = resolve_backend(backend)
    gt = records_to_coco_gt(record_set, difficult)
    results = detections_to_coco(record_set, detections, [image["id"] for image in gt["images"]])
    evaluator = _accumulated(name, gt, results, iou_thresholds)
    return {
        "precision": np.asarray(evaluator.eval["precision"], dtype=np.float64)[..., -1],
        "recall_thresholds": np.asarray(evaluator.params.recThrs, dtype=np.float64),
        "iou_thresholds": np.asarray(evaluator.params.iouThrs, dtype=np.float64),
        "areas": AREA_NAMES,
        "backend": name,
    }


def _accumulated(name: str, gt: dict, results: list[dict], iou_thresholds):
    """An evaluator after evaluate() and accumulate(), at maxDets 100 only (no summary)."""
    if name == "faster_coco_eval":
        from faster_coco_eval import COCO, COCOeval_faster

        coco_gt = COCO(gt)
        evaluator = COCOeval_faster(
            coco_gt, coco_gt.loadRes(results), "bbox", print_function=_discard
        )
    else:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress to stdout
            coco_gt = COCO()
            coco_gt.dataset = gt
            coco_gt.createIndex()
            coco_dt = coco_gt.loadRes(results) if results else _empty_results(coco_gt)
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
    if iou_thresholds is not None:
        evaluator.params.iouThrs = np.asarray(iou_thresholds, dtype=np.float64).reshape(-1)
    evaluator.params.maxDets = [100]  # the setting of every AP; 1 and 10 only feed AR1 / AR10
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
    return evaluator
