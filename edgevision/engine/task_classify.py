"""The classification task for the shared trainer, its builder, transfer learning and ``val``.

The trainer calls the same members as on :class:`~edgevision.engine.task_detect.DetectionTask`:
``model``, ``train_loader``, ``val_loader``, ``loss``, ``evaluate``, ``set_epoch``,
``close_mosaic``, ``checkpoint_meta``, ``head_prefixes``, ``head_lr_mult``, ``model_for_graph``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edgevision.config import TrainConfig
from edgevision.data.classify import ClassificationSet, load_classification
from edgevision.data.classify_dataset import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ClassificationDataset,
    ClassifyAugment,
    build_classification_loader,
    normalize_images,
)
from edgevision.data.issues import Issue
from edgevision.data.loader import set_loader_epoch
from edgevision.engine import dist
from edgevision.engine.checkpoint import LoadReport, load_checkpoint, load_matching, state_dict_from
from edgevision.engine.classify_predict import load_classifier
from edgevision.engine.trainer import prepare_run_dir
from edgevision.errors import CheckpointError, ConfigError, DataError, UnknownModelError
from edgevision.eval.classify import (
    classification_metrics,
    format_classification_report,
    topk_accuracy,
)
from edgevision.fileio import atomic_write_text
from edgevision.models.classifier_zoo import (
    build_classifier,
    default_classifier_imgsz,
    head_module_name,
    head_prefixes,
)

DEFAULT_CLASSIFIER = "cls-shufflenetv2-x1.0"  # used when --model was left at the detection default
_KEY_PREFIXES = ("", "module.", "backbone.", "model.")  # DDP, our detectors' backbone, other tools


class ClassificationTask:
    """Classification: cropped images and labels in, cross-entropy out, top-1 / top-5 as metrics.

    Args:
        model: a classifier mapping (B, 3, H, W) normalised images to (B, C) logits.
        model_name: its zoo name (stored in checkpoints).
        train_set, val_set: the splits (``val_set`` None or empty: no validation).
        config: the run's settings (batch, workers, seed, cache, augmentation, head_lr_mult).
        imgsz: square input size.
        label_smoothing: cross-entropy label smoothing (0 = off; 0.1 is the common choice).
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
        label_smoothing: float = 0.0,
    ):
        self.model, self.model_name, self.config = model, model_name, config
        self.imgsz, self.device = imgsz, device
        self.class_names = list(train_set.class_names)
        self.head_prefixes = head_prefixes(model)
        self.head_lr_mult = config.head_lr_mult
        self.label_smoothing = label_smoothing
        hyp = ClassifyAugment.from_train_config(config)
        self.train_dataset = ClassificationDataset(
            train_set, imgsz, True, hyp, config.cache, config.seed
        )
        self.train_loader = build_classification_loader(
            self.train_dataset,
            config.batch,
            config.workers,
            shuffle=True,
            seed=config.seed,
            distributed=distributed,
        )
        self.val_loader = None
        if val_set is not None and len(val_set):
            val_dataset = ClassificationDataset(
                val_set, imgsz, False, None, config.cache, config.seed
            )
            self.val_loader = build_classification_loader(
                val_dataset, config.batch, min(config.workers, 1), shuffle=False, seed=config.seed
            )

    def set_epoch(self, epoch: int) -> None:
        set_loader_epoch(self.train_dataset, self.train_loader, epoch)

    def close_mosaic(self) -> None:
        """Nothing to do: classification has no mosaic."""

    def loss(self, model: nn.Module, batch: dict) -> dict:
        """``loss`` (cross-entropy, label-smoothed when set), ``ce`` and ``acc`` (batch top-1)."""
        images = normalize_images(batch["images"].to(self.device, non_blocking=True))
        images = images.contiguous(memory_format=torch.channels_last)  # the trainer's model layout
        labels = batch["labels"].to(self.device)
        logits = model(images).float()
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        accuracy = (logits.detach().argmax(1) == labels).float().mean()
        return {"loss": loss, "ce": loss.detach(), "acc": accuracy}

    def evaluate(self, model: nn.Module) -> dict:
        """``top1``, ``top5``, ``val_loss`` (plain cross-entropy) on the val split; fitness = top-1."""
        if self.val_loader is None:
            return {}
        logits, labels, _ = predict_loader(model, self.val_loader, self.device)
        accuracy = topk_accuracy(logits, labels, (1, 5))
        val_loss = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)))
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


