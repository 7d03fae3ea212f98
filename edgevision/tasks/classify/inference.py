"""PyTorch classification inference: images -> centre crop -> model -> softmax -> top-k."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgevision.core.image import center_crop_view
from edgevision.core.results import Classifications
from edgevision.data.datasets.classify import normalize_images


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


class ClassifierPredictor:
    """Centre crop (the val transform) -> model -> softmax -> top-k, for RGB images of any size.

    Images get the view the model was validated with (``core.image.center_crop_view``), so a
    prediction of a val image equals what ``val`` scored.
    """

    def __init__(
        self,
        model: nn.Module,
        class_names: list[str],
        imgsz: int,
        device: torch.device | str = "cpu",
        topk: int = 5,
    ):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.class_names = list(class_names)
        self.imgsz = imgsz
        self.topk = max(1, min(topk, len(self.class_names)))

    @torch.no_grad()
    def probabilities(self, images: list[np.ndarray]) -> np.ndarray:
        """(N, C) float32 class probabilities of (H, W, 3) uint8 RGB images."""
        crops = np.stack([center_crop_view(image, self.imgsz) for image in images])
        batch = torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2)))
        logits = self.model(normalize_images(batch.to(self.device))).float()
        return torch.softmax(logits, dim=1).cpu().numpy()

    def predict_images(self, images: list[np.ndarray], names: list[str]) -> list[Classifications]:
        """Top-k predictions for a batch of images; ``names`` label the results."""
        rows = self.probabilities(images)
        return [
            Classifications.top(name, row, self.class_names, self.topk)
            for name, row in zip(names, rows, strict=True)
        ]
