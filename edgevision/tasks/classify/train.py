"""Training a classifier: the task the trainer runs, transfer learning, and the builder."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional

from edgevision.analysis.report import write_run_report
from edgevision.config import TrainConfig
from edgevision.core.errors import ConfigError, DataError
from edgevision.core.issues import summarize_issues
from edgevision.data.datasets.classify import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ClassificationDataset,
    ClassifyAugment,
    build_classification_loader,
    normalize_images,
)
from edgevision.data.datasets.loader import set_loader_epoch, training_workers
from edgevision.data.formats.imagefolder import ClassificationSet, load_classification
from edgevision.engine import dist
from edgevision.engine.checkpoint import LoadReport, load_pretrained
from edgevision.engine.optim import freeze
from edgevision.eval.classify import topk_accuracy
from edgevision.models.classifier import head_module_name, head_prefixes
from edgevision.models.zoo import build_model, default_imgsz
from edgevision.tasks.base import ValOptions
from edgevision.tasks.classify.inference import predict_loader
from edgevision.tasks.classify.val import validate
from edgevision.tasks.load import load_model

FULL_SIZE_AT = 0.7  # share of the run after which a classifier trains at --imgsz
SIZE_STEP = 16  # training sides are multiples of this
# Never train smaller: the zoo's classifiers reduce by 32, so their last map would be under 2x2.
MIN_SIDE = 64


def progressive_size(imgsz: int, progress: float, start: float) -> int:
    """Training side at ``progress`` (share of the run done): ``start * imgsz`` at first, growing
    linearly to ``imgsz`` by :data:`FULL_SIZE_AT` of the run, rounded down to a multiple of
    :data:`SIZE_STEP` and never under :data:`MIN_SIDE` (so ``imgsz <= 64`` trains at ``imgsz``);
    ``imgsz`` from there on and whenever ``start >= 1``.

    Off by default (``--prog-resize 1``): on the photo benchmark set at ``--imgsz 128 --time 5``
    it ran 85 epochs instead of 58 but reached the same top-1 (0.727 vs 0.733, one run each;
    benchmarks/RESULTS.md). The last 30 % train at ``imgsz`` because the size a model is tested
    at should be the size it last trained at: a model trained at 96 px lost 0.06 top-1 at 128 px.
    """
    if start >= 1 or progress >= FULL_SIZE_AT:
        return imgsz
    share = start + (1 - start) * max(progress, 0.0) / FULL_SIZE_AT
    return min(max(int(share * imgsz) // SIZE_STEP * SIZE_STEP, MIN_SIDE), imgsz)


class ClassificationTask:
    """Classification for the trainer: cropped images and labels in, cross-entropy out, top-1 /
    top-5 as metrics (``fitness`` = top-1).

    Args:
        model: a classifier mapping (B, 3, H, W) normalised images to (B, C) logits.
        model_name: its zoo name (stored in checkpoints).
        train_set, val_set: the splits (``val_set`` None or empty: no validation).
        config: the run's settings (batch, workers, seed, cache, augmentation, head_lr_mult,
            label_smoothing, prog_resize).
        imgsz: square input size.
    """

    name = "classify"

    def __init__(
        self,
        model: nn.Module,
        model_name: str,
        train_set: ClassificationSet,
        val_set: ClassificationSet | None,
        config: TrainConfig,
        imgsz: int,
        device: torch.device,
        distributed: bool = False,
    ):
        self.model, self.model_name, self.config = model, model_name, config
        self.imgsz, self.device = imgsz, device
        self.class_names = list(train_set.class_names)
        self.head_prefixes = head_prefixes(model)
        self.head_lr_mult = config.head_lr_mult
        hyp = ClassifyAugment.from_train_config(config)
        self.train_dataset = ClassificationDataset(
            train_set, imgsz, True, hyp, config.cache, config.seed
        )
        self.workers, self.workers_message = training_workers(config.workers, device)
        self.train_loader = build_classification_loader(
            self.train_dataset,
            config.batch,
            self.workers,
            shuffle=True,
            seed=config.seed,
            distributed=distributed,
        )
        self.val_loader = None
        if val_set is not None and len(val_set):
            val_dataset = ClassificationDataset(val_set, imgsz, False, None, "none", config.seed)
            workers = min(self.workers, 1)
            self.val_loader = build_classification_loader(
                val_dataset, config.batch, workers, shuffle=False, seed=config.seed
            )

    def on_epoch_start(self, epoch: int, epochs_left: float, progress: float = 0.0) -> None:
        """Reseed the epoch's augmentation; set the epoch's training size (progressive resizing)."""
        set_loader_epoch(self.train_dataset, self.train_loader, epoch)
        self.train_dataset.set_size(progressive_size(self.imgsz, progress, self.config.prog_resize))

    def loss(self, model: nn.Module, batch: dict) -> dict:
        """``loss`` (cross-entropy, label-smoothed when set), ``ce`` and ``acc`` (batch top-1)."""
        images = normalize_images(batch["images"].to(self.device, non_blocking=True))
        images = images.contiguous(memory_format=torch.channels_last)  # the trainer's model layout
        labels = batch["labels"].to(self.device)
        logits = model(images).float()
        loss = functional.cross_entropy(logits, labels, label_smoothing=self.config.label_smoothing)
        accuracy = (logits.detach().argmax(1) == labels).float().mean()
        return {"loss": loss, "ce": loss.detach(), "acc": accuracy}

    def evaluate(self, model: nn.Module) -> dict:
        """``top1``, ``top5``, ``val_loss`` (plain cross-entropy) on the val split; fitness = top-1."""
        if self.val_loader is None:
            return {}
        logits, labels, _ = predict_loader(model, self.val_loader, self.device)
        accuracy = topk_accuracy(logits, labels, (1, 5))
        val_loss = float(
            functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels))
        )
        return {
            "top1": accuracy[1],
            "top5": accuracy[5],
            "val_loss": val_loss,
            "fitness": accuracy[1],
        }

    def checkpoint_meta(self) -> dict:
        return {
            "model_name": self.model_name,
            "num_classes": len(self.class_names),
            "class_names": self.class_names,
            "imgsz": self.imgsz,
            "task": self.name,
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
        }

    def model_for_graph(self) -> nn.Module:
        return self.model

    def on_train_end(self, run_dir: Path) -> None:
        """``val`` of best.pt into ``run_dir/val``: per-class precision / recall and the confusion
        matrix, which the per-epoch top-1 does not show; then the run's ``report.html``."""
        if self.val_loader is None:
            write_run_report(run_dir)
            return

        options = ValOptions(
            device=str(self.device),
            workers=self.workers,
            project=str(run_dir),
            name="val",
            exist_ok=True,
        )
        validate(load_model(run_dir / "weights" / "best.pt"), self.config.data, options)
        write_run_report(run_dir)


