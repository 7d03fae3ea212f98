"""Training a detector: the task the trainer runs, and the builder that makes it from a config."""

from __future__ import annotations

from dataclasses import fields
from functools import cached_property
from pathlib import Path

import torch
from torch import nn

from edgevision.analysis.report import write_run_report
from edgevision.config import TrainConfig
from edgevision.core import issues as kinds
from edgevision.core.errors import ConfigError
from edgevision.core.issues import Issue, summarize_issues
from edgevision.core.records import RecordSet
from edgevision.data.datasets.detect import AugmentConfig, DetectionDataset
from edgevision.data.datasets.loader import build_dataloader, set_loader_epoch, training_workers
from edgevision.data.formats import list_splits, load_dataset
from edgevision.engine import dist
from edgevision.engine.checkpoint import load_pretrained
from edgevision.engine.optim import freeze
from edgevision.eval.coco import coco_evaluate
from edgevision.losses.for_head import detection_loss
from edgevision.models.zoo import build_model, default_imgsz
from edgevision.tasks.base import ValOptions
from edgevision.tasks.detect.inference import ground_truth_for, run_inference
from edgevision.tasks.detect.skips import SkipReportingLoader, format_skips, report_new_skips


def augment_config(config: TrainConfig) -> AugmentConfig:
    """The augmentation fields of a train config (same names in both dataclasses)."""
    names = {f.name for f in fields(AugmentConfig)}
    return AugmentConfig(**{k: v for k, v in config.to_dict().items() if k in names})


class DetectionTask:
    """Detection for the trainer: letterboxed images and ``targets`` rows in, the loss of the
    head's family (``losses/for_head.py``: SimOTA + QFL/GIoU for anchor-free heads), COCO mAP out
    (``fitness`` = mAP50-95)."""

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
        self.model, self.model_name, self.config = model, model_name, config
        self.imgsz, self.device = imgsz, device
        self.class_names = list(train_set.class_names)
        self.train_dataset = DetectionDataset(
            train_set,
            imgsz=imgsz,
            augment=True,
            hyp=augment_config(config),
            cache=config.cache,
            seed=config.seed,
        )
        if config.batch < 2 and model.size_divisor < max(model.strides):
            raise ConfigError(
                f"--batch {config.batch}: {model_name}'s coarsest levels are 1x1 cells, where "
                "BatchNorm needs at least 2 images per batch to train; use --batch 2 or more"
            )
        self.workers, self.workers_message = training_workers(config.workers, device)
        loader = build_dataloader(
            self.train_dataset,
            config.batch,
            self.workers,
            shuffle=True,
            seed=config.seed,
            distributed=distributed,
            # A lone image left at the end of an epoch: BatchNorm cannot train on one image's 1x1
            # cells (SSD's coarse levels), and its statistics would be noise for any model.
            drop_last=len(self.train_dataset) % config.batch == 1 and config.batch > 1,
        )
        self.train_loader = SkipReportingLoader(loader, self.train_dataset)
        self.val_set = val_set
        self.val_dataset = self.val_loader = None
        if val_set is not None and len(val_set):
            self.val_dataset = DetectionDataset(
                val_set, imgsz=imgsz, augment=False, cache="none", seed=config.seed
            )
            workers = min(self.workers, 1)
            self.val_loader = build_dataloader(
                self.val_dataset, config.batch, workers, shuffle=False, seed=config.seed
            )

    def on_epoch_start(self, epoch: int, epochs_left: float, progress: float = 0.0) -> None:
        """Reseed the epoch's augmentation; mosaic off for the last ``close_mosaic`` epochs."""
        set_loader_epoch(self.train_dataset, self.train_loader, epoch)
        if epochs_left <= self.config.close_mosaic:
            self.train_dataset.close_mosaic()

    @cached_property
    def loss_fn(self):
        """The head family's loss, built on first use: a pose task wraps this task and brings its
        own loss, so building here would ask for a box-only loss that pose heads do not have."""
        return detection_loss(self.model, self.config.fl_gamma, self.config.fl_alpha)

    def loss(self, model: nn.Module, batch: dict) -> dict:
        images = batch["images"].to(
            self.device, non_blocking=True, memory_format=torch.channels_last
        )
        raw = model(images)
        return self.loss_fn(raw.float(), batch["targets"].to(self.device), tuple(images.shape[-2:]))

    def evaluate(self, model: nn.Module) -> dict:
        """COCO mAP50-95 / mAP50 on the val split; ``fitness`` = mAP50-95."""
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
            **self.model.codec.metadata(),  # head family and strides
        }

    def model_for_graph(self) -> nn.Module:
        return self.model

    def on_train_end(self, run_dir: Path) -> None:
        """``val`` of best.pt into ``run_dir/val`` (every metric, plot and the error breakdown),
        then the run's ``report.html``."""
        from edgevision.tasks.detect.val import validate
        from edgevision.tasks.load import load_model

        if self.val_dataset is not None:
            options = ValOptions(
                imgsz=self.imgsz,
                device=str(self.device),
                workers=self.workers,
                project=str(run_dir),
                name="val",
                exist_ok=True,
            )
            validate(load_model(run_dir / "weights" / "best.pt"), self.config.data, options)
        write_run_report(run_dir)


def build_task(config: TrainConfig, device: torch.device, distributed: bool) -> DetectionTask:
    """Data splits, the zoo model, ``--weights`` (shape-matched) and ``--freeze`` for detection."""
    train_set, val_set, train_issues = load_splits(config)
    return detection_task(config, device, distributed, train_set, val_set, train_issues)


