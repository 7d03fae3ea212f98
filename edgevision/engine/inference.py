"""Model -> decode -> NMS -> detections in original image pixels, shared by val, predict and demo."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..models.decode import decode, postprocess
from ..ops import unletterbox_boxes


@torch.no_grad()
def predict_batch(model: nn.Module, images: torch.Tensor, conf: float, iou: float,
                  max_det: int) -> list[dict]:
    """Detections per image in *input* pixels: dicts of ``boxes (K,4)``, ``scores``, ``classes``."""
    raw = model(images)
    boxes, scores = decode(raw.float(), model.strides, tuple(images.shape[-2:]))
    return postprocess(boxes, scores, conf=conf, iou=iou, max_det=max_det)


def to_original(detections: dict, meta: dict) -> dict:
    """One image's detections mapped from letterboxed input pixels to the original image (numpy)."""
    boxes = unletterbox_boxes(detections["boxes"].float().cpu(), meta["ratio"], meta["pad"], meta["orig_hw"])
    return {
        "boxes": boxes.numpy().astype(np.float32),
        "scores": detections["scores"].float().cpu().numpy(),
        "classes": detections["classes"].cpu().numpy().astype(np.int64),
    }


@torch.no_grad()
def run_inference(model: nn.Module, loader, device: torch.device, conf: float = 0.001,
                  iou: float = 0.6, max_det: int = 300) -> list[dict]:
    """Detections for every image the loader yields, in loader order, in original pixels."""
    was_training = model.training
    model.eval()
    results = []
    for batch in loader:
        images = batch["images"].to(device, non_blocking=True)
        for dets, meta in zip(predict_batch(model, images, conf, iou, max_det), batch["meta"], strict=True):
            results.append(to_original(dets, meta))
    model.train(was_training)
    return results