@torch.no_grad()
def predict_loader(
    model: nn.Module, loader, device: torch.device
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Logits (N, C) float32, labels (N,) int64 and paths of every sample, in loader order.

    The model runs in eval mode (BN running statistics, no dropout) and gets its mode back.
    """
    was_training = model.training
    model.eval()
    logits, labels, paths = [], [], []
    try:
        for batch in loader:
            images = normalize_images(batch["images"].to(device, non_blocking=True))
            logits.append(model(images).float().cpu())
            labels.append(batch["labels"])
            paths += batch["paths"]
    finally:
        model.train(was_training)
    return torch.cat(logits).numpy(), torch.cat(labels).numpy(), paths


# -- transfer learning ---------------------------------------------------------------------------


def load_pretrained(model: nn.Module, weights: str | Path) -> LoadReport:
    """Load every tensor of ``weights`` whose name and shape match (torchvision ``.pth``, our
    checkpoints, a detector's ``backbone.*``); a classifier layer of another class count is
    skipped and keeps its fresh initialisation, which is how the head gets replaced.

    Raises:
        CheckpointError: the file is unreadable or not a single tensor matches (a file for another
            architecture: training from scratch by accident would waste the run).
    """
    weights_dict = state_dict_from(load_checkpoint(weights))
    own = model.state_dict()

    def hits(prefix: str) -> int:
        return sum(k.startswith(prefix) and k[len(prefix) :] in own for k in weights_dict)

    prefix = max(_KEY_PREFIXES, key=hits)  # first of equals wins: "" before any stripping
    report = load_matching(model, weights_dict, strip_prefix=prefix)
    if not report.loaded:
        raise CheckpointError(
            f"{weights}: no tensor matches {type(model).__name__} by name and shape "
            f"(first keys: {list(weights_dict)[:3]}); is it for another architecture?"
        )
    return report


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


def freeze_classifier(model: nn.Module, freeze: str) -> int:
    """Stop gradients for ``"backbone"`` (everything but the classifier head) or the first N
    layers of :func:`feature_modules`. BN running statistics still adapt to the new data.

    Returns:
        How many parameter tensors were frozen.

    Raises:
        ConfigError: ``freeze`` is neither "", "backbone" nor a non-negative integer.
    """
    if not freeze:
        return 0
    if freeze == "backbone":
        prefix = head_prefixes(model)
        params = [p for name, p in model.named_parameters() if not name.startswith(prefix)]
    elif freeze.isdigit():
        params = [
            p for module in feature_modules(model)[: int(freeze)] for p in module.parameters()
        ]
    else:
        raise ConfigError(f"--freeze {freeze!r}: use 'backbone' or a number of leading layers")
    for param in params:
        param.requires_grad_(False)
    return len(params)


# -- building a run ------------------------------------------------------------------------------


def resolve_model_name(name: str) -> str:
    """The classifier to build: ``name``, or :data:`DEFAULT_CLASSIFIER` when ``name`` is still the
    detection default of ``TrainConfig``.

    Raises:
        UnknownModelError: a detection model or an unknown name (close matches listed).
    """
    if name == TrainConfig().model:
        return DEFAULT_CLASSIFIER
    try:
        default_classifier_imgsz(name)  # the zoo lookup: raises with close matches
    except UnknownModelError as e:
        raise UnknownModelError(f"--task classify: {e}") from e
    return name


def _report_issues(issues: list[Issue], label: str, limit: int = 5) -> None:
    if issues and dist.is_main():
        print(
            f"{label}: {len(issues)} entries skipped; run `edgevision data check` for the full list"
        )
        for issue in issues[:limit]:
            print(f"  {issue}")


def build_classification_task(
    config: TrainConfig, device: torch.device, distributed: bool = False
) -> ClassificationTask:
    """Everything ``train --task classify`` needs: data from ``config.data``, the zoo model with
    the data's class count, ``--weights`` (shape-matched), ``--freeze``, the task.

    Raises:
        DataError: unreadable dataset or an empty training split.
        UnknownModelError: ``config.model`` is not a classifier.
        CheckpointError: ``--weights`` unreadable or not matching the model at all.
    """
    model_name = resolve_model_name(config.model)
    train_set, issues = load_classification(config.data, "train", seed=config.seed)
    _report_issues(issues, "train split")
    if not len(train_set) or train_set.num_classes < 2:
        raise DataError(
            config.data,
            f"{len(train_set)} training images in {train_set.num_classes} classes",
            "a classifier needs images of at least 2 classes; run edgevision data check",
        )
    val_set, val_issues = load_classification(
        config.data, "val", train_set.class_names, seed=config.seed
    )
    _report_issues(val_issues, "val split")
    model = build_classifier(model_name, train_set.num_classes)
    if config.weights and not config.resume:
        report = load_pretrained(model, config.weights)
        if dist.is_main():
            print(describe_load(config.weights, report, model))
    frozen = freeze_classifier(model, config.freeze)
    imgsz = config.imgsz or default_classifier_imgsz(model_name)
    if dist.is_main():
        print(
            f"{model_name}: train {len(train_set)} images, val {len(val_set)}, classes {train_set.class_names}"
            + (f"; {frozen} tensors frozen ({config.freeze})" if frozen else "")
        )
    smoothing = getattr(config, "label_smoothing", 0.0)  # a TrainConfig field once the lead adds it
    return ClassificationTask(
        model, model_name, train_set, val_set, config, imgsz, device, distributed, smoothing
    )


def evaluate_classifier(
    weights: str | Path,
    data: str | Path,
    split: str = "val",
    batch: int = 32,
    imgsz: int = 0,
    device: torch.device | str = "cpu",
    workers: int = 2,
    project: str = "runs/val",
    name: str = "exp",
    exist_ok: bool = False,
    plots: bool = True,
    seed: int | None = None,
) -> dict:
    """``val`` for a classifier: top-1 / top-5, per-class precision / recall, confusion matrix PNG.

    Args:
        seed: the hold-out seed for data without a val split; None = the training run's seed, so
            the images scored are the ones the run held out.

    Returns:
        ``metrics`` (top1, top5, per-class precision / recall dicts), ``text`` and ``run_dir``.
    """
    model, meta, config = load_classifier(weights)
    seed = config.get("seed", 0) if seed is None else seed
    data_set, issues = load_classification(data, split, meta["class_names"], seed=seed)
    _report_issues(issues, f"{split} split")
    dataset = ClassificationDataset(data_set, imgsz or meta["imgsz"], augment=False)
    loader = build_classification_loader(dataset, batch, workers, shuffle=False)
    device = torch.device(device)
    logits, labels, _ = predict_loader(model.to(device), loader, device)
    result = classification_metrics(logits, labels, meta["class_names"])
    text = format_classification_report(result, meta["class_names"])
    run_dir = prepare_run_dir(project, name, exist_ok)
    summary = _metrics_summary(result, meta["class_names"])
    atomic_write_text(run_dir / "metrics.json", json.dumps(summary, indent=2))
    atomic_write_text(run_dir / "metrics.txt", text + "\n")
    if plots:
        from edgevision.viz.plots import plot_confusion_matrix

        # The plot takes the detection layout: an all-zero background row / column is appended.
        padded = np.pad(result["matrix"], ((0, 1), (0, 1)))
        plot_confusion_matrix(padded, meta["class_names"], run_dir / "confusion_matrix.png")
    return {"metrics": summary, "text": text, "run_dir": str(run_dir)}


def _metrics_summary(result: dict, class_names: list[str]) -> dict:
    """JSON-ready metrics: NaN (undefined precision / recall) becomes None."""

    def clean(value: float) -> float | None:
        return None if math.isnan(value) else float(value)

    return {
        "top1": result["top1"],
        "top5": result["top5"],
        "precision": {n: clean(v) for n, v in zip(class_names, result["precision"], strict=True)},
        "recall": {n: clean(v) for n, v in zip(class_names, result["recall"], strict=True)},
        "images": int(np.sum(result["support"])),
    }
