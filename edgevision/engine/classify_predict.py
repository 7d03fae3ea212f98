"""``edgevision predict`` for classifiers: top-k labels with probabilities, CSV / JSON output.

Images go through the val transform the model was validated with (resize the shorter side to
``imgsz * 256 / 224``, centre crop, ImageNet normalisation), so a prediction of a val image equals
what ``val`` scored. Unreadable images are skipped and listed, never fatal.
"""

from __future__ import annotations

import csv
import glob
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgevision.data.classify_dataset import normalize_images, val_transform
from edgevision.data.imageio import IMAGE_SUFFIXES, read_image
from edgevision.engine.checkpoint import load_checkpoint, state_dict_from
from edgevision.engine.trainer import prepare_run_dir
from edgevision.errors import CheckpointError, DataError
from edgevision.fileio import atomic_write_text
from edgevision.models.classifier_zoo import build_classifier


@dataclass
class ClassPrediction:
    """Top-k classes of one image, best first.

    Attributes:
        path: the image (as given or found in the source folder).
        indices: class indices, length k.
        labels: class names, aligned with ``indices``.
        probabilities: softmax probabilities, aligned with ``indices``.
    """

    path: str
    indices: list[int]
    labels: list[str]
    probabilities: list[float]

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "topk": [
                {"label": label, "index": index, "probability": probability}
                for index, label, probability in zip(
                    self.indices, self.labels, self.probabilities, strict=True
                )
            ],
        }


def load_classifier(weights: str | Path) -> tuple[nn.Module, dict, dict]:
    """A classifier in eval mode, its meta (``class_names``, ``imgsz``, ...) and its train config.

    Raises:
        CheckpointError: not an edgevision classification checkpoint.
    """
    state = load_checkpoint(weights)
    meta = state.get("meta") or {}
    if meta.get("task") != "classify" or "model_name" not in meta:
        raise CheckpointError(
            f"{weights}: not an edgevision classification checkpoint (meta task is "
            f"{meta.get('task')!r}); use a best.pt written by `edgevision train --task classify`"
        )
    model = build_classifier(meta["model_name"], meta["num_classes"])
    model.load_state_dict(state_dict_from(state))
    return model.eval(), meta, state.get("config") or {}


class ClassifierPredictor:
    """Val transform -> model -> softmax -> top-k, for (H, W, 3) uint8 RGB images of any size."""

    def __init__(
        self,
        model: nn.Module,
        class_names: list[str],
        imgsz: int,
        device: torch.device | str = "cpu",
        topk: int = 5,
    ):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.class_names = list(class_names)
        self.imgsz = imgsz
        self.topk = max(1, min(topk, len(self.class_names)))

    @torch.no_grad()
    def predict_images(self, images: list[np.ndarray], names: list[str]) -> list[ClassPrediction]:
        """Top-k predictions for a batch of images; ``names`` label the results."""
        crops = np.stack([val_transform(image, self.imgsz) for image in images]).transpose(
            0, 3, 1, 2
        )
        batch = normalize_images(torch.from_numpy(np.ascontiguousarray(crops)).to(self.device))
        probabilities = torch.softmax(self.model(batch).float(), dim=1)
        values, indices = probabilities.topk(self.topk, dim=1)
        return [
            ClassPrediction(
                name,
                row.tolist(),
                [self.class_names[i] for i in row.tolist()],
                [round(float(v), 6) for v in scores],
            )
            for name, row, scores in zip(names, indices.cpu(), values.cpu(), strict=True)
        ]

    def predict_paths(
        self, paths: list[Path], batch: int = 16
    ) -> tuple[list[ClassPrediction], list[DataError]]:
        """Predictions for image files in batches; unreadable files come back as errors."""
        results, errors = [], []
        for start in range(0, len(paths), batch):
            images, names = [], []
            for path in paths[start : start + batch]:
                try:
                    images.append(read_image(path))
                    names.append(str(path))
                except DataError as e:
                    errors.append(e)
            if images:
                results += self.predict_images(images, names)
        return results, errors


def image_files(source: str | Path) -> list[Path]:
    """Images named by a file, a folder (searched recursively, sorted) or a glob pattern.

    Raises:
        DataError: nothing matched.
    """
    path = Path(source)
    if path.is_dir():
        files = sorted(
            p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
    elif path.is_file():
        files = [path]
    else:
        files = sorted(
            Path(p)
            for p in glob.glob(str(source), recursive=True)
            if Path(p).suffix.lower() in IMAGE_SUFFIXES
        )
    if not files:
        raise DataError(source, "no images found", "pass an image, a folder of images or a glob")
    return files


def predictions_csv(predictions: list[ClassPrediction], topk: int) -> str:
    """CSV text: ``path,label_1,probability_1,...,label_k,probability_k``, one row per image."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["path", *[f"{kind}_{k}" for k in range(1, topk + 1) for kind in ("label", "probability")]]
    )
    for p in predictions:
        writer.writerow(
            [p.path, *[v for pair in zip(p.labels, p.probabilities, strict=True) for v in pair]]
        )
    return buffer.getvalue()


def predict_classifier(
    weights: str | Path,
    source: str | Path,
    topk: int = 5,
    imgsz: int = 0,
    device: torch.device | str = "cpu",
    batch: int = 16,
    save_csv: bool = True,
    save_json: bool = True,
    project: str = "runs/predict",
    name: str = "exp",
    exist_ok: bool = False,
) -> list[ClassPrediction]:
    """Classify every image of ``source``; write ``predictions.csv`` / ``.json`` into the run folder.

    Args:
        weights: classification checkpoint (``best.pt``).
        source: image, folder (recursive) or glob.
        topk: classes reported per image (at most the class count).
        imgsz: input size; 0 = the size the model was trained at.

    Returns:
        One :class:`ClassPrediction` per readable image, in file order.
    """
    model, meta, _ = load_classifier(weights)
    predictor = ClassifierPredictor(
        model, meta["class_names"], imgsz or meta["imgsz"], device, topk
    )
    predictions, errors = predictor.predict_paths(image_files(source), batch)
    for error in errors:
        print(f"skipped: {error}")
    if save_csv or save_json:
        run_dir = prepare_run_dir(project, name, exist_ok)
        if save_csv:
            atomic_write_text(
                run_dir / "predictions.csv", predictions_csv(predictions, predictor.topk)
            )
        if save_json:
            rows = [p.to_dict() for p in predictions]
            atomic_write_text(run_dir / "predictions.json", json.dumps(rows, indent=1))
        print(f"predictions written to {run_dir}")
    return predictions
