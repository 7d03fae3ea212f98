"""Model -> decode -> NMS -> detections in original image pixels, shared by val, predict and demo."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgevision.data.records import RecordSet
from edgevision.models.decode import decode, postprocess
from edgevision.ops import unletterbox_boxes


@torch.no_grad()
def predict_batch(
    model: nn.Module, images: torch.Tensor, conf: float, iou: float, max_det: int
) -> list[dict]:
    """Detections per image in *input* pixels: dicts of ``boxes (K,4)``, ``scores``, ``classes``."""
    raw = model(images)
    boxes, scores = decode(raw.float(), model.strides, tuple(images.shape[-2:]))
    return postprocess(boxes, scores, conf=conf, iou=iou, max_det=max_det)


def to_original(detections: dict, meta: dict) -> dict:
    """One image's detections mapped from letterboxed input pixels to the original image (numpy)."""
    boxes = unletterbox_boxes(
        detections["boxes"].float().cpu(), meta["ratio"], meta["pad"], meta["orig_hw"]
    )
    return {
        "boxes": boxes.numpy().astype(np.float32),
        "scores": detections["scores"].float().cpu().numpy(),
        "classes": detections["classes"].cpu().numpy().astype(np.int64),
    }


@torch.no_grad()
def run_inference(
    model: nn.Module,
    loader,
    device: torch.device,
    conf: float = 0.001,
    iou: float = 0.6,
    max_det: int = 300,
) -> tuple[list[int], list[dict]]:
    """Detections, in original pixels, for every image the (unshuffled) loader serves.

    Returns:
        (dataset indices that were really evaluated, their detections). An unreadable image is
        replaced by the dataset with another one; that position is left out rather than counted
        twice, so evaluation must use the ground truth of the returned indices only.
    """
    was_training = model.training
    model.eval()
    indices, results, position = [], [], 0
    for batch in loader:
        images = batch["images"].to(device, non_blocking=True, memory_format=torch.channels_last)
        for dets, meta in zip(
            predict_batch(model, images, conf, iou, max_det), batch["meta"], strict=True
        ):
            if meta.get("index", position) == position:
                indices.append(position)
                results.append(to_original(dets, meta))
            position += 1
    model.train(was_training)
    return indices, results


def ground_truth_for(dataset, source: RecordSet, indices: list[int]) -> RecordSet:
    """The *unsanitized* records (crowd regions, difficult flags intact) of the evaluated images.

    The dataset serves sanitized copies (clipped, crowd dropped) in its own order; evaluation must
    score against the annotations as written, as pycocotools would.
    """
    by_path = {record.image_path: record for record in source.records}
    served = dataset.record_set.records
    return source.with_records([by_path[served[i].image_path] for i in indices])
