"""Object detection: boxes, classes and scores per image.

``train`` (the task the trainer runs), ``inference`` (PyTorch model -> detections), ``val``,
``predict``, ``export`` (+ ``export_check``), ``analyze`` (error breakdown and label review) and
``skips`` (unusable images named once). The
PyTorch-only modules are imported when a command needs them, so this package imports no torch.
"""

from __future__ import annotations

import copy
from pathlib import Path

from edgevision.tasks.base import ExportOptions, LoadedModel, TaskSpec
from edgevision.tasks.detect import analyze, predict, val


def _build(config, device, distributed):
    from edgevision.tasks.detect.train import build_task  # PyTorch: training only

    return build_task(config, device, distributed)


def _export(loaded: LoadedModel, options: ExportOptions) -> dict:
    from edgevision.tasks.detect.export import export_detector  # PyTorch: .pt weights only

    return export_detector(loaded, options)


def _write_onnx(model, meta: dict, path: Path, imgsz: int) -> Path:
    from edgevision.models.blocks import fuse_conv_bn  # PyTorch: .pt weights only
    from edgevision.tasks.detect.export import export_model

    return export_model(fuse_conv_bn(copy.deepcopy(model).eval()), meta, path, imgsz)


SPEC = TaskSpec(
    name="detect",
    default_model="nano-s",
    build=_build,
    validate=val.validate,
    predictor=predict.predictor,
    draw=predict.draw,
    write_predictions=predict.write_predictions,
    export=_export,
    write_onnx=_write_onnx,
    analyze=analyze.analyze,
)
