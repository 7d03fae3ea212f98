"""Pose for the trainer: the detection task with the pose loss and OKS evaluation.

:class:`PoseTask` holds a :class:`~edgevision.tasks.detect.train.DetectionTask` (data, loaders,
augmentation moving keypoints, the model) and changes what differs: the loss is
``losses.pose.PoseLoss`` (SimOTA assignment shared with the box terms, ``1 - OKS`` and
visibility BCE on the assigned points), and ``fitness`` is OKS mAP50-95 on the val split, with
the sigmas ``data.sigmas.resolve_sigmas`` picks (printed once, stored in the checkpoint).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from edgevision.analysis.report import write_run_report
from edgevision.config import TrainConfig
from edgevision.core.errors import ConfigError, DataError
from edgevision.core.records import RecordSet
from edgevision.data.sigmas import resolve_sigmas
from edgevision.engine import dist
from edgevision.eval.coco import coco_evaluate
from edgevision.eval.keypoints import keypoint_evaluate
from edgevision.losses.pose import PoseLoss
from edgevision.tasks.base import ValOptions
from edgevision.tasks.detect.inference import ground_truth_for, run_inference
from edgevision.tasks.detect.skips import report_new_skips
from edgevision.tasks.detect.train import DetectionTask, detection_task, load_splits


class PoseTask:
    """The Task protocol for pose (see the module docstring)."""

    name = "pose"

    def __init__(
        self, boxes: DetectionTask, sigmas: list[float], sigma_source: str, user: bool = False
    ):
        self.boxes = boxes
        self.sigmas, self.sigma_source = sigmas, sigma_source
        self.user_sigmas = user  # --kpt-sigmas given: the final val uses them too
        model = boxes.model
        self.loss_fn = PoseLoss(model.num_classes, model.codec, torch.tensor(sigmas))
        self.head_prefixes, self.head_lr_mult = boxes.head_prefixes, boxes.head_lr_mult

    # What the detection task already does for the trainer.
    model = property(lambda self: self.boxes.model)
    imgsz = property(lambda self: self.boxes.imgsz)
    train_loader = property(lambda self: self.boxes.train_loader)
    train_dataset = property(lambda self: self.boxes.train_dataset)
    val_dataset = property(lambda self: self.boxes.val_dataset)

    def on_epoch_start(self, epoch: int, epochs_left: float, progress: float = 0.0) -> None:
        self.boxes.on_epoch_start(epoch, epochs_left)

    def model_for_graph(self) -> nn.Module:
        return self.boxes.model

    def loss(self, model: nn.Module, batch: dict) -> dict:
        device = self.boxes.device
        images = batch["images"].to(device, non_blocking=True, memory_format=torch.channels_last)
        raw = model(images)
        targets, keypoints = batch["targets"].to(device), batch["keypoints"].to(device)
        return self.loss_fn(raw.float(), targets, keypoints, tuple(images.shape[-2:]))

    def evaluate(self, model: nn.Module) -> dict:
        """Box mAP and OKS mAP on the val split; ``fitness`` = OKS mAP50-95."""
        boxes = self.boxes
        if boxes.val_loader is None:
            return {}
        c = boxes.config
        indices, detections = run_inference(
            model, boxes.val_loader, boxes.device, c.conf, c.iou, c.max_det
        )
        report_new_skips(boxes.val_dataset, "val")
        truth = ground_truth_for(boxes.val_dataset, boxes.val_set, indices)
        coco = coco_evaluate(truth, detections)
        oks = keypoint_evaluate(truth, detections, self.sigmas)
        return {
            "mAP50-95": coco["mAP50-95"],
            "mAP50": coco["mAP50"],
            "OKS mAP50-95": oks["OKS mAP50-95"],
            "OKS mAP50": oks["OKS mAP50"],
            "fitness": oks["OKS mAP50-95"],
        }

    def checkpoint_meta(self) -> dict:
        """Detection's meta plus the keypoint schema and the sigmas (the export writes them)."""
        data = self.boxes.train_dataset.record_set
        keypoints = {
            "num_keypoints": self.model.num_keypoints,
            "flip_idx": list(data.flip_idx or []),
            "names": list(data.kpt_names or []),
            "skeleton": [list(edge) for edge in data.skeleton or []],
            "sigmas": list(self.sigmas),
        }
        return {
            **self.boxes.checkpoint_meta(),
            "task": self.name,
            "num_keypoints": self.model.num_keypoints,
            "flip_idx": keypoints["flip_idx"],
            "skeleton": keypoints["skeleton"],
            "keypoints": keypoints,
        }

    def on_train_end(self, run_dir: Path) -> None:
        """``val`` of best.pt into ``run_dir/val``, then the run's ``report.html``."""
        from edgevision.tasks.load import load_model
        from edgevision.tasks.pose.val import validate

        boxes = self.boxes
        if boxes.val_dataset is not None:
            options = ValOptions(
                imgsz=boxes.imgsz,
                device=str(boxes.device),
                workers=boxes.workers,
                project=str(run_dir),
                name="val",
                exist_ok=True,
                kpt_sigmas=tuple(self.sigmas) if self.user_sigmas else (),
            )
            validate(load_model(run_dir / "weights" / "best.pt"), boxes.config.data, options)
        write_run_report(run_dir)


def build_task(config: TrainConfig, device: torch.device, distributed: bool) -> PoseTask:
    """Pose data (K keypoints per object), sigmas, the zoo pose model, the task around it."""
    train_set, val_set, train_issues = load_splits(config)
    num_keypoints = train_set.num_keypoints
    if not num_keypoints:
        raise DataError(
            train_set.root,
            f"--model {config.model} needs keypoints, and the data has none",
            "use COCO keypoints or a YOLO-pose data YAML (kpt_shape), or a detection model",
        )
    user = _user_sigmas(config.kpt_sigmas)
    sigmas, source = resolve_sigmas(train_set, user)
    config = _flip_rule(config, train_set)
    _print([f"keypoints: K={num_keypoints}, OKS sigmas from {source}: {_short(sigmas)}"])
    boxes = detection_task(
        config, device, distributed, train_set, val_set, train_issues, num_keypoints
    )
    return PoseTask(boxes, [float(v) for v in sigmas], source, user is not None)


def _user_sigmas(text: str) -> list[float] | None:
    if not text.strip():
        return None
    try:
        return [float(value) for value in text.replace(",", " ").split()]
    except ValueError as e:
        raise ConfigError(f"--kpt-sigmas {text!r}: give numbers, e.g. 0.05,0.05,0.07") from e


def _flip_rule(config: TrainConfig, train_set: RecordSet) -> TrainConfig:
    """Without ``flip_idx`` a mirrored image would swap left and right points' meaning: no flip."""
    if train_set.flip_idx is not None or config.fliplr == 0:
        return config
    _print(["keypoints: no flip_idx in the data, so horizontal flips are off (set flip_idx)"])
    return dataclasses.replace(config, fliplr=0.0)


def _short(values) -> str:
    shown = ", ".join(f"{float(v):.3g}" for v in list(values)[:8])
    return f"[{shown}{', ...' if len(values) > 8 else ''}]"


def _print(lines: list[str]) -> None:
    if lines and dist.is_main():
        print("\n".join(lines))
