"""``edgevision export`` for detectors: checkpoint -> fused, parity-checked ONNX (+ optional INT8).

The steps, each reported: fold Conv+BN and check the folded model against the trained one; trace
the detector (or detector + decode + NMS with ``--nms``, :mod:`edgevision.export.nms`) with the
metadata the runtime reads; check ONNX Runtime against PyTorch on raw outputs and on detections
of sample images; simplify with onnxslim when installed (re-checked, reverted if the check
fails); quantize to INT8 when asked (:mod:`edgevision.export.quantize`) and compare it with FP32.

Output layouts (also written into the file, key ``output_layout``): ``raw`` (default) is the
head's raw tensor, decoded by the numpy twin of its codec; ``nms`` holds decode and NMS in the
graph.
"""

from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from edgevision.core.errors import ConfigError
from edgevision.core.image import GREY
from edgevision.core.version import __version__
from edgevision.data.formats import list_splits, load_dataset
from edgevision.data.formats.sniff import sample_image_paths
from edgevision.eval.detection import detection_metrics
from edgevision.export.int8_speed import quantize_if_faster
from edgevision.export.nms import NmsDetector
from edgevision.export.onnx import check_opset, simplify, write_model
from edgevision.export.parity import check_fusion, format_report
from edgevision.export.quantize import (
    ImageCalibrationReader,
    detection_agreement,
    format_int8,
    int8_path_for,
)
from edgevision.export.trace import trace
from edgevision.models.blocks import fuse_conv_bn
from edgevision.runtime.metadata import ModelInfo, letterbox_preprocess
from edgevision.runtime.session import open_model
from edgevision.tasks.base import ExportOptions, LoadedModel
from edgevision.tasks.detect.export_check import (
    check_file,
    letterboxed_batch,
    sample_images,
    torch_reference,
)
from edgevision.tasks.detect.val import onnx_detections

RAW_OUTPUTS = ["raw"]
NMS_OUTPUTS = ["num_dets", "boxes", "scores", "classes"]


def export_detector(loaded: LoadedModel, options: ExportOptions) -> dict:
    """Export a detection checkpoint to ONNX, check it, and optionally quantize it to INT8.

    Returns:
        dict with ``path``, ``int8_path`` (or None), ``parity`` (fusion diff and per-file checks),
        ``simplified``, ``int8`` (INT8 report or None) and ``text`` (the printed summary).

    Raises:
        ConfigError: an invalid option (opset, imgsz, max_det) or ``int8`` without ``data``.
        ParityError: a numerical check failed; the file is left on disk for inspection.
    """
    model, meta = loaded.model, loaded.meta
    imgsz = _check_options(model, options.imgsz or loaded.imgsz, options)
    say = print if options.verbose else (lambda text: None)
    path = Path(options.out) if options.out else loaded.path.with_suffix(".onnx")
    images, names = sample_images(options.data or None, seed=0)
    fused = fuse_conv_bn(copy.deepcopy(model).eval())
    report = {"fuse_max_abs_diff": check_fusion(model, fused, letterboxed_batch(images, imgsz))}
    checks = {**asdict(options), "imgsz": imgsz}
    export_model(
        fused,
        meta,
        path,
        imgsz,
        options.nms,
        options.dynamic,
        options.opset,
        options.max_det,
        options.conf,
        options.iou,
    )
    reference = torch_reference(fused, loaded.class_names, images, names, checks)
    report["checks"] = {"fp32": check_file(path, reference, checks)}
    simplified = options.simplify and simplify(
        path, lambda p: check_file(p, reference, checks), say
    )
    if simplified:
        report["checks"]["fp32"] = simplified
    result = {
        "path": str(path),
        "int8_path": None,
        "parity": report,
        "simplified": bool(simplified),
        "int8": None,
        "text": format_report(report),
    }
    say(result["text"])
    if options.int8:
        result["int8"] = quantize_export(path, options, checks, images, names)
        result["int8_path"] = result["int8"]["path"]
        result["text"] += "\n" + format_int8(result["int8"])
        say(format_int8(result["int8"]))
    say(f"wrote {path}" + (f" and {result['int8_path']}" if result["int8_path"] else ""))
    return result


def _check_options(model: nn.Module, imgsz: int, options: ExportOptions) -> int:
    divisor = model.size_divisor
    if imgsz <= 0 or imgsz % divisor:
        raise ConfigError(f"--imgsz {imgsz} must be a positive multiple of {divisor}")
    check_opset(options.opset)
    if options.max_det < 1:
        raise ConfigError(f"--max-det {options.max_det} must be at least 1")
    if options.int8 and not options.data:
        raise ConfigError("--int8 needs --data DATA: INT8 is calibrated on your training images")
    return imgsz


