"""``edgevision val``: run a detector over a split and write every metric and plot we report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

from edgevision.data.dataset import DetectionDataset
from edgevision.data.loader import build_dataloader
from edgevision.data.records import RecordSet
from edgevision.engine.inference import ground_truth_for, run_inference
from edgevision.engine.task_detect import report_new_skips
from edgevision.eval.coco import coco_evaluate
from edgevision.eval.confusion import confusion_matrix
from edgevision.eval.report import format_metrics, write_coco_results_json
from edgevision.eval.voc import voc_evaluate
from edgevision.fileio import atomic_write_text


def detection_metrics(record_set: RecordSet, detections: list[dict]) -> dict:
    """COCO 12 stats + VOC mAP50 (area and 11-point), with the printout that names each AP."""
    coco = coco_evaluate(record_set, detections)
    voc_area = voc_evaluate(record_set, detections, use_07_metric=False)
    voc_07 = voc_evaluate(record_set, detections, use_07_metric=True)
    text = format_metrics(coco, [voc_area, voc_07], record_set.class_names)
    return {"coco": coco, "voc": voc_area, "voc07": voc_07, "text": text}


def validate_detector(
    model: nn.Module,
    record_set: RecordSet,
    run_dir: Path,
    imgsz: int,
    batch: int,
    conf: float,
    iou: float,
    max_det: int,
    device: torch.device,
    workers: int = 2,
    save_json: bool = True,
    plots: bool = True,
) -> dict:
    """Evaluate ``model`` on ``record_set``; write metrics.json, COCO results, PR and confusion PNGs."""
    dataset = DetectionDataset(record_set, imgsz=imgsz, augment=False, cache="none", seed=0)
    report_new_skips(dataset, "val")  # unusable images named once, before and after inference
    loader = build_dataloader(dataset, batch, workers, shuffle=False, seed=0)
    indices, detections = run_inference(model.to(device), loader, device, conf, iou, max_det)
    report_new_skips(dataset, "val")
    record_set = ground_truth_for(dataset, record_set, indices)
    result = detection_metrics(record_set, detections)
    if save_json:
        write_coco_results_json(run_dir / "predictions.json", record_set, detections)
    if plots:
        from edgevision.viz.plots import plot_confusion_matrix, plot_pr_curves

        voc = result["voc"]
        plot_pr_curves(
            voc["precision"],
            voc["recall"],
            record_set.class_names,
            run_dir / "pr_curves.png",
            voc["ap"],
        )
        matrix = confusion_matrix(record_set, detections, record_set.num_classes)
        plot_confusion_matrix(matrix, record_set.class_names, run_dir / "confusion_matrix.png")
    summary = {k: v for k, v in result["coco"].items() if isinstance(v, float)}
    summary["voc_mAP50"] = result["voc"]["mAP"]
    summary["voc07_mAP50"] = result["voc07"]["mAP"]
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in summary.items()}
    atomic_write_text(run_dir / "metrics.json", json.dumps(clean, indent=2))
    atomic_write_text(run_dir / "metrics.txt", result["text"] + "\n")
    return {"metrics": summary, "text": result["text"], "run_dir": str(run_dir)}
