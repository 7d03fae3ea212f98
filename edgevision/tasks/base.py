"""What a task folder provides to the commands (:class:`TaskSpec`), the options each command
passes it, and a loaded model. The trainer's side of the contract is
:class:`edgevision.engine.task.Task`.

This module and every task's ``__init__`` import no torch: ``predict`` and ``val`` of an ``.onnx``
and the data commands go through them on machines without PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgevision.core.results import Result


@dataclass
class ValOptions:
    """``edgevision val`` settings (the task uses those that apply to it)."""

    split: str = "val"  # train | val | test
    batch: int = 16  # images per forward pass
    imgsz: int = 0  # 0 = the size the model was trained / exported at
    conf: float = 0.001  # detection: score threshold for mAP
    iou: float = 0.6  # detection: NMS IoU threshold
    max_det: int = 300  # detection: detections kept per image
    device: str = ""  # cpu | cuda | cuda:N; "" = cuda when available
    workers: int = 2  # data-loading processes (PyTorch weights)
    project: str = "runs/val"  # parent folder of the report folder
    name: str = "exp"  # report folder name
    exist_ok: bool = False  # reuse project/name
    save_json: bool = True  # write predictions.json
    plots: bool = True  # write PNG plots
    kpt_sigmas: tuple[float, ...] = ()  # pose: OKS sigma per keypoint; () = data.sigmas rule


@dataclass
class AnalyzeOptions:
    """``edgevision analyze`` settings: ``val``'s, plus the label-review ones."""

    val: ValOptions = field(default_factory=ValOptions)  # split, thresholds, output folder
    folds: int = 0  # >= 2: out-of-fold predictions from K models trained on the other folds
    review_conf: float = 0.5  # detections at least this confident can suggest a label change
    fold_epochs: int = 0  # epochs per fold model; 0 = the weights' own training epochs


@dataclass
class PredictOptions:
    """``edgevision predict`` settings (the task uses those that apply to it)."""

    imgsz: int = 0  # 0 = the size the model was trained / exported at
    conf: float = 0.25  # detection: score threshold
    iou: float = 0.45  # detection: NMS IoU threshold
    max_det: int = 300  # detection: detections kept per image
    topk: int = 5  # classification: classes reported per image
    device: str = ""  # cpu | cuda | cuda:N; "" = cuda when available
    save: bool = True  # write annotated images / videos (and classification CSV)
    save_json: bool = False  # write predictions.json
    project: str = "runs/predict"  # parent folder of the output folder
    name: str = "exp"  # output folder name
    exist_ok: bool = False  # reuse project/name
    strict: bool = False  # stop at the first unreadable file instead of skipping it


@dataclass
class ExportOptions:
    """``edgevision export`` settings (the task refuses those that do not apply to it)."""

    imgsz: int = 0  # 0 = the size the model was trained at
    nms: bool = False  # detection: decode + NMS inside the graph
    dynamic: bool = False  # dynamic batch and image size
    int8: bool = False  # detection: also write an INT8 (QDQ) model, calibrated on data
    data: str = ""  # calibration images (INT8) and parity samples
    opset: int = 17  # ONNX opset (17 or newer)
    max_det: int = 100  # detection: rows of an nms graph
    conf: float = 0.25  # detection: thresholds of an nms graph and of the parity check
    iou: float = 0.45
    out: str = ""  # output .onnx path; "" = beside the weights
    simplify: bool = True  # onnxslim the graph (re-checked)
    calibration_images: int = 100  # INT8 calibration images
    int8_threads: int = 2  # INT8: intra-op threads of the FP32-vs-INT8 speed check (the target's)
    int8_keep_slower: bool = False  # INT8: write it even when it is slower than FP32 here
    verbose: bool = True  # print each step


@dataclass
class LoadedModel:
    """A model read from ``.pt`` weights (PyTorch) or an exported ``.onnx`` (runtime session).

    Attributes:
        task: the task folder that runs it ("detect", "classify").
        path: the file it was read from.
        model: an ``nn.Module`` in eval mode, or an ``edgevision.runtime`` session for ``.onnx``.
        meta: ``model_name``, ``num_classes``, ``class_names``, ``imgsz`` and the task's keys.
        config: the training config stored in a ``.pt`` (empty for ``.onnx``).
    """

    task: str
    path: Path
    model: Any
    meta: dict
    config: dict = field(default_factory=dict)

    @property
    def onnx(self) -> bool:
        return self.path.suffix.lower() == ".onnx"

    @property
    def class_names(self) -> list[str]:
        return list(self.meta["class_names"])

    @property
    def imgsz(self) -> int:
        return int(self.meta["imgsz"])


class Predictor(Protocol):
    """What ``predict`` drives, for ``.pt`` and ``.onnx`` alike."""

    def predict_images(self, images: list[np.ndarray], names: list[str]) -> list[Result]:
        """Results for (H, W, 3) uint8 RGB images, labelled with ``names``."""


@dataclass(frozen=True)
class TaskSpec:
    """Everything that differs per task, as the commands see it: one row of ``tasks.TASKS``.

    Members that need PyTorch (``build``, ``export``, and ``predictor``/``validate`` given ``.pt``
    weights) import it when called, so looking a task up never does.
    """

    name: str  # the task's folder, the checkpoint's and the ONNX file's "task"
    default_model: str  # zoo model used when --task is given without --model
    build: Callable  # (TrainConfig, device, distributed) -> engine.task.Task
    validate: Callable  # (LoadedModel, data, ValOptions) -> {"metrics", "text", "run_dir"}
    predictor: Callable  # (LoadedModel, PredictOptions) -> Predictor
    draw: Callable  # (image, result) -> annotated image (RGB)
    write_predictions: Callable  # (results, run_dir, PredictOptions) -> files written
    export: Callable  # (LoadedModel, ExportOptions) -> report dict with "path" and "text"
    write_onnx: Callable  # (model, meta, path, imgsz) -> path: fused FP32 graph, unchecked (bench)
    analyze: Callable | None = None  # (LoadedModel, data, AnalyzeOptions) -> report; None: n/a
