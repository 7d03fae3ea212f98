"""Image classification: the top-k classes of each image.

``train`` (the task the trainer runs, transfer learning), ``inference`` (PyTorch model ->
probabilities), ``val``, ``predict`` and ``export``. The PyTorch-only modules are imported when a
command needs them, so this package imports no torch.
"""

from __future__ import annotations

import copy
from pathlib import Path

from edgevision.tasks.base import ExportOptions, LoadedModel, TaskSpec
from edgevision.tasks.classify import predict, val


def _build(config, device, distributed):
    from edgevision.tasks.classify.train import build_task  # PyTorch: training only

    return build_task(config, device, distributed)


def _export(loaded: LoadedModel, options: ExportOptions) -> dict:
    from edgevision.tasks.classify.export import export_classifier  # PyTorch: .pt weights only

    return export_classifier(loaded, options)


def _write_onnx(model, meta: dict, path: Path, imgsz: int) -> Path:
    from edgevision.models.blocks import fuse_conv_bn  # PyTorch: .pt weights only
    from edgevision.tasks.classify.export import write_classifier

    write_classifier(fuse_conv_bn(copy.deepcopy(model).eval()), meta, path, imgsz)
    return path


SPEC = TaskSpec(
    name="classify",
    default_model="cls-shufflenetv2-x1.0",
    build=_build,
    validate=val.validate,
    predictor=predict.predictor,
    draw=predict.draw,
    write_predictions=predict.write_predictions,
    export=_export,
    write_onnx=_write_onnx,
)
