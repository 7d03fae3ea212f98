"""Sample images for a detector export, and the ONNX-vs-PyTorch check of one exported file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgevision.core.errors import ParityError
from edgevision.core.image import letterbox, read_image, to_input
from edgevision.data.formats import list_splits, load_dataset
from edgevision.data.synth.detect import render_detection_image
from edgevision.export.nms import NmsDetector
from edgevision.export.parity import check_outputs, compare_detections
from edgevision.runtime.session import open_model
from edgevision.tasks.detect.inference import DetectionPredictor

NUM_SAMPLES = 4


def sample_images(
    data: str | None, count: int = NUM_SAMPLES, seed: int = 0, split: str = "val"
) -> tuple[list[np.ndarray], list[str]]:
    """``count`` RGB images to check an export on: from ``data`` (val split, else train) or drawn.

    Without data the images are synthetic scenes (``data.synth``) of varied sizes, so the check
    still exercises letterboxing and real-looking edges rather than noise.

    Returns:
        (H, W, 3) uint8 RGB images and their names (paths, or ``synthetic-N``).
    """
    if data:
        paths = _dataset_images(data, split)[:count]
        return [read_image(path) for path in paths], [str(path) for path in paths]
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        width, height = int(rng.integers(200, 400)), int(rng.integers(200, 400))
        images.append(render_detection_image(rng, width, height)[0])
    return images, [f"synthetic-{index}" for index in range(count)]


def _dataset_images(data: str, split: str) -> list[Path]:
    available = list_splits(data)
    chosen = split if split in available else ("train" if "train" in available else available[0])
    record_set, _ = load_dataset(data, split=chosen)
    return [record.image_path for record in record_set.records]


def letterboxed_batch(images: list[np.ndarray], imgsz: int) -> torch.Tensor:
    """(N, 3, imgsz, imgsz) float batch in [0, 1] of letterboxed images (the predict input)."""
    return torch.from_numpy(to_input([letterbox(image, imgsz)[0] for image in images]))


@torch.no_grad()
def torch_reference(
    model: nn.Module,
    class_names: list[str],
    images: list[np.ndarray],
    names: list[str],
    options: dict,
) -> dict:
    """What PyTorch computes for the samples, once per export (every file is checked against it).

    Graph outputs of the exported module on the letterboxed samples (and, for a dynamic graph, on
    a batch of two at a second, non-square size the trace never saw), and the PyTorch
    ``DetectionPredictor``'s detections in original image pixels.

    Args:
        model: the fused detector the file is traced from.
        options: export options (``imgsz``, ``nms``, ``dynamic``, ``conf``, ``iou``, ``max_det``).
    """
    conf, iou, max_det, imgsz = (
        options["conf"],
        options["iou"],
        options["max_det"],
        options["imgsz"],
    )
    module = NmsDetector(model, conf, iou, max_det).eval() if options["nms"] else model.eval()
    batches = _parity_batches(images, imgsz, options["dynamic"], model.size_divisor)
    outputs = []
    for batch in batches:
        output = module(batch)
        outputs.append(list(output) if isinstance(output, tuple) else [output])
    predictor = DetectionPredictor(
        model, class_names, imgsz, torch.device("cpu"), conf, iou, max_det
    )
    return {
        "batches": batches,
        "outputs": outputs,
        "images": images,
        "names": names,
        "detections": predictor.predict_images(images, names),
    }


def check_file(path: str | Path, reference: dict, options: dict) -> dict:
    """Check an exported FP32 file against :func:`torch_reference` through the runtime.

    Returns:
        dict: ``raw_max_abs_diff`` (graph outputs) and ``detections`` (see
        ``parity.compare_detections``).

    Raises:
        ParityError: any difference beyond tolerance.
    """
    conf, iou, max_det, nms = options["conf"], options["iou"], options["max_det"], options["nms"]
    detector = open_model(path, conf=conf, iou=iou, max_det=max_det)
    diffs = []
    for batch, outputs in zip(reference["batches"], reference["outputs"], strict=True):
        step = detector.batch_size if detector.batch_size == 1 else len(batch)
        for start in range(0, len(batch), step):
            part = [output[start : start + step] for output in outputs]
            diffs.append(
                check_outputs(part, detector.run(batch[start : start + step].numpy()), nms)
            )
    candidate = detector.predict_images(reference["images"], reference["names"])
    detections = compare_detections(reference["detections"], candidate, conf, iou, max_det)
    if not detections["ok"]:
        raise ParityError(
            f"{path}: detections differ from PyTorch on {len(candidate)} sample images: "
            f"{detections['unexplained']} unexplained, {detections['matched']}/"
            f"{detections['reference']} matched (boxes within 1 px, scores within 1e-3)"
        )
    finite = [diff for diff in diffs if diff == diff]  # NaN: NMS counts differed, judged above
    return {"raw_max_abs_diff": max(finite, default=float("nan")), "detections": detections}


def _parity_batches(images, imgsz: int, dynamic: bool, largest_stride: int) -> list[torch.Tensor]:
    batches = [letterboxed_batch(images, imgsz)]
    if dynamic:
        other = max(largest_stride, imgsz // 2 // largest_stride * largest_stride)
        batches.append(torch.nn.functional.interpolate(batches[0][:2], size=(other, imgsz)))
    return batches