# -- transfer learning ---------------------------------------------------------------------------


def describe_load(weights: str | Path, report: LoadReport, model: nn.Module) -> str:
    """One line for the log: counts, and which keys were skipped or missing (the first few)."""
    text = f"weights {weights}: {report.summary()}"
    for label, keys in (("skipped", report.skipped), ("missing", report.missing)):
        if keys:
            text += f"; {label}: {', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}"
    head = head_module_name(model)
    if any(key.startswith(head + ".") for key in report.skipped + report.missing):
        num_classes = model.state_dict()[head + ".weight"].shape[0]
        text += f" (classifier {head} initialised for {num_classes} classes)"
    return text


def feature_modules(model: nn.Module) -> list[nn.Module]:
    """The network's layers in input order, excluding the classifier head: ``features.0``,
    ``features.1``, ... for MobileNetV2, else the top-level children (``conv1``, ``maxpool``,
    ``stage2``, ... / ``conv1``, ``bn1``, ..., ``layer4``)."""
    head = head_module_name(model).split(".")[0]
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential):
        return list(features)
    return [module for name, module in model.named_children() if name != head]


def freeze_classifier(model: nn.Module, spec: str) -> int:
    """``--freeze backbone`` (everything but the classifier head) or ``N`` (the first N layers of
    :func:`feature_modules`); returns how many parameter tensors were frozen."""
    head = head_module_name(model).split(".")[0]
    backbone = [module for name, module in model.named_children() if name != head]
    return freeze(spec, backbone, feature_modules(model))


# -- building a run ------------------------------------------------------------------------------


def build_task(
    config: TrainConfig, device: torch.device, distributed: bool = False
) -> ClassificationTask:
    """Everything ``train`` needs for a classifier: data from ``config.data``, the zoo model with
    the data's class count, ``--weights`` (shape-matched), ``--freeze``, the task.

    Raises:
        DataError: unreadable dataset or an empty training split.
        CheckpointError: ``--weights`` unreadable or not matching the model at all.
    """
    train_set, issues = load_classification(config.data, "train", seed=config.seed)
    _print(summarize_issues(issues, "train split"))
    if not len(train_set) or train_set.num_classes < 2:
        raise DataError(
            config.data,
            f"{len(train_set)} training images in {train_set.num_classes} classes",
            "a classifier needs images of at least 2 classes; run edgevision data check",
        )
    val_set, val_issues = load_classification(
        config.data, "val", train_set.class_names, seed=config.seed
    )
    _print(summarize_issues(val_issues, "val split"))
    model = build_model(config.model, train_set.num_classes)
    if config.weights and not config.resume:
        report = load_pretrained(model, config.weights)
        _print([describe_load(config.weights, report, model)])
    frozen = freeze_classifier(model, config.freeze)
    imgsz = config.imgsz or default_imgsz(config.model)
    if not 0 < config.prog_resize <= 1:
        raise ConfigError(
            f"--prog-resize {config.prog_resize:g}: use a share of --imgsz in (0, 1]; 1 = off"
        )
    _print(
        [
            f"{config.model}: train {len(train_set)} images, val {len(val_set)}, classes "
            f"{train_set.class_names}"
            + (f"; {frozen} tensors frozen ({config.freeze})" if frozen else ""),
            _describe_sizes(imgsz, config.prog_resize),
        ]
    )
    task = ClassificationTask(
        model, config.model, train_set, val_set, config, imgsz, device, distributed
    )
    _print([task.workers_message])
    return task


def _describe_sizes(imgsz: int, start: float) -> str:
    """The run's training sizes for the log."""
    first = progressive_size(imgsz, 0.0, start)
    if first == imgsz:
        return f"training size {imgsz} px throughout"
    return (
        f"progressive resizing: training at {first} px, growing to {imgsz} px by "
        f"{FULL_SIZE_AT:.0%} of the run (--prog-resize {start:g}; 1 = off); validation at "
        f"{imgsz} px"
    )


def _print(lines: list[str]) -> None:
    if lines and dist.is_main():
        print("\n".join(lines))
