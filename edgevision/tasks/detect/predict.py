"""``edgevision predict`` for detectors: the predictor for ``.pt`` or ``.onnx`` weights, drawing,
and the COCO-style JSON. No torch at import: an ``.onnx`` predicts without PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgevision.core.fileio import atomic_write_text
from edgevision.core.results import Detections
from edgevision.tasks.base import LoadedModel, PredictOptions, Predictor
from edgevision.viz.draw import draw_detections


def predictor(loaded: LoadedModel, options: PredictOptions) -> Predictor:
    """The ONNX session configured with the thresholds, or the PyTorch predictor."""
    if loaded.onnx:
        return loaded.model.configure(
            conf=options.conf, iou=options.iou, max_det=options.max_det, imgsz=options.imgsz
        )
    from edgevision.engine.run import select_device  # PyTorch weights need PyTorch
    from edgevision.tasks.detect.inference import DetectionPredictor

    imgsz = options.imgsz or loaded.imgsz
    device = select_device(options.device)
    return DetectionPredictor(
        loaded.model, loaded.class_names, imgsz, device, options.conf, options.iou, options.max_det
    )


def draw(image: np.ndarray, result: Detections) -> np.ndarray:
    return draw_detections(image, result.boxes, result.classes, result.scores, result.class_names)


def write_predictions(
    results: list[Detections], run_dir: Path, options: PredictOptions
) -> list[Path]:
    """``predictions.json`` (COCO results with file names) when ``--save-json``."""
    if not options.save_json:
        return []
    rows = [row for result in results for row in result.to_records()]
    return [atomic_write_text(run_dir / "predictions.json", json.dumps(rows, indent=1))]
