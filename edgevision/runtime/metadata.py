"""What an edgevision ONNX file says about itself: one metadata schema for every task.

Everything the runtime needs besides the graph is stored as ONNX ``metadata_props`` (string to
string; structured values are JSON), so a device needs no other file:

==================  ==========================================================================
key                 value
==================  ==========================================================================
edgevision_format   metadata layout version (``"1"``); newer files are refused with a clear error
edgevision_version  package version that exported the file
task                ``"detect"`` or ``"classify"`` (picks the runtime session class)
model_name          zoo name (``nano-s``, ``cls-mobilenetv2`` ...)
class_names         JSON list, index = class id
imgsz               JSON ``[height, width]`` the model was exported / calibrated at
preprocess          JSON: ``{"kind": "letterbox", "color": 114, ...}`` (detectors) or
                    ``{"kind": "center_crop", "resize_shorter": S, "crop": imgsz}`` (classifiers)
input               JSON description of ``images``: float32 (B, 3, H, W), RGB, [0, 1]
output_layout       ``"raw"``, ``"nms"`` or ``"probabilities"`` (see :data:`OUTPUT_LAYOUTS`)
outputs             JSON list of output names, in graph order
head                detectors: the head's codec family (``"anchor_free"``, ``"pose"``,
                    ``"anchor"``, ``"ssd"``), which the runtime decodes ``raw`` with
                    (``runtime/codecs/``)
codec               detectors: JSON of the codec's parameters (``head``, ``strides``, and what a
                    family adds: ``num_keypoints`` for ``pose``, ``anchors`` for ``anchor``, the
                    prior ``levels``, ``variances``, ``scores`` and ``size_divisor`` for ``ssd``),
                    handed to the runtime twin as they are
strides             detectors: JSON list of level strides, finest first
letterbox           detectors: JSON letterbox settings (the ``preprocess`` entry, kept for files
                    read by older releases)
dynamic             ``"true"`` when batch, height and width are dynamic axes
nms                 JSON ``{"conf", "iou", "max_det"}`` baked into an ``nms`` graph
precision           ``"fp32"`` or ``"int8"``
keypoints           JSON ``{"num_keypoints", "flip_idx"}``, only for pose models
==================  ==========================================================================

Files from earlier releases still load: detector files without ``head`` or ``preprocess`` are
anchor-free letterboxed models, and classifier files written before this schema (no
``edgevision_format``) are read as ``probabilities`` with their centre-crop sizes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from edgevision.core.errors import CheckpointError

FORMAT_VERSION = 1
REQUIRED_KEYS = ("edgevision_format", "class_names", "imgsz", "output_layout")
BOX_LAYOUTS = ("raw", "nms")  # layouts of detectors: they also need strides (and a head family)
DEFAULT_HEAD = "anchor_free"  # the only family before the schema named one
INPUT = {"name": "images", "dtype": "float32", "layout": "NCHW", "channels": "RGB", "range": [0, 1]}
OUTPUT_LAYOUTS = {
    "raw": (
        "raw (B, A, 4 + C) float32: A = sum over strides s of (H/s)*(W/s), levels in stride "
        "order, row-major per level; channels 0:4 raw l,t,r,b distances (box = cell centre -/+ "
        "softplus(d) * stride), channels 4: class logits (score = sigmoid)"
    ),
    "nms": (
        "num_dets (B, 1) int64; boxes (B, max_det, 4) float32 xyxy input pixels; scores "
        "(B, max_det) float32; classes (B, max_det) int64; rows past num_dets are zero padding"
    ),
    "probabilities": (
        "probabilities (B, C) float32: softmax over class_names (normalisation is in the graph)"
    ),
}
# The raw layout of the other head families (``head``); anchor-free and pose use OUTPUT_LAYOUTS.
RAW_BY_HEAD = {
    "anchor": (
        "raw (B, N, 5 + C) float32: N = sum over levels of (H/s)*(W/s)*na, levels in stride order, "
        "row-major cells, anchors within a cell; channels tx, ty, tw, th, objectness, class logits: "
        "xy = (2 sigmoid(t) - 0.5 + cell) * stride, wh = (2 sigmoid(t))^2 * anchor (codec "
        "'anchors', input pixels), score = sigmoid(objectness) * sigmoid(class)"
    ),
    "ssd": (
        "raw (B, N, 4 + C + 1) float32: N priors (codec 'levels': per level a ceil(H/s) x "
        "ceil(W/s) grid, cell-major, priors within a cell); channels 0:4 SSD offsets of the prior "
        "with variances (codec 'variances'), then background-first logits (codec 'scores': "
        "softmax over C + 1, or sigmoid over the C classes)"
    ),
}
# Appended to the layout's description for a keypoint (pose) model.
KEYPOINT_OUTPUTS = {
    "raw": (
        "; then 3K keypoint channels, per keypoint dx, dy, visibility logit: x = cell centre x + "
        "2 * dx * stride, y likewise, visibility score = sigmoid(logit)"
    ),
    "nms": (
        "; keypoints (B, max_det, K, 3) float32: x, y input pixels and visibility score of each "
        "detection"
    ),
}


def letterbox_preprocess(color: int) -> dict:
    """The ``preprocess`` entry of a letterboxed model (``core.image.letterbox``)."""
    return {
        "kind": "letterbox",
        "color": color,
        "center": True,
        "scaleup": True,
        "resize": "INTER_LINEAR; INTER_AREA when shrinking 2x or more",
    }


def center_crop_preprocess(imgsz: int, resize_shorter: int) -> dict:
    """The ``preprocess`` entry of a classifier (``core.image.center_crop_view``)."""
    return {"kind": "center_crop", "resize_shorter": resize_shorter, "crop": imgsz}


@dataclass(frozen=True)
class ModelInfo:
    """The parsed metadata of an edgevision ONNX model (see the module docstring)."""

    class_names: list[str]
    imgsz: tuple[int, int]
    output_layout: str
    task: str = "detect"
    strides: tuple[int, ...] = ()
    head: str = ""
    codec: dict = field(default_factory=dict)
    dynamic: bool = False
    nms: dict | None = None
    precision: str = "fp32"
    model_name: str = ""
    version: str = ""
    preprocess: dict = field(default_factory=dict)
    keypoints: dict | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def size_divisor(self) -> int:
        """What a dynamic input's sides must be divisible by: the codec's ``size_divisor`` (SSD
        heads, whose coarse levels round up) or the largest stride."""
        return int(self.codec.get("size_divisor") or max(self.strides, default=1))


def to_metadata(info: ModelInfo, outputs: list[str]) -> dict[str, str]:
    """``metadata_props`` strings for ``info`` (the inverse of :func:`parse_metadata`)."""
    props = {
        "edgevision_format": str(FORMAT_VERSION),
        "edgevision_version": info.version,
        "task": info.task,
        "model_name": info.model_name,
        "class_names": json.dumps(info.class_names),
        "imgsz": json.dumps(list(info.imgsz)),
        "preprocess": json.dumps(info.preprocess),
        "input": json.dumps(INPUT),
        "output_layout": info.output_layout,
        "output_description": _output_description(info),
        "outputs": json.dumps(outputs),
        "dynamic": "true" if info.dynamic else "false",
        "precision": info.precision,
    }
    if info.output_layout in BOX_LAYOUTS:
        props["head"] = info.head or DEFAULT_HEAD
        props["strides"] = json.dumps(list(info.strides))
        props["codec"] = json.dumps(info.codec or codec_of(props["head"], info.strides))
    if info.preprocess.get("kind") == "letterbox":
        props["letterbox"] = json.dumps(info.preprocess)
    if info.nms is not None:
        props["nms"] = json.dumps(info.nms)
    if info.keypoints is not None:
        props["keypoints"] = json.dumps(info.keypoints)
    return props


def _output_description(info: ModelInfo) -> str:
    description = OUTPUT_LAYOUTS[info.output_layout]
    if info.output_layout == "raw" and info.head in RAW_BY_HEAD:
        description = RAW_BY_HEAD[info.head]
    num_keypoints = info.codec.get("num_keypoints") or (info.keypoints or {}).get("num_keypoints")
    if num_keypoints and info.output_layout in KEYPOINT_OUTPUTS:
        description += KEYPOINT_OUTPUTS[info.output_layout]
    return description


def parse_metadata(props: dict[str, str], path: str | Path) -> ModelInfo:
    """Read :class:`ModelInfo` from ``metadata_props``.

    Raises:
        CheckpointError: the file was not written by ``edgevision export`` (keys missing), by a
            newer edgevision, or its values are malformed; the message names the file.
    """
    if "edgevision_format" not in props and props.get("task") == "classify":
        props = _legacy_classifier(props)
    missing = [key for key in REQUIRED_KEYS if key not in props]
    if props.get("output_layout") in BOX_LAYOUTS and "strides" not in props:
        missing.append("strides")
    if missing:
        raise CheckpointError(
            f"{path}: ONNX model without edgevision metadata (missing {', '.join(missing)}); "
            "the runtime needs the task, class names and input size from the file: export it "
            "with `edgevision export --weights W.pt --format onnx`"
        )
    try:
        version = int(props["edgevision_format"])
        if version > FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: metadata format {version} is newer than this edgevision understands "
                f"({FORMAT_VERSION}); upgrade edgevision"
            )
        return _info_from(props)
    except (ValueError, TypeError, KeyError, AttributeError) as e:  # JSONDecodeError: ValueError
        raise CheckpointError(f"{path}: malformed edgevision metadata ({e}); re-export it") from e


def _legacy_classifier(props: dict[str, str]) -> dict[str, str]:
    """A classifier file of the first release (no ``edgevision_format``) in today's keys."""
    props = dict(props)
    imgsz = json.loads(props.get("imgsz", "[0, 0]"))[0]
    old = json.loads(props.get("preprocess", "{}"))
    sizes = center_crop_preprocess(old.get("center_crop", imgsz), old.get("resize_shorter", 0))
    props.update(edgevision_format="1", output_layout="probabilities")
    props["preprocess"] = json.dumps(sizes)
    return props


