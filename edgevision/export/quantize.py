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
- The stem (the Conv that reads the image, and its activation) stays float when its output goes
  straight into Convs: ONNX Runtime's int8 kernel for a 3-input-channel conv is 1.8-2.5x slower
  than the float one, and the first layer is the one most hurt by 8 bits. Not when a MaxPool
  follows (nano-*): ONNX Runtime then moves the QuantizeLinear above the pool and runs a uint8
  MaxPool in NCHW, which costs more than the int8 stem.
- Every node kept float gets private copies of its initializers. The tracer shares equal
  constants between convs (all biases of a freshly folded BatchNorm are zero); a shared bias is
  quantized for the int8 convs and the float conv would read it through a DequantizeLinear, which
  also stops ONNX Runtime from using its blocked (NCHWc) float kernel for that conv.
- Calibration: MinMax over N training images (default 100) with the runtime's letterbox, the
  preprocessing the deployed model sees.

What this buys, measured (ONNX Runtime 1.23, batch 1, 320 x 320, Xeon with AVX-512 VNNI and AMX,
a shared 2-vCPU VM; models trained 6 CPU-minutes on the demo VOC data, calibrated on 100 of its
training images, mAP50 on its 150 val images). With 2 threads every wall-clock figure on that
VM swung 2-4x from run to run, so the speed columns are the sum of ORT's per-node minimum kernel
times with 2 threads (profiling, FP32 and INT8 interleaved, median of 3 passes) and, steadier,
the median wall clock with 1 thread (3 passes of 100 runs):

  ======  =============  ==========================  ==========================
  model   FP32           INT8, previous recipe       INT8, this recipe
  ======  =============  ==========================  ==========================
  nano-s  5.19 ms (2t)   6.37 (0.81x), same graph    6.37 (0.81x)
          6.8 ms (1t)    7.2 (0.94x)                 7.2 (0.94x)
          mAP50 .4620    .4561 (-0.6 pt)             .4561 (-0.6 pt)
  yolo-n  8.78 ms (2t)   8.30 (1.06x)                7.70 (1.14x)
          14.9 ms (1t)   10.4 (1.43x)                9.2 (1.61x)
          mAP50 .6452    .6390 (-0.6 pt)             .6429 (-0.2 pt)
  ======  =============  ==========================  ==========================