def model_info(
    meta: dict,
    model: nn.Module,
    imgsz: int,
    nms: bool,
    dynamic: bool,
    max_det: int,
    conf: float,
    iou: float,
) -> ModelInfo:
    """The metadata written into the file, from checkpoint ``meta`` and the export options."""
    keypoints = meta.get("keypoints")
    if keypoints is None and meta.get("num_keypoints"):
        keypoints = {"num_keypoints": meta["num_keypoints"], "flip_idx": meta.get("flip_idx", [])}
    return ModelInfo(
        class_names=list(meta["class_names"]),
        imgsz=(imgsz, imgsz),
        output_layout="nms" if nms else "raw",
        task=meta.get("task", "detect"),  # "pose": the same graph, with keypoints
        strides=tuple(model.strides),
        head=model.codec.family,
        codec=model.codec.metadata(),
        dynamic=dynamic,
        nms={"conf": conf, "iou": iou, "max_det": max_det} if nms else None,
        model_name=meta.get("model_name", ""),
        version=__version__,
        preprocess=letterbox_preprocess(GREY),
        keypoints=keypoints,
    )


def export_model(
    model: nn.Module,
    meta: dict,
    path: str | Path,
    imgsz: int,
    nms: bool = False,
    dynamic: bool = False,
    opset: int = 17,
    max_det: int = 100,
    conf: float = 0.25,
    iou: float = 0.45,
) -> Path:
    """Trace a detector (already fused, eval mode) to ``path`` with edgevision metadata.

    Returns:
        ``path``, written atomically.
    """
    module = NmsDetector(model, conf, iou, max_det) if nms else model
    num_keypoints = getattr(model, "num_keypoints", 0)
    outputs = (NMS_OUTPUTS + ["keypoints"] * bool(num_keypoints)) if nms else RAW_OUTPUTS
    axes = None
    if dynamic:
        axes = {"images": {0: "batch", 2: "height", 3: "width"}}
        axes.update({name: {0: "batch"} for name in outputs})
        if not nms:
            axes["raw"][1] = "anchors"
    proto = trace(module, torch.rand(1, 3, imgsz, imgsz), outputs, axes, opset)
    if nms:
        _declare_nms_shapes(proto, "batch" if dynamic else 1, max_det, num_keypoints)
    info = model_info(meta, model, imgsz, nms, dynamic, max_det, conf, iou)
    return write_model(proto, info, outputs, path)


def _declare_nms_shapes(
    proto: onnx.ModelProto, batch: int | str, max_det: int, num_keypoints: int = 0
) -> None:
    """Write the fixed output shapes into the graph (the trace leaves them symbolic), so a
    reader sees ``boxes (batch, max_det, 4)`` without running the model."""
    shapes = {
        "num_dets": [batch, 1],
        "boxes": [batch, max_det, 4],
        "scores": [batch, max_det],
        "classes": [batch, max_det],
        "keypoints": [batch, max_det, num_keypoints, 3],
    }
    for output in proto.graph.output:
        dims = output.type.tensor_type.shape.dim
        del dims[:]
        for size in shapes[output.name]:
            dim = dims.add()
            if isinstance(size, str):
                dim.dim_param = size
            else:
                dim.dim_value = size


# -- INT8 ------------------------------------------------------------------------------------


def quantize_export(
    path: Path, options: ExportOptions, checks: dict, images: list[np.ndarray], names: list[str]
) -> dict:
    """Quantize an exported file, keep it only if it is faster than FP32 here (or
    ``int8_keep_slower``), and report it against FP32: speed, detections, accuracy.

    Returns:
        dict: ``path`` (None when INT8 was not written), ``calibration_images``, ``speed``
        (:func:`edgevision.export.int8_speed.quantize_if_faster`: medians, speedup, verdict
        ``text``) and, when written, ``detections`` (INT8 vs FP32 agreement on the samples) and
        ``metrics`` (FP32 / INT8 mAP on the val split) when the data has one.
    """
    sources = sample_image_paths(options.data, options.calibration_images)
    imgsz = (checks["imgsz"], checks["imgsz"])
    settled = quantize_if_faster(
        path,
        int8_path_for(path),
        ImageCalibrationReader(sources, imgsz),
        imgsz,
        threads=options.int8_threads,
        keep_slower=options.int8_keep_slower,
    )
    report = {
        "path": settled["path"],
        "calibration_images": len(sources),
        "speed": settled["speed"],
    }
    if settled["path"] is None:
        return report
    out = Path(settled["path"])
    thresholds = {"conf": options.conf, "iou": options.iou, "max_det": options.max_det}
    fp32, int8 = open_model(path, **thresholds), open_model(out, **thresholds)
    report["detections"] = detection_agreement(
        fp32.predict_images(images, names), int8.predict_images(images, names)
    )
    if "val" in list_splits(options.data):
        report["metrics"] = {
            name: evaluate_onnx(p, options.data) for name, p in (("fp32", path), ("int8", out))
        }
    return report


def evaluate_onnx(
    path: str | Path,
    data: str,
    split: str = "val",
    conf: float = 0.001,
    iou: float = 0.6,
    max_det: int = 300,
) -> dict:
    """COCO mAP50-95 / mAP50 and VOC mAP50 of an ONNX model on a split, through the runtime path."""
    detector = open_model(path, conf=conf, iou=iou, max_det=max_det)
    record_set, _ = load_dataset(data, split=split, class_names=detector.class_names)
    result = detection_metrics(*onnx_detections(detector, record_set))
    return {
        "mAP50-95": result["coco"]["mAP50-95"],
        "mAP50": result["coco"]["mAP50"],
        "voc_mAP50": result["voc"]["mAP"],
        "images": len(record_set.records),
    }
