"""``edgevision predict`` for classifiers: the predictor for ``.pt`` or ``.onnx`` weights, the
top-k drawn on the image, ``predictions.csv`` and ``predictions.json``. No torch at import."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from edgevision.core.fileio import atomic_write_text
from edgevision.core.results import Classifications
from edgevision.tasks.base import LoadedModel, PredictOptions, Predictor
from edgevision.viz.draw import draw_classifications


def predictor(loaded: LoadedModel, options: PredictOptions) -> Predictor:
    """The ONNX session configured with ``topk``, or the PyTorch predictor."""
    topk = max(1, min(options.topk, len(loaded.class_names)))
    if loaded.onnx:
        return loaded.model.configure(topk=topk, imgsz=options.imgsz)
    from edgevision.engine.run import select_device  # PyTorch weights need PyTorch
    from edgevision.tasks.classify.inference import ClassifierPredictor

    imgsz = options.imgsz or loaded.imgsz
    return ClassifierPredictor(
        loaded.model, loaded.class_names, imgsz, select_device(options.device), topk
    )


def draw(image: np.ndarray, result: Classifications) -> np.ndarray:
    return draw_classifications(image, result.labels, result.probabilities)


def predictions_csv(predictions: list[Classifications]) -> str:
    """CSV text: ``path,label_1,probability_1,...,label_k,probability_k``, one row per image."""
    topk = max((len(p) for p in predictions), default=0)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["path", *[f"{kind}_{k}" for k in range(1, topk + 1) for kind in ("label", "probability")]]
    )
    for p in predictions:
        pairs = zip(p.labels, p.probabilities, strict=True)
        writer.writerow([p.image_path, *[value for pair in pairs for value in pair]])
    return buffer.getvalue()


def write_predictions(
    results: list[Classifications], run_dir: Path, options: PredictOptions
) -> list[Path]:
    """``predictions.csv`` with ``--save`` and ``predictions.json`` with ``--save-json``."""
    written = []
    if options.save:
        written.append(atomic_write_text(run_dir / "predictions.csv", predictions_csv(results)))
    if options.save_json:
        rows = [row for result in results for row in result.to_records()]
        written.append(atomic_write_text(run_dir / "predictions.json", json.dumps(rows, indent=1)))
    return written
