"""Keypoints (pose) for any K: boxes plus K points per object, with the data's skeleton.

A pose model is a detector whose every anchor point also regresses K keypoints (the pose head
and codec); training, inference and export reuse the detection task's machinery with the pose
loss (OKS + visibility) and the COCO keypoint evaluator on the data's sigmas (``data.sigmas``).
``train``, ``val``, ``predict``; export is detection's (keypoints ride in the NMS graph). No
torch at import.
"""

from __future__ import annotations

from edgevision.tasks.base import ExportOptions, LoadedModel, TaskSpec
from edgevision.tasks.pose import predict, val


def _build(config, device, distributed):
    from edgevision.tasks.pose.train import build_task  # PyTorch: training only

    return build_task(config, device, distributed)


def _export(loaded: LoadedModel, options: ExportOptions) -> dict:
    from edgevision.tasks.detect.export import export_detector  # PyTorch: .pt weights only

    return export_detector(loaded, options)


def _write_onnx(model, meta, path, imgsz):
    from edgevision.tasks.detect import SPEC as DETECT  # the same graph, keypoints included

    return DETECT.write_onnx(model, meta, path, imgsz)


SPEC = TaskSpec(
    name="pose",
    default_model="nano-s-pose",
    build=_build,
    validate=val.validate,
    predictor=predict.predictor,
    draw=predict.draw,
    write_predictions=predict.write_predictions,
    export=_export,
    write_onnx=_write_onnx,
)
