"""INT8 by ONNX Runtime static quantization (QDQ), calibrated on the user's training images.

Settings, and why (ONNX Runtime's "Quantize ONNX models" guide, data type selection and FAQ):

- QDQ format: the one ONNX Runtime optimises for CPU (S8S8 in QOperator format is slow on x86).
- Activations uint8 (asymmetric: post-activation maps are mostly one-signed), weights int8
  (symmetric), per-channel weights (depthwise and 1x1 convs have very uneven channel ranges).
- ``reduce_range=True``: weights use 7 bits. On x86-64 with AVX2 / AVX-512 but *without* VNNI,
  ONNX Runtime runs U8S8 with VPMADDUBSW, whose 16-bit intermediate sums can saturate; 7-bit
  weights cannot saturate it. The guide recommends reduce-range with per-channel on such CPUs; the
  cost (one bit of weight precision) is small next to a model that is wrong on older machines.
- The final head convs (box and class predictors) and everything after them (concat, transpose,
  decode, NMS) stay float: quantizing the last layers of YOLO-style heads is the known cause of
  INT8 models that lose most of their mAP. They are found structurally: walking back from the
  graph outputs, every node up to and including the first Conv on each path.
- Calibration: MinMax over N training images (default 100) with the runtime's letterbox, the
  preprocessing the deployed model sees.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)

from edgevision.core.image import letterbox, read_image, to_input
from edgevision.export.onnx import read_info, write_model
from edgevision.ops.boxes import box_iou_numpy

DEFAULT_CALIBRATION_IMAGES = 100


class ImageCalibrationReader(CalibrationDataReader):
    """Feeds calibration images one at a time as ``{"images": (1, 3, H, W) float32}``.

    Args:
        sources: image paths or (H, W, 3) uint8 RGB arrays; read lazily.
        imgsz: (height, width) to letterbox to.
    """

    def __init__(self, sources: Sequence[str | Path | np.ndarray], imgsz: tuple[int, int]):
        self.sources = list(sources)
        self.imgsz = imgsz
        self._iterator: Iterator | None = None

    def _inputs(self) -> Iterator[dict[str, np.ndarray]]:
        for source in self.sources:
            image = source if isinstance(source, np.ndarray) else read_image(source)
            yield {"images": to_input([letterbox(image, self.imgsz)[0]])}

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._iterator is None:
            self._iterator = self._inputs()
        return next(self._iterator, None)

    def rewind(self) -> None:
        self._iterator = None


def random_images(count: int, imgsz: int, seed: int = 0) -> list[np.ndarray]:
    """Uniform-noise images: calibration for speed measurements only (accuracy is meaningless)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (imgsz, imgsz, 3), dtype=np.uint8) for _ in range(count)]


def float_tail_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes kept in float: the last Conv on every path to an output, and all after.

    Walks backwards from the graph outputs; a Conv is included and its inputs are not followed.
    """
    producer = {output: node for node in model.graph.node for output in node.output}
    pending = [output.name for output in model.graph.output]
    seen, names = set(), []
    while pending:
        node = producer.get(pending.pop())
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        names.append(node.name)
        if node.op_type != "Conv":
            pending.extend(name for name in node.input if name)
    return names


def quantize_int8(
    fp32_path: str | Path, int8_path: str | Path, calibration: CalibrationDataReader
) -> Path:
    """Write the INT8 (QDQ) model of an edgevision FP32 file; metadata is carried over.

    Returns:
        ``int8_path``.
    """
    fp32_path, int8_path = Path(fp32_path), Path(int8_path)
    info = read_info(fp32_path)
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quantized = Path(scratch) / "quantized.onnx"
        # Shape inference + ORT graph fusions first, as ONNX Runtime recommends for quantization.
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(quantized),
            calibration,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=float_tail_nodes(onnx.load(str(prepared))),
            calibrate_method=CalibrationMethod.MinMax,
        )
        proto = onnx.load(str(quantized))
    outputs = [output.name for output in proto.graph.output]
    return write_model(proto, replace(info, precision="int8"), outputs, int8_path)


def int8_path_for(path: str | Path) -> Path:
    """``model.onnx`` -> ``model-int8.onnx``."""
    path = Path(path)
    return path.with_name(f"{path.stem}-int8{path.suffix}")


def detection_agreement(reference: list, candidate: list, iou: float = 0.5) -> dict:
    """How many reference (FP32) detections the candidate (INT8) finds: same class, IoU >= ``iou``.

    INT8 moves boxes by more than the 1 px of the FP32 parity check, so this is a recall-style
    agreement rather than an identity check.

    Returns:
        dict: ``images``, ``reference``, ``candidate``, ``matched`` and ``recall``.
    """
    matched = reference_count = candidate_count = 0
    for ref, cand in zip(reference, candidate, strict=True):
        reference_count, candidate_count = reference_count + len(ref), candidate_count + len(cand)
        if len(ref) and len(cand):
            overlaps = box_iou_numpy(ref.boxes.astype(np.float64), cand.boxes.astype(np.float64))
            same = ref.classes[:, None] == cand.classes[None, :]
            matched += int(((overlaps >= iou) & same).any(axis=1).sum())
    recall = matched / reference_count if reference_count else 1.0
    return {
        "images": len(reference),
        "reference": reference_count,
        "candidate": candidate_count,
        "matched": matched,
        "recall": recall,
    }


def format_int8(report: dict) -> str:
    agreement, latency = report["detections"], report["latency_ms"]
    lines = [
        f"INT8 {report['path']} (calibrated on {report['calibration_images']} images): "
        f"{agreement['matched']}/{agreement['reference']} FP32 detections found again (same class, "
        f"IoU >= 0.5) on {agreement['images']} samples; latency FP32 {latency['fp32']:.1f} ms, "
        f"INT8 {latency['int8']:.1f} ms ({latency['fp32'] / latency['int8']:.2f}x)"
    ]
    for name, metrics in report.get("metrics", {}).items():
        lines.append(
            f"  {name}: mAP50-95 {metrics['mAP50-95']:.4f}, mAP50 {metrics['mAP50']:.4f} "
            f"on {metrics['images']} val images"
        )
    return "\n".join(lines)
