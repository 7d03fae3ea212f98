"""``edgevision predict`` for pose models: boxes, points and skeleton edges drawn; JSON rows in
COCO keypoint-results form (``keypoints`` flat x, y, score per point) with file names."""

from __future__ import annotations

import dataclasses

import numpy as np

from edgevision.core.results import Detections
from edgevision.tasks.base import LoadedModel, PredictOptions, Predictor
from edgevision.tasks.detect import predict as detect_predict
from edgevision.viz.draw import draw_detections, draw_keypoints

write_predictions = detect_predict.write_predictions  # rows carry "keypoints" already


class _WithSkeleton:
    """The detection predictor's results, with the model's skeleton attached for drawing."""

    def __init__(self, inner: Predictor, skeleton: list[tuple[int, int]]):
        self.inner, self.skeleton = inner, skeleton

    def predict_images(self, images: list[np.ndarray], names: list[str]) -> list[Detections]:
        found = self.inner.predict_images(images, names)
        return [dataclasses.replace(result, skeleton=self.skeleton) for result in found]


def predictor(loaded: LoadedModel, options: PredictOptions) -> Predictor:
    """The detection predictor (PyTorch or ONNX; both return keypoints) with the skeleton."""
    return _WithSkeleton(detect_predict.predictor(loaded, options), skeleton_of(loaded))


def skeleton_of(loaded: LoadedModel) -> list[tuple[int, int]]:
    """The skeleton stored with the model (checkpoint meta or ONNX keypoint metadata)."""
    keypoints = loaded.meta.get("keypoints") or {}
    edges = loaded.meta.get("skeleton") or keypoints.get("skeleton") or []
    return [(int(a), int(b)) for a, b in edges]


def draw(image: np.ndarray, result: Detections) -> np.ndarray:
    drawn = draw_detections(image, result.boxes, result.classes, result.scores, result.class_names)
    if result.keypoints is not None and len(result.keypoints):
        draw_keypoints(drawn, result.keypoints, result.skeleton)
    return drawn