def codec_of(head: str, strides) -> dict:
    """The codec parameters of a file that names only a family and strides (the first release)."""
    return {"head": head, "strides": [int(s) for s in strides]}


def _info_from(props: dict[str, str]) -> ModelInfo:
    layout = props["output_layout"]
    if layout not in OUTPUT_LAYOUTS:
        raise ValueError(f"output_layout {layout!r} is not one of {sorted(OUTPUT_LAYOUTS)}")
    height, width = (int(v) for v in json.loads(props["imgsz"]))
    boxes = layout in BOX_LAYOUTS
    preprocess = json.loads(props.get("preprocess") or props.get("letterbox") or "{}")
    if boxes and not preprocess.get("kind"):  # files before the schema named the kind
        preprocess = {"kind": "letterbox", **preprocess}
    strides = tuple(int(s) for s in json.loads(props["strides"])) if boxes else ()
    head = props.get("head", DEFAULT_HEAD) if boxes else ""
    codec = json.loads(props["codec"]) if "codec" in props else codec_of(head, strides)
    return ModelInfo(
        class_names=[str(name) for name in json.loads(props["class_names"])],
        imgsz=(height, width),
        output_layout=layout,
        task=props.get("task", "detect"),
        strides=strides,
        head=head,
        codec=codec if boxes else {},
        dynamic=props.get("dynamic", "false") == "true",
        nms=json.loads(props["nms"]) if "nms" in props else None,
        precision=props.get("precision", "fp32"),
        model_name=props.get("model_name", ""),
        version=props.get("edgevision_version", ""),
        preprocess=preprocess,
        keypoints=json.loads(props["keypoints"]) if "keypoints" in props else None,
    )