Why nano-s stays slower (per-node profile): its 1x1 convs are 1.2-2.7x faster in int8, but its
depthwise convs are 1.3-2.5x *slower*, its 37 LeakyReLUs become separate QLinearLeakyRelu lookups
(~0.75 ms; in float they are fused into the conv), and the channel shuffle's Reshape/Transpose
forced NHWC <-> NCHW transposes around every unit (~0.85 ms vs 0.2 ms; since the shuffle is
exported as channel Gathers, INT8 is 0.93-0.95x of FP32 at 2 threads and 1.00x at 1 on the photo
set's nano-s; the 3-channel int8 stem, ~0.9 ms, and the LeakyReLU lookups remain). Tried and not faster:
per-tensor weights, QOperator format, U8U8, S8S8, no reduce-range (same speed on this VNNI CPU),
only Conv quantized (LeakyReLU / SiLU then run float between DequantizeLinear and
QuantizeLinear: 0.6-0.9x), depthwise convs left float (0.6x: a Q/DQ pair at every unit), the
backbone or its first stages left float (0.8-0.9x). Because of that, export measures INT8 against
FP32 on the machine it runs on (:mod:`edgevision.export.int8_speed`) rather than assuming int8 is
faster.
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


# Elementwise activations (SiLU is Sigmoid + Mul) that follow the stem conv and stay float with it.
STEM_ACTIVATIONS = frozenset(
    {"Relu", "LeakyRelu", "Sigmoid", "Mul", "Clip", "HardSigmoid", "HardSwish"}
)


def float_stem_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes kept in float at the input: the Conv reading the graph input and the
    activation nodes fed only by it, or ``[]`` unless every consumer of that chain is a Conv
    (see the module docstring: a MaxPool after the stem makes a float stem slower).
    """
    graph_input = model.graph.input[0].name
    constants = {init.name for init in model.graph.initializer}
    nodes = list(model.graph.node)
    stem_index = next(
        (i for i, n in enumerate(nodes) if n.op_type == "Conv" and n.input[0] == graph_input), None
    )
    if stem_index is None:
        return []
    members, produced = {stem_index}, set(nodes[stem_index].output)
    for index, node in enumerate(nodes):  # topological order: a chain member follows its inputs
        activations = [name for name in node.input if name and name not in constants]
        if node.op_type in STEM_ACTIVATIONS and activations and set(activations) <= produced:
            members.add(index)
            produced.update(node.output)
    consumers = [
        node
        for index, node in enumerate(nodes)
        if index not in members and any(name in produced for name in node.input)
    ]
    if not consumers or any(node.op_type != "Conv" for node in consumers):
        return []
    return [nodes[index].name for index in sorted(members)]


def give_private_initializers(model: onnx.ModelProto, node_names: Sequence[str]) -> int:
    """Give each named node its own copy of every initializer it shares with another node, in
    place, so quantizing the sharers leaves the float node's constants float.

    Returns:
        The number of initializer inputs rewired.
    """
    initializers = {init.name: init for init in model.graph.initializer}
    uses: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    wanted, rewired = set(node_names), 0
    for index, node in enumerate(model.graph.node):
        if node.name not in wanted:
            continue
        for position, name in enumerate(node.input):
            if name in initializers and uses[name] > 1:
                private = onnx.TensorProto()
                private.CopyFrom(initializers[name])
                private.name = f"{name}__float{index}"
                model.graph.initializer.append(private)
                node.input[position] = private.name
                rewired += 1
    return rewired


def quantize_int8(
    fp32_path: str | Path, int8_path: str | Path, calibration: CalibrationDataReader
) -> Path:
    """Write the INT8 (QDQ) model of an edgevision FP32 file; metadata is carried over.

    Float: the head's tail (:func:`float_tail_nodes`) and, where it pays, the stem
    (:func:`float_stem_nodes`). Whether the result is faster than FP32 on a given CPU is
    measured separately (:func:`edgevision.export.int8_speed.compare_speed`).

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
        model = onnx.load(str(prepared))
        float_nodes = float_tail_nodes(model) + float_stem_nodes(model)
        if give_private_initializers(model, float_nodes):
            onnx.save(model, str(prepared))
        quantize_static(
            str(prepared),
            str(quantized),
            calibration,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=float_nodes,
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
    """The INT8 lines of the export summary.

    ``report`` has ``speed`` (:func:`edgevision.export.int8_speed.quantize_if_faster`'s dict: its
    ``text`` says which model is faster and whether INT8 was written) and, when INT8 was written,
    ``path``, ``calibration_images``, ``detections`` and optionally ``metrics``. A report of the
    earlier shape (``latency_ms`` instead of ``speed``) is still printed.
    """
    speed = report.get("speed")
    lines = [speed["text"]] if speed else []
    if not report.get("path"):
        return "\n".join(lines)
    agreement = report["detections"]
    line = (
        f"INT8 {report['path']} (calibrated on {report['calibration_images']} images): "
        f"{agreement['matched']}/{agreement['reference']} FP32 detections found again (same class, "
        f"IoU >= 0.5) on {agreement['images']} samples"
    )
    if not speed:
        latency = report["latency_ms"]
        line += (
            f"; latency FP32 {latency['fp32']:.1f} ms, INT8 {latency['int8']:.1f} ms "
            f"({latency['fp32'] / latency['int8']:.2f}x)"
        )
    lines.append(line)
    for name, metrics in report.get("metrics", {}).items():
        lines.append(
            f"  {name}: mAP50-95 {metrics['mAP50-95']:.4f}, mAP50 {metrics['mAP50']:.4f} "
            f"on {metrics['images']} val images"
        )
    return "\n".join(lines)
