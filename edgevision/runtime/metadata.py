"""What an edgevision ONNX file says about itself: the metadata keys export writes and runtime reads.

Everything the runtime needs besides the graph is stored as ONNX ``metadata_props`` (string to
string; structured values are JSON), so a device needs no other file:

==================  ==========================================================================
key                 value
==================  ==========================================================================
edgevision_format   metadata layout version (``"1"``); newer files are refused with a clear error
edgevision_version  package version that exported the file
task                ``"detect"``
model_name          zoo name (``nano-s`` ...)
class_names         JSON list, index = class id
imgsz               JSON ``[height, width]`` the model was exported / calibrated at
strides             JSON list of level strides, finest first
letterbox           JSON ``{"color": 114, "center": true, "scaleup": true, "resize": ...}``
input               JSON description of ``images``: float32 (B, 3, H, W), RGB, [0, 1]
output_layout       ``"raw"`` or ``"nms"`` (see :data:`OUTPUT_LAYOUTS`)
outputs             JSON list of output names, in graph order
dynamic             ``"true"`` when batch, height and width are dynamic axes
nms                 JSON ``{"conf", "iou", "max_det"}`` baked into an ``nms`` graph
precision           ``"fp32"`` or ``"int8"``
keypoints           JSON ``{"num_keypoints", "flip_idx"}``, only for pose models
==================  ==========================================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from edgevision.errors import CheckpointError

FORMAT_VERSION = 1
REQUIRED_KEYS = ("edgevision_format", "class_names", "imgsz", "strides", "output_layout")
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
}


@dataclass(frozen=True)
class ModelInfo:
    """The parsed metadata of an edgevision ONNX model (see the module docstring)."""

    class_names: list[str]
    imgsz: tuple[int, int]
    strides: tuple[int, ...]
    output_layout: str
    dynamic: bool = False
    nms: dict | None = None
    precision: str = "fp32"
    task: str = "detect"
    model_name: str = ""
    version: str = ""
    letterbox: dict = field(default_factory=dict)
    keypoints: dict | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def to_metadata(info: ModelInfo, outputs: list[str]) -> dict[str, str]:
    """``metadata_props`` strings for ``info`` (the inverse of :func:`parse_metadata`)."""
    props = {
        "edgevision_format": str(FORMAT_VERSION),
        "edgevision_version": info.version,
        "task": info.task,
        "model_name": info.model_name,
        "class_names": json.dumps(info.class_names),
        "imgsz": json.dumps(list(info.imgsz)),
        "strides": json.dumps(list(info.strides)),
        "letterbox": json.dumps(info.letterbox),
        "input": json.dumps(
            {
                "name": "images",
                "dtype": "float32",
                "layout": "NCHW",
                "channels": "RGB",
                "range": [0, 1],
            }
        ),
        "output_layout": info.output_layout,
        "output_description": OUTPUT_LAYOUTS[info.output_layout],
        "outputs": json.dumps(outputs),
        "dynamic": "true" if info.dynamic else "false",
        "precision": info.precision,
    }
    if info.nms is not None:
        props["nms"] = json.dumps(info.nms)
    if info.keypoints is not None:
        props["keypoints"] = json.dumps(info.keypoints)
    return props


def parse_metadata(props: dict[str, str], path: str | Path) -> ModelInfo:
    """Read :class:`ModelInfo` from ``metadata_props``.

    Raises:
        CheckpointError: the file was not written by ``edgevision export`` (keys missing), by a
            newer edgevision, or its values are malformed; the message names the file.
    """
    missing = [key for key in REQUIRED_KEYS if key not in props]
    if missing:
        raise CheckpointError(
            f"{path}: ONNX model without edgevision metadata (missing {', '.join(missing)}); "
            "the runtime needs class names, input size and strides from the file: export it with "
            "`edgevision export --weights W.pt --format onnx`"
        )
    try:
        version = int(props["edgevision_format"])
        if version > FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: metadata format {version} is newer than this edgevision understands "
                f"({FORMAT_VERSION}); upgrade edgevision"
            )
        return _info_from(props)
    except (ValueError, TypeError, KeyError) as e:  # json.JSONDecodeError is a ValueError
        raise CheckpointError(f"{path}: malformed edgevision metadata ({e}); re-export it") from e


def _info_from(props: dict[str, str]) -> ModelInfo:
    layout = props["output_layout"]
    if layout not in OUTPUT_LAYOUTS:
        raise ValueError(f"output_layout {layout!r} is not one of {sorted(OUTPUT_LAYOUTS)}")
    height, width = (int(v) for v in json.loads(props["imgsz"]))
    return ModelInfo(
        class_names=[str(name) for name in json.loads(props["class_names"])],
        imgsz=(height, width),
        strides=tuple(int(s) for s in json.loads(props["strides"])),
        output_layout=layout,
        dynamic=props.get("dynamic", "false") == "true",
        nms=json.loads(props["nms"]) if "nms" in props else None,
        precision=props.get("precision", "fp32"),
        task=props.get("task", "detect"),
        model_name=props.get("model_name", ""),
        version=props.get("edgevision_version", ""),
        letterbox=json.loads(props.get("letterbox", "{}")),
        keypoints=json.loads(props["keypoints"]) if "keypoints" in props else None,
    )
