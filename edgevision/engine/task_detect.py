"""Tasks: what differs between detection and classification. The trainer calls these and nothing else."""

from __future__ import annotations

from dataclasses import fields

import torch
from torch import nn

from ..config import TrainConfig
from ..data.dataset import AugmentConfig, DetectionDataset, build_dataloader
from ..data.records import RecordSet
from ..eval.coco import coco_evaluate
from ..losses.detection import DetectionLoss
from .inference import ground_truth_for, run_inference


def augment_config(config: TrainConfig) -> AugmentConfig:
    """The augmentation fields of a train config (same names in both dataclasses)."""
    names = {f.name for f in fields(AugmentConfig)}
    return AugmentConfig(**{k: v for k, v in config.to_dict().items() if k in names})


class DetectionTask:
    """Detection: letterboxed images and ``targets`` rows in, SimOTA + QFL/GIoU losses, COCO mAP out."""

    name = "detect"
    head_prefixes: tuple[str, ...] = ()
    head_lr_mult = 1.0

    def __init__(self, model: nn.Module, model_name: str, train_set: RecordSet, val_set: RecordSet | None,
                 config: TrainConfig, imgsz: int, device: torch.device, distributed: bool = False):
        self.model = model
        self.model_name = model_name
        self.config = config
        self.imgsz = imgsz
        self.device = device
        self.class_names = list(train_set.class_names)
        self.loss_fn = DetectionLoss(model.num_classes, strides=tuple(model.strides))
        self.train_dataset = DetectionDataset(train_set, imgsz=imgsz, augment=True, hyp=augment_config(config),
                                              cache=config.cache, seed=config.seed)
        self.train_loader = build_dataloader(self.train_dataset, config.batch, config.workers, shuffle=True,
                                             seed=config.seed, distributed=distributed)
        self.val_set = val_set
        self.val_dataset = self.val_loader = None
        if val_set is not None and len(val_set):
            self.val_dataset = DetectionDataset(val_set, imgsz=imgsz, augment=False, cache="none", seed=config.seed)
            self.val_loader = build_dataloader(self.val_dataset, config.batch, min(config.workers, 1),
                                               shuffle=False, seed=config.seed)

    def set_epoch(self, epoch: int) -> None:
        self.train_dataset.set_epoch(epoch)
        sampler = getattr(self.train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)

    def close_mosaic(self) -> None:
        self.train_dataset.close_mosaic()

    def loss(self, model: nn.Module, batch: dict) -> dict:
        images = batch["images"].to(self.device, non_blocking=True, memory_format=torch.channels_last)
        raw = model(images)
        return self.loss_fn(raw.float(), batch["targets"].to(self.device), tuple(images.shape[-2:]))

    def evaluate(self, model: nn.Module) -> dict:
        """COCO mAP50-95 / mAP50 and VOC mAP50 on the val split; ``fitness`` = mAP50-95."""
        if self.val_loader is None:
            return {}
        c = self.config
        indices, detections = run_inference(model, self.val_loader, self.device, c.conf, c.iou, c.max_det)
        coco = coco_evaluate(ground_truth_for(self.val_dataset, self.val_set, indices), detections)
        return {"mAP50-95": coco["mAP50-95"], "mAP50": coco["mAP50"], "fitness": coco["mAP50-95"]}

    def checkpoint_meta(self) -> dict:
        return {"model_name": self.model_name, "num_classes": len(self.class_names),
                "class_names": self.class_names, "imgsz": self.imgsz, "task": self.name}

    def model_for_graph(self) -> nn.Module:
        return self.model
