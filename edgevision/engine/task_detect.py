"""Tasks: what differs between detection and classification. The trainer calls these and nothing else."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import torch
from torch import nn

from edgevision.config import TrainConfig
from edgevision.data.dataset import AugmentConfig, DetectionDataset
from edgevision.data.loader import build_dataloader, set_loader_epoch
from edgevision.data.records import RecordSet
from edgevision.engine import dist
from edgevision.engine.inference import ground_truth_for, run_inference
from edgevision.eval.coco import coco_evaluate
from edgevision.losses.detection import DetectionLoss

SKIPS_LISTED = 10  # skipped images named in a report; the rest are counted


def format_skips(label: str, skips: list[tuple[Path, str]], limit: int = SKIPS_LISTED) -> list[str]:
    """Lines naming skipped images once each: a header, the first ``limit``, then a count."""
    if not skips:
        return []
    noun = "image" if len(skips) == 1 else "images"
    lines = [f"{label}: {len(skips)} {noun} skipped:"]
    lines += [f"  {path}: {reason}" for path, reason in skips[:limit]]
    if len(skips) > limit:
        lines.append(f"  ... and {len(skips) - limit} more")
    return lines


def report_new_skips(dataset: DetectionDataset | None, label: str) -> None:
    """Print the images first found undecodable since the last report (main process only)."""
    if dataset is None or not dist.is_main():
        return
    for line in format_skips(label, dataset.take_unreported_skips()):
        print(line)


class _SkipReportingLoader:
    """The training loader, plus one report after each pass of the images found undecodable
    during it, so a truncated JPEG is named once (not per batch, per worker or per epoch)."""

    def __init__(self, loader, dataset: DetectionDataset):
        self.loader, self.dataset = loader, dataset

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        yield from self.loader
        report_new_skips(self.dataset, f"train epoch {self.dataset.epoch + 1}")

    def __getattr__(self, name: str):
        if name == "loader":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.loader, name)  # sampler, dataset, batch_size ... of the wrapped loader


def augment_config(config: TrainConfig) -> AugmentConfig:
    """The augmentation fields of a train config (same names in both dataclasses)."""
    names = {f.name for f in fields(AugmentConfig)}
    return AugmentConfig(**{k: v for k, v in config.to_dict().items() if k in names})


class DetectionTask:
    """Detection: letterboxed images and ``targets`` rows in, SimOTA + QFL/GIoU losses, COCO mAP out."""

    name = "detect"
    head_prefixes: tuple[str, ...] = ()
    head_lr_mult = 1.0

    def __init__(
        self,
        model: nn.Module,
        model_name: str,
        train_set: RecordSet,
        val_set: RecordSet | None,
        config: TrainConfig,
        imgsz: int,
        device: torch.device,
        distributed: bool = False,
    ):
        self.model = model
        self.model_name = model_name
        self.config = config
        self.imgsz = imgsz
        self.device = device
        self.class_names = list(train_set.class_names)
        self.loss_fn = DetectionLoss(model.num_classes, strides=tuple(model.strides))
        self.train_dataset = DetectionDataset(
            train_set,
            imgsz=imgsz,
            augment=True,
            hyp=augment_config(config),
            cache=config.cache,
            seed=config.seed,
        )
        loader = build_dataloader(
            self.train_dataset,
            config.batch,
            config.workers,
            shuffle=True,
            seed=config.seed,
            distributed=distributed,
        )
        self.train_loader = _SkipReportingLoader(loader, self.train_dataset)
        self.val_set = val_set
        self.val_dataset = self.val_loader = None
        if val_set is not None and len(val_set):
            self.val_dataset = DetectionDataset(
                val_set, imgsz=imgsz, augment=False, cache="none", seed=config.seed
            )
            self.val_loader = build_dataloader(
                self.val_dataset,
                config.batch,
                min(config.workers, 1),
                shuffle=False,
                seed=config.seed,
            )

    def set_epoch(self, epoch: int) -> None:
        set_loader_epoch(self.train_dataset, self.train_loader, epoch)

    def close_mosaic(self) -> None:
        self.train_dataset.close_mosaic()

    def loss(self, model: nn.Module, batch: dict) -> dict:
        images = batch["images"].to(
            self.device, non_blocking=True, memory_format=torch.channels_last
        )
        raw = model(images)
        return self.loss_fn(raw.float(), batch["targets"].to(self.device), tuple(images.shape[-2:]))

    def evaluate(self, model: nn.Module) -> dict:
        """COCO mAP50-95 / mAP50 and VOC mAP50 on the val split; ``fitness`` = mAP50-95."""
        if self.val_loader is None:
            return {}
        c = self.config
        indices, detections = run_inference(
            model, self.val_loader, self.device, c.conf, c.iou, c.max_det
        )
        report_new_skips(self.val_dataset, "val")
        coco = coco_evaluate(ground_truth_for(self.val_dataset, self.val_set, indices), detections)
        return {"mAP50-95": coco["mAP50-95"], "mAP50": coco["mAP50"], "fitness": coco["mAP50-95"]}

    def checkpoint_meta(self) -> dict:
        return {
            "model_name": self.model_name,
            "num_classes": len(self.class_names),
            "class_names": self.class_names,
            "imgsz": self.imgsz,
            "task": self.name,
        }

    def model_for_graph(self) -> nn.Module:
        return self.model
