"""``edgevision val`` for detectors: run the model (PyTorch or ONNX) over a split and write every
metric and plot we report. No torch at import: an ``.onnx`` is validated without PyTorch."""

from __future__ import annotations

import json
import math
from pathlib import Path

from edgevision.analysis.errors import error_breakdown, write_error_breakdown
from edgevision.analysis.report import write_run_report
from edgevision.analysis.worst_images import draw_worst_images
from edgevision.core.errors import DataError
from edgevision.core.fileio import atomic_write_text
from edgevision.core.image import read_image
from edgevision.core.issues import summarize_issues
from edgevision.core.records import RecordSet
from edgevision.data.formats import load_dataset
from edgevision.engine.run_dir import prepare_run_dir
from edgevision.eval.confusion import confusion_matrix
from edgevision.eval.detection import detection_metrics
from edgevision.eval.report import write_coco_results_json
from edgevision.tasks.base import LoadedModel, ValOptions
from edgevision.viz.plots import plot_confusion_matrix, plot_pr_curves


def validate(loaded: LoadedModel, data: str, options: ValOptions) -> dict:
    """COCO 12 stats, VOC mAP50 (area and 11-point), per-class AP; PR curves, confusion matrix,
    COCO-format predictions, into a new report folder.

    Returns:
        ``metrics`` (flat numbers), ``text`` (the printout) and ``run_dir``.
    """
    record_set, issues = load_dataset(data, split=options.split, class_names=loaded.class_names)
    lines = summarize_issues(issues, f"{options.split} split")
    if lines:
        print("\n".join(lines))
    run_dir = prepare_run_dir(options.project, options.name, options.exist_ok)
    record_set, detections = model_detections(loaded, record_set, options)
    return write_report(record_set, detections, run_dir, options)


def model_detections(
    loaded: LoadedModel, record_set: RecordSet, options: ValOptions
) -> tuple[RecordSet, list[dict]]:
    """(the records evaluated, their detections) from ``.pt`` or ``.onnx`` weights; unreadable
    images are named once and left out with their ground truth."""
    imgsz = options.imgsz or loaded.imgsz
    if loaded.onnx:
        session = loaded.model.configure(
            conf=options.conf, iou=options.iou, max_det=options.max_det, imgsz=options.imgsz
        )
        return onnx_detections(session, record_set)
    from edgevision.engine.run import select_device  # PyTorch weights need PyTorch
    from edgevision.tasks.detect.inference import infer_record_set

    device = select_device(options.device)
    return infer_record_set(
        loaded.model,
        record_set,
        imgsz,
        options.batch,
        options.conf,
        options.iou,
        options.max_det,
        device,
        options.workers,
    )


def onnx_detections(session, record_set: RecordSet) -> tuple[RecordSet, list[dict]]:
    """Detections of an ``OnnxDetector`` in original pixels, for every readable record.

    Returns:
        (the records evaluated, their detections). An unreadable image is named once and left
        out with its ground truth, as the PyTorch path's loader does.
    """
    kept, detections = [], []
    for record in record_set.records:
        try:
            image = read_image(record.image_path)
        except DataError as e:
            print(f"skipped: {e}")
            continue
        found = session.predict_images([image], [str(record.image_path)])[0]
        kept.append(record)
        entry = {"boxes": found.boxes, "scores": found.scores, "classes": found.classes}
        if found.keypoints is not None:
            entry["keypoints"] = found.keypoints
        detections.append(entry)
    if not kept and record_set.records:
        raise DataError(
            record_set.root, "no readable image in the split", "run edgevision data check"
        )
    return record_set.with_records(kept), detections


def _per_class(result: dict, record_set: RecordSet) -> list[dict]:
    """One row per class (None where a class has no ground truth), for reports and scripts."""
    coco, voc = result["coco"], result["voc"]

    def number(value: float) -> float | None:
        return None if math.isnan(value) else float(value)

    return [
        {
            "class": name,
            "num_gt": int(coco["num_gt"][k]),
            "ap50_95": number(coco["per_class_ap50_95"][k]),
            "ap50": number(coco["per_class_ap50"][k]),
            "voc_ap50": number(voc["ap"][k]),
        }
        for k, name in enumerate(record_set.class_names)
    ]


def write_report(
    record_set: RecordSet, detections: list[dict], run_dir: Path, options: ValOptions
) -> dict:
    """Metrics, ``metrics.json``/``.txt``, ``predictions.json`` and plots for one evaluation."""
    result = detection_metrics(record_set, detections)
    if options.save_json:
        write_coco_results_json(run_dir / "predictions.json", record_set, detections)
    if options.plots:
        voc = result["voc"]
        names = record_set.class_names
        plot_pr_curves(voc["precision"], voc["recall"], names, run_dir / "pr_curves.png", voc["ap"])
        matrix = confusion_matrix(record_set, detections, record_set.num_classes)
        plot_confusion_matrix(matrix, names, run_dir / "confusion_matrix.png")
    summary = {k: v for k, v in result["coco"].items() if isinstance(v, float)}
    summary["voc_mAP50"] = result["voc"]["mAP"]
    summary["voc07_mAP50"] = result["voc07"]["mAP"]
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in summary.items()}
    atomic_write_text(run_dir / "metrics.json", json.dumps(clean, indent=2))
    atomic_write_text(run_dir / "metrics.txt", result["text"] + "\n")
    atomic_write_text(
        run_dir / "per_class.json", json.dumps(_per_class(result, record_set), indent=2)
    )
    if options.plots:
        write_error_analysis(record_set, detections, run_dir)
        write_run_report(run_dir)
    return {"metrics": summary, "text": result["text"], "run_dir": str(run_dir)}


def write_error_analysis(
    record_set: RecordSet, detections: list[dict], run_dir: Path, conf: float = 0.25
) -> dict:
    """``errors.json``/``.txt`` (where the AP is lost, TIDE types) and ``worst_images.jpg``."""
    breakdown = error_breakdown(record_set, detections, conf=conf)
    write_error_breakdown(breakdown, run_dir)
    worst = breakdown["worst_images"]
    draw_worst_images(record_set, detections, worst, run_dir / "worst_images.jpg", conf)
    return breakdown
