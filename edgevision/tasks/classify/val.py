"""``edgevision val`` for classifiers: top-1 / top-5, per-class precision and recall, the confusion
matrix, for PyTorch weights or an ``.onnx``. No torch at import."""

from __future__ import annotations

import json
import math

import numpy as np

from edgevision.analysis.report import write_run_report
from edgevision.core.errors import DataError
from edgevision.core.fileio import atomic_write_text
from edgevision.core.image import read_image
from edgevision.core.issues import summarize_issues
from edgevision.data.formats.imagefolder import ClassificationSet, load_classification
from edgevision.engine.run_dir import prepare_run_dir
from edgevision.eval.classify import classification_metrics, format_classification_report
from edgevision.tasks.base import LoadedModel, ValOptions
from edgevision.viz.plots import plot_confusion_matrix


def validate(loaded: LoadedModel, data: str, options: ValOptions) -> dict:
    """Score a split; write ``metrics.json``, ``metrics.txt`` and ``confusion_matrix.png``.

    Data without a val split is held out with the training run's seed (stored in the ``.pt``), so
    the images scored are the ones the run held out; an ``.onnx`` carries no seed and uses 0.

    Returns:
        ``metrics`` (top1, top5, per-class precision / recall dicts, images), ``text``, ``run_dir``.
    """
    seed = loaded.config.get("seed", 0)
    data_set, issues = load_classification(data, options.split, loaded.class_names, seed=seed)
    lines = summarize_issues(issues, f"{options.split} split")
    if lines:
        print("\n".join(lines))
    scores, labels = _scores(loaded, data_set, options)
    result = classification_metrics(scores, labels, loaded.class_names)
    text = format_classification_report(result, loaded.class_names)
    run_dir = prepare_run_dir(options.project, options.name, options.exist_ok)
    summary = _metrics_summary(result, loaded.class_names)
    atomic_write_text(run_dir / "metrics.json", json.dumps(summary, indent=2))
    atomic_write_text(run_dir / "metrics.txt", text + "\n")
    if options.plots:
        # The plot takes the detection layout: an all-zero background row / column is appended.
        padded = np.pad(result["matrix"], ((0, 1), (0, 1)))
        plot_confusion_matrix(padded, loaded.class_names, run_dir / "confusion_matrix.png")
        write_run_report(run_dir)
    return {"metrics": summary, "text": text, "run_dir": str(run_dir)}


def _scores(
    loaded: LoadedModel, data_set: ClassificationSet, options: ValOptions
) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) class scores (logits or probabilities: the ranking is the same) and (N,) labels."""
    if loaded.onnx:
        return onnx_probabilities(loaded.model.configure(imgsz=options.imgsz), data_set)
    from edgevision.data.datasets.classify import (  # PyTorch weights need PyTorch
        ClassificationDataset,
        build_classification_loader,
    )
    from edgevision.engine.run import select_device
    from edgevision.tasks.classify.inference import predict_loader

    device = select_device(options.device)
    dataset = ClassificationDataset(data_set, options.imgsz or loaded.imgsz, augment=False)
    loader = build_classification_loader(dataset, options.batch, options.workers, shuffle=False)
    logits, labels, _ = predict_loader(loaded.model.to(device), loader, device)
    return logits, labels


def onnx_probabilities(session, data_set: ClassificationSet) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of an ``OnnxClassifier`` for every readable image of ``data_set``; an
    unreadable one is named and left out (its label too)."""
    rows, labels = [], []
    for path, label in data_set.samples:
        try:
            image = read_image(path)
        except DataError as e:
            print(f"skipped: {e}")
            continue
        rows.append(session.probabilities([image])[0])
        labels.append(label)
    if not rows:
        raise DataError(
            data_set.root, "no readable image in the split", "run edgevision data check"
        )
    return np.stack(rows), np.array(labels, dtype=np.int64)


def _metrics_summary(result: dict, class_names: list[str]) -> dict:
    """JSON-ready metrics: NaN (undefined precision / recall) becomes None."""

    def clean(value: float) -> float | None:
        return None if math.isnan(value) else float(value)

    return {
        "top1": result["top1"],
        "top5": result["top5"],
        "precision": {n: clean(v) for n, v in zip(class_names, result["precision"], strict=True)},
        "recall": {n: clean(v) for n, v in zip(class_names, result["recall"], strict=True)},
        "images": int(np.sum(result["support"])),
    }