def load_splits(config: TrainConfig) -> tuple[RecordSet, RecordSet | None, list[Issue]]:
    """(train, val or None, the train reader's issues), each summary printed once up front."""
    train_set, train_issues = load_dataset(config.data, split="train")
    _print(summarize_issues(train_issues, "train split"))  # the summary counts reader drops too
    val_set = None
    if "val" in list_splits(config.data):
        val_set, val_issues = load_dataset(config.data, "val", train_set.class_names)
        _print(summarize_issues(val_issues, "val split"))
    else:
        _print(
            [
                f"no val split in {config.data}: training without validation (run `edgevision data split`)"
            ]
        )
    return train_set, val_set, train_issues


def detection_task(
    config: TrainConfig,
    device: torch.device,
    distributed: bool,
    train_set: RecordSet,
    val_set: RecordSet | None,
    train_issues: list[Issue],
    num_keypoints: int | None = None,
) -> DetectionTask:
    """The zoo model (with ``num_keypoints`` for pose models), ``--weights``, ``--freeze``, and
    the detection task around it, with the data summary printed."""
    model = build_model(
        config.model, num_classes=len(train_set.class_names), num_keypoints=num_keypoints
    )
    if config.weights and not config.resume:
        loaded = load_pretrained(model, config.weights)
        _print([f"weights {config.weights}: {loaded.summary()}"])
    freeze(config.freeze, [model.backbone], list(model.children()))
    imgsz = config.imgsz or default_imgsz(config.model)
    if hasattr(model.head, "set_anchors") and not config.resume:  # resume restores its own
        _print([choose_anchors(model.head, config, train_set, imgsz)])
    task = DetectionTask(
        model, config.model, train_set, val_set, config, imgsz, device, distributed
    )
    _print(data_summary(task, train_set, train_issues))
    return task


def choose_anchors(head: nn.Module, config: TrainConfig, train_set: RecordSet, imgsz: int) -> str:
    """Set an anchor-based head's anchors from ``--anchors`` and say what was chosen.

    ``default``: the model's own (the built-in set, or those of ``--weights``); a file: its
    ``w,h`` pairs (``edgevision data anchors --save``); ``auto``: the model's own, checked on the
    training labels at ``imgsz`` and re-clustered when their best possible recall is under 0.98
    (YOLOv5's autoanchor). The anchors trained with are saved in the checkpoint (a buffer of the
    head) and in the ONNX metadata, so val, predict and the runtime decode with the same ones.
    """
    from edgevision.data.autoanchor import anchors_for_training, sizes_for_training

    source = f"the anchors of {config.weights}" if config.weights else "the default anchors"
    anchors, text = anchors_for_training(
        config.anchors,
        head.anchors.detach().cpu().numpy(),
        sizes_for_training(train_set, imgsz),
        source=source,
    )
    head.set_anchors(torch.as_tensor(anchors, dtype=torch.float32))
    return text


def _print(lines: list[str]) -> None:
    if lines and dist.is_main():
        print("\n".join(lines))


def data_summary(task: DetectionTask, train_set: RecordSet, train_issues: list[Issue]) -> list[str]:
    """One summary up front, never per batch: images and objects used out of annotated, and each
    skipped image named once (the first few, then a count). Images found undecodable later are
    named at the end of the epoch that found them (``skips.report_new_skips``)."""
    train, val = task.train_dataset, task.val_dataset
    usage, report = train.usage(), train.sanitize_report
    # Objects the reader left out (unknown class, malformed box) were annotated too.
    by_reader = sum(
        i.object_index is not None and i.kind in (kinds.UNKNOWN_CLASS, kinds.CORRUPT_ANNOTATION)
        for i in train_issues
    )
    dropped = report["zero_area"] + report["degenerate"] + report["crowd"]
    in_skipped = usage["objects_annotated"] - dropped - usage["objects_used"]
    unused = {
        "in skipped images": in_skipped,
        "zero area": report["zero_area"],
        "1 px wide or high": report["degenerate"],
        "crowd": report["crowd"],
        "unknown class or malformed": by_reader,
    }
    why = ", ".join(f"{count} {reason}" for reason, count in unused.items() if count)
    skipped = f" ({usage['images_skipped']} skipped)" if usage["images_skipped"] else ""
    val_usage = val.usage() if val is not None else {"images_used": 0, "images_skipped": 0}
    val_skipped = f" ({val_usage['images_skipped']} skipped)" if val_usage["images_skipped"] else ""
    lines = [
        f"train: {usage['images_used']} images used{skipped}, {usage['objects_used']}/"
        f"{usage['objects_annotated'] + by_reader} objects used"
        f"{f' (not used: {why})' if why else ''}; "
        f"val: {val_usage['images_used']} images{val_skipped}; classes: {train_set.class_names}"
    ]
    lines += [train.cache_message, task.workers_message]
    lines += format_skips("train", train.take_unreported_skips())
    lines += format_skips("val", val.take_unreported_skips()) if val is not None else []
    for label, dataset in (("train", train), ("val", val)):
        if dataset is not None and dataset.exif_rotated:
            lines.append(
                f"{label}: EXIF orientation ignored for {len(dataset.exif_rotated)} image(s): "
                "pixels used as stored, like their annotations (`edgevision data check` lists them)"
            )
    return lines
