"""``OnnxDetector``: an edgevision ONNX file -> :class:`Detections`, with numpy, OpenCV and onnxruntime.

This is what ``edgevision predict --weights model.onnx`` and an edge device run. It never imports
torch (a test imports it with torch blocked): letterbox, decode and NMS are the numpy twins in this
package, and everything it needs to know (classes, input size, strides, output layout) comes from
the file's metadata (:mod:`edgevision.runtime.metadata`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import onnxruntime
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from edgevision.data.imageio import IMAGE_SUFFIXES, read_image
from edgevision.data.letterbox import letterbox
from edgevision.errors import CheckpointError, ConfigError, DataError
from edgevision.results import Detections
from edgevision.runtime.decode import detect
from edgevision.runtime.metadata import ModelInfo, parse_metadata
from edgevision.runtime.preprocess import to_input, unletterbox_boxes
from edgevision.runtime.video import VIDEO_SUFFIXES, draw, predict_video

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


class OnnxDetector:
    """Detect objects with an exported edgevision model, without PyTorch.

    Works with both output layouts. For an ``nms`` graph the thresholds are baked into the graph:
    ``conf`` can only raise its threshold, ``max_det`` only lower its count, and ``iou`` is the
    graph's own.

    Args:
        path: the ``.onnx`` file.
        providers: ONNX Runtime execution providers (default CPU).
        threads: intra-op threads (None: ONNX Runtime's default, one per physical core).
        conf, iou, max_det: detection thresholds, as in ``edgevision predict``.
        imgsz: input size for a dynamic-size model (default: the exported size); must equal the
            exported size for a static model.
        batch_size: images per run for a dynamic-batch model (a static model runs one at a time).

    Attributes:
        info: the file's :class:`ModelInfo`.
        imgsz: (height, width) the images are letterboxed to.
    """

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
    ):
        self.path = Path(path)
        self.session = open_session(self.path, providers, threads)
        self.info: ModelInfo = parse_metadata(
            self.session.get_modelmeta().custom_metadata_map, path
        )
        self.conf, self.iou, self.max_det = conf, iou, max_det
        self.imgsz = self._input_size(imgsz)
        static_batch = self.session.get_inputs()[0].shape[0]
        self.batch_size = static_batch if isinstance(static_batch, int) else max(1, batch_size)

    @property
    def class_names(self) -> list[str]:
        return self.info.class_names

    def _input_size(self, imgsz: int | None) -> tuple[int, int]:
        if not imgsz or (not self.info.dynamic and (imgsz, imgsz) == self.info.imgsz):
            return self.info.imgsz
        if not self.info.dynamic:
            raise ConfigError(
                f"{self.path}: exported for a fixed {self.info.imgsz[0]}x{self.info.imgsz[1]} "
                f"input, cannot run at imgsz {imgsz}; drop --imgsz or re-export with --dynamic"
            )
        if imgsz % max(self.info.strides):
            raise ConfigError(f"imgsz {imgsz} must be a multiple of {max(self.info.strides)}")
        return (int(imgsz), int(imgsz))

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """The graph's outputs for a (B, 3, H, W) float32 input (B = 1 for a static-batch model)."""
        return self.session.run(None, {"images": batch})

    def predict(
        self, images: ImageInput | Sequence[ImageInput], names: Sequence[str] | None = None
    ) -> list[Detections]:
        """Detections in original pixels for images: (H, W, 3) uint8 RGB arrays or image files.

        Raises:
            DataError: an input that is neither an RGB uint8 image nor a readable image file.
        """
        if isinstance(images, np.ndarray | str | Path):
            images = [images]
        if names is None:
            names = [str(item) if isinstance(item, str | Path) else "" for item in images]
        results: list[Detections] = []
        for start in range(0, len(images), self.batch_size):
            chunk = [
                _as_rgb(item, index)
                for index, item in enumerate(images[start : start + self.batch_size], start)
            ]
            results.extend(self._predict_chunk(chunk, names[start : start + self.batch_size]))
        return results

    def _predict_chunk(self, images: list[np.ndarray], names: Sequence[str]) -> list[Detections]:
        boxed, geometry = [], []
        for image in images:
            out, ratio, pad = letterbox(
                image, self.imgsz, color=self.info.letterbox.get("color", 114)
            )
            boxed.append(out)
            geometry.append((ratio, pad, image.shape[:2]))
        per_image = self._detections(self.run(to_input(boxed)))
        results = []
        for found, (ratio, pad, orig_hw), name in zip(per_image, geometry, names, strict=True):
            boxes = unletterbox_boxes(found["boxes"], ratio, pad, orig_hw)
            results.append(
                Detections(
                    boxes,
                    found["scores"],
                    found["classes"],
                    self.class_names,
                    name,
                    tuple(int(v) for v in orig_hw),
                )
            )
        return results

    def _detections(self, outputs: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Per image ``boxes`` (K, 4) in input pixels, ``scores``, ``classes``, from graph outputs."""
        if self.info.output_layout == "raw":
            return detect(
                outputs[0], self.info.strides, self.imgsz, self.conf, self.iou, self.max_det
            )
        num_dets, boxes, scores, classes = outputs
        results = []
        for count, image_boxes, image_scores, image_classes in zip(
            num_dets[:, 0], boxes, scores, classes, strict=True
        ):
            keep = np.flatnonzero(image_scores[:count] > self.conf)[: self.max_det]
            results.append(
                {
                    "boxes": image_boxes[keep].astype(np.float32),
                    "scores": image_scores[keep].astype(np.float32),
                    "classes": image_classes[keep].astype(np.int64),
                }
            )
        return results

    def predict_file(self, path: str | Path, save_dir: Path | None = None) -> list[Detections]:
        """One image, or every frame of a video; annotated copies go to ``save_dir`` when given.

        The same contract as the PyTorch ``Predictor.predict_file``, so ``edgevision predict``
        can use either.
        """
        path = Path(path)
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return self._predict_video(path, save_dir)
        image = _as_rgb(path, 0)
        result = self.predict([image], [str(path)])[0]
        if save_dir is not None:
            _save_drawn(image, result, save_dir / f"{path.stem}.jpg")
        return [result]

    def _predict_video(self, path: Path, save_dir: Path | None) -> list[Detections]:
        return predict_video(path, lambda rgb, name: self.predict([rgb], [name])[0], save_dir)


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


def _save_drawn(image: np.ndarray, result: Detections, out: Path) -> None:
    cv2.imwrite(str(out), cv2.cvtColor(draw(image, result), cv2.COLOR_RGB2BGR))
