"""Exported edgevision models run with numpy, OpenCV and onnxruntime: one session class per task.

This is what ``edgevision predict --weights model.onnx`` and an edge device run. It never imports
torch (a test imports it with torch blocked): letterbox, centre crop, decode and NMS are numpy,
and everything a session needs to know (task, classes, input size, preprocessing, head family,
output layout) comes from the file's metadata (:mod:`edgevision.runtime.metadata`).
:func:`open_model` reads that metadata and returns the session of the file's task.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from edgevision.core.errors import CheckpointError, ConfigError, DataError
from edgevision.core.image import (
    GREY,
    IMAGE_SUFFIXES,
    center_crop_view,
    detections_to_original,
    letterbox,
    read_image,
    to_input,
)
from edgevision.core.results import Classifications, Detections
from edgevision.runtime.codecs import CODECS
from edgevision.runtime.metadata import ModelInfo, parse_metadata

_ORT_LOAD_ERRORS = (
    ort_errors.Fail,
    ort_errors.InvalidArgument,
    ort_errors.InvalidGraph,
    ort_errors.InvalidProtobuf,
    ort_errors.NoSuchFile,
    ort_errors.NotImplemented,
)

ImageInput = np.ndarray | str | Path


def open_session(
    path: str | Path, providers: Sequence[str] | None = None, threads: int | None = None
) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session (CPU by default) with ``threads`` intra-op threads (None: ORT's choice).

    Raises:
        CheckpointError: the file is missing or is not a model ONNX Runtime can load.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"{path}: ONNX model not found; pass the .onnx written by `edgevision export`"
        )
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1  # one chain of convs: parallelism lives inside each op
    try:
        return onnxruntime.InferenceSession(
            str(path), options, providers=list(providers or ["CPUExecutionProvider"])
        )
    except _ORT_LOAD_ERRORS as e:
        raise CheckpointError(f"{path}: not a loadable ONNX model ({e})") from e


class OnnxModel:
    """What every task's session shares: the file, its ONNX Runtime session and metadata, the input
    size, batching, and turning images or image files into RGB arrays.

    Args:
        path: the ``.onnx`` file.
        providers: ONNX Runtime execution providers (default CPU).
        threads: intra-op threads (None: ONNX Runtime's default, one per physical core).
        imgsz: input size for a dynamic-size model (default: the exported size); must equal the
            exported size for a static model.
        batch_size: images per run for a dynamic-batch model (a static model runs one at a time).
        session: an open session of ``path`` (``providers`` and ``threads`` then do not apply).

    Attributes:
        info: the file's :class:`ModelInfo`.
        imgsz: (height, width) the images are brought to.
    """

    task = ""

    def __init__(
        self,
        path: str | Path,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        imgsz: int | None = None,
        batch_size: int = 8,
        session: onnxruntime.InferenceSession | None = None,
    ):
        self.path = Path(path)
        self.session = session or open_session(self.path, providers, threads)
        self.info = read_metadata(self.session, self.path)
        if self.info.task != self.task:
            raise CheckpointError(
                f"{self.path}: a {self.info.task} model, not a {self.task} model; open it with "
                "edgevision.runtime.open_model, which picks the session of the file's task"
            )
        self.imgsz = self.info.imgsz
        self.configure(imgsz=imgsz)
        static_batch = self.session.get_inputs()[0].shape[0]
        self.batch_size = static_batch if isinstance(static_batch, int) else max(1, batch_size)

    @property
    def class_names(self) -> list[str]:
        return self.info.class_names

    def configure(self, imgsz: int | None = None, **options) -> OnnxModel:
        """Set the input size and the task's options (``conf``, ``topk`` ...) in place.

        Raises:
            ConfigError: a size a static model cannot take, or an option this task has not.
        """
        if imgsz:
            self.imgsz = self._input_size(imgsz)
        for name, value in options.items():
            if not hasattr(self, name):
                raise ConfigError(f"{type(self).__name__} has no option {name!r}")
            setattr(self, name, value)
        return self

    def _input_size(self, imgsz: int) -> tuple[int, int]:
        if not self.info.dynamic and (imgsz, imgsz) == self.info.imgsz:
            return self.info.imgsz
        if not self.info.dynamic:
            raise ConfigError(
                f"{self.path}: exported for a fixed {self.info.imgsz[0]}x{self.info.imgsz[1]} "
                f"input, cannot run at imgsz {imgsz}; drop --imgsz or re-export with --dynamic"
            )
        multiple = self.info.size_divisor
        if imgsz % multiple:
            raise ConfigError(f"imgsz {imgsz} must be a multiple of {multiple}")
        return (int(imgsz), int(imgsz))

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """The graph's outputs for a (B, 3, H, W) float32 input (B = 1 for a static-batch model)."""
        return self.session.run(None, {"images": batch})

    def predict(
        self, images: ImageInput | Sequence[ImageInput], names: Sequence[str] | None = None
    ):
        """Results for images: (H, W, 3) uint8 RGB arrays or image files, in batches.

        Raises:
            DataError: an input that is neither an RGB uint8 image nor a readable image file.
        """
        if isinstance(images, np.ndarray | str | Path):
            images = [images]
        if names is None:
            names = [str(item) if isinstance(item, str | Path) else "" for item in images]
        arrays = [_as_rgb(item, index) for index, item in enumerate(images)]
        return self.predict_images(arrays, list(names))

    def predict_images(self, images: list[np.ndarray], names: list[str]) -> list:
        """Results for (H, W, 3) uint8 RGB arrays, ``names`` labelling them (the predictor
        contract the PyTorch predictors share)."""
        results = []
        for start in range(0, len(images), self.batch_size):
            chunk = slice(start, start + self.batch_size)
            results.extend(self._predict_batch(images[chunk], names[chunk]))
        return results

    def _predict_batch(self, images: list[np.ndarray], names: list[str]) -> list:
        raise NotImplementedError


class OnnxDetector(OnnxModel):
    """Detect objects with an exported edgevision detector, without PyTorch.

    Works with both output layouts. For an ``nms`` graph the thresholds are baked into the graph:
    ``conf`` can only raise its threshold, ``max_det`` only lower its count, and ``iou`` is the
    graph's own. A ``raw`` graph is decoded by the numpy twin of the head's codec.

    Args:
        conf, iou, max_det: detection thresholds, as in ``edgevision predict``.
        Others: see :class:`OnnxModel`.
    """

    task = "detect"

    def __init__(
        self,
        path: str | Path,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        conf: float = 0.25,
        iou: float = 0.45,
        max_det: int = 300,
        imgsz: int | None = None,
        batch_size: int = 8,
        session: onnxruntime.InferenceSession | None = None,
    ):
        self.conf, self.iou, self.max_det = conf, iou, max_det
        super().__init__(path, providers, threads, imgsz, batch_size, session)
        if self.info.output_layout == "raw" and self.info.head not in CODECS:
            raise CheckpointError(
                f"{self.path}: head family {self.info.head!r} is not known to this edgevision "
                f"(known: {', '.join(CODECS)}); upgrade edgevision"
            )

    def _predict_batch(self, images: list[np.ndarray], names: list[str]) -> list[Detections]:
        boxed, geometry = [], []
        color = self.info.preprocess.get("color", GREY)
        for image in images:
            out, ratio, pad = letterbox(image, self.imgsz, color=color)
            boxed.append(out)
            geometry.append((ratio, pad, image.shape[:2]))
        per_image = self._detections(self.run(to_input(boxed)))
        results = []
        for found, (ratio, pad, orig_hw), name in zip(per_image, geometry, names, strict=True):
            found = detections_to_original(found, ratio, pad, orig_hw)
            hw = (int(orig_hw[0]), int(orig_hw[1]))
            results.append(
                Detections(
                    found["boxes"],
                    found["scores"],
                    found["classes"],
                    self.class_names,
                    name,
                    hw,
                    keypoints=found.get("keypoints"),
                )
            )
        return results

    def _detections(self, outputs: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Per image ``boxes`` (K, 4) in input pixels, ``scores``, ``classes``, from graph outputs."""
        if self.info.output_layout == "raw":
            codec = CODECS[self.info.head]
            return codec.detections(
                outputs[0], self.info.codec, self.imgsz, self.conf, self.iou, self.max_det
            )
        named = dict(zip([o.name for o in self.session.get_outputs()], outputs, strict=True))
        num_dets, boxes, scores, classes = (
            named[k] for k in ("num_dets", "boxes", "scores", "classes")
        )
        keypoints = named.get("keypoints")  # pose graphs: (B, max_det, K, 3)
        results = []
        for i, count in enumerate(num_dets[:, 0]):
            keep = np.flatnonzero(scores[i][:count] > self.conf)[: self.max_det]
            found = {
                "boxes": boxes[i][keep].astype(np.float32),
                "scores": scores[i][keep].astype(np.float32),
                "classes": classes[i][keep].astype(np.int64),
            }
            if keypoints is not None:
                found["keypoints"] = keypoints[i][keep].astype(np.float32)
            results.append(found)
        return results


class OnnxClassifier(OnnxModel):
    """Classify images with an exported edgevision classifier, without PyTorch.

    Images get the view the model was validated with (shorter side resized, centre crop:
    ``core.image.center_crop_view``); normalisation and softmax are inside the graph.

    Args:
        topk: classes reported per image (at most the class count).
        Others: see :class:`OnnxModel`.
    """

    task = "classify"

    def __init__(
        self,
        path: str | Path,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        topk: int = 5,
        imgsz: int | None = None,
        batch_size: int = 8,
        session: onnxruntime.InferenceSession | None = None,
    ):
        self.topk = topk
        super().__init__(path, providers, threads, imgsz, batch_size, session)

    def probabilities(self, images: list[np.ndarray]) -> np.ndarray:
        """(N, C) float32 class probabilities of (H, W, 3) uint8 RGB images."""
        side = self.imgsz[0]
        rows = []
        for start in range(0, len(images), self.batch_size):
            crops = [
                center_crop_view(image, side) for image in images[start : start + self.batch_size]
            ]
            rows.append(self.run(to_input(crops))[0])
        return np.concatenate(rows) if rows else np.zeros((0, self.info.num_classes), np.float32)

    def _predict_batch(self, images: list[np.ndarray], names: list[str]) -> list[Classifications]:
        rows = self.probabilities(images)
        return [
            Classifications.top(name, row, self.class_names, self.topk)
            for name, row in zip(names, rows, strict=True)
        ]


class OnnxPose(OnnxDetector):
    """Boxes and K keypoints per object (``Detections.keypoints``), without PyTorch: the pose
    codec's numpy twin for ``raw`` graphs, the ``keypoints`` output for ``nms`` graphs."""

    task = "pose"


SESSIONS = {
    OnnxDetector.task: OnnxDetector,
    OnnxPose.task: OnnxPose,
    OnnxClassifier.task: OnnxClassifier,
}


def read_metadata(session: onnxruntime.InferenceSession, path: str | Path) -> ModelInfo:
    """The :class:`ModelInfo` of an open session."""
    return parse_metadata(session.get_modelmeta().custom_metadata_map, path)


def open_model(
    path: str | Path,
    providers: Sequence[str] | None = None,
    threads: int | None = None,
    **options,
) -> OnnxModel:
    """The session of the file's task (``OnnxDetector``, ``OnnxClassifier``), built with
    ``options`` (``conf``, ``topk``, ``imgsz`` ...); the file is opened once.

    Raises:
        CheckpointError: a missing or unloadable file, no edgevision metadata, or a task this
            edgevision has no session for.
    """
    session = open_session(path, providers, threads)
    task = read_metadata(session, path).task
    if task not in SESSIONS:
        raise CheckpointError(
            f"{path}: task {task!r} has no runtime session in this edgevision "
            f"(known: {', '.join(SESSIONS)}); upgrade edgevision"
        )
    return SESSIONS[task](path, session=session, **options)


def _as_rgb(item: ImageInput, index: int) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array from an array or an image file; DataError naming it otherwise."""
    if isinstance(item, str | Path):
        if Path(item).suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(
                item, "not an image file", f"expected one of {', '.join(IMAGE_SUFFIXES)}"
            )
        return read_image(item)
    if not isinstance(item, np.ndarray):
        raise DataError(
            f"images[{index}]",
            f"got {type(item).__name__}",
            "pass an image path or an (H, W, 3) uint8 RGB numpy array",
        )
    if item.dtype != np.uint8 or item.ndim != 3 or item.shape[2] != 3:
        raise DataError(
            f"images[{index}]",
            f"array of shape {item.shape} and dtype {item.dtype}",
            "expected (H, W, 3) uint8 RGB; convert with cv2.cvtColor / astype(np.uint8)",
        )
    return item
