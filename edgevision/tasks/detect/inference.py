"""PyTorch detection inference: model -> codec decode -> NMS -> detections in original pixels.
Shared by training-time validation, ``val``, ``predict`` and the export parity check."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgevision.core.image import detections_to_original, letterbox, to_input
from edgevision.core.records import RecordSet
from edgevision.core.results import Detections
from edgevision.data.datasets.detect import DetectionDataset
from edgevision.data.datasets.loader import build_dataloader
from edgevision.ops.nms import postprocess
from edgevision.tasks.detect.skips import report_new_skips


@torch.no_grad()
def predict_batch(
    model: nn.Module, images: torch.Tensor, conf: float, iou: float, max_det: int
) -> list[dict]:
    """Detections per image in *input* pixels: dicts of ``boxes (K,4)``, ``scores``, ``classes``
    and, for a model with keypoints, ``keypoints (K, P, 3)`` decoded at the kept points only."""
    raw, hw = model(images), tuple(images.shape[-2:])
    boxes, scores = model.codec.decode(raw, hw)
    found = postprocess(boxes, scores, conf=conf, iou=iou, max_det=max_det)
    if getattr(model, "num_keypoints", 0):
        keypoints = model.codec.decode_keypoints(raw, hw)
        for image_keypoints, dets in zip(keypoints, found, strict=True):
            dets["keypoints"] = image_keypoints[dets["index"]]
    return found


def to_original(detections: dict, meta: dict) -> dict:
    """One image's detections mapped from letterboxed input pixels to the original image (numpy)."""
    found = {
        "boxes": detections["boxes"].float().cpu().numpy(),
        "scores": detections["scores"].float().cpu().numpy(),
        "classes": detections["classes"].cpu().numpy().astype(np.int64),
    }
    if "keypoints" in detections:
        found["keypoints"] = detections["keypoints"].float().cpu().numpy()
    return detections_to_original(found, meta["ratio"], meta["pad"], meta["orig_hw"])


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
        found = predict_batch(model, images, conf, iou, max_det)
        for dets, meta in zip(found, batch["meta"], strict=True):
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


def infer_record_set(
    model: nn.Module,
    record_set: RecordSet,
    imgsz: int,
    batch: int,
    conf: float,
    iou: float,
    max_det: int,
    device: torch.device,
    workers: int = 2,
) -> tuple[RecordSet, list[dict]]:
    """Detections for every usable image of ``record_set`` through the validation loader.

    Returns:
        (the ground truth of the images evaluated, their detections in original pixels).
    """
    dataset = DetectionDataset(record_set, imgsz=imgsz, augment=False, cache="none", seed=0)
    report_new_skips(dataset, "val")  # unusable images named once, before and after inference
    loader = build_dataloader(dataset, batch, workers, shuffle=False, seed=0)
    indices, detections = run_inference(model.to(device), loader, device, conf, iou, max_det)
    report_new_skips(dataset, "val")
    return ground_truth_for(dataset, record_set, indices), detections


class DetectionPredictor:
    """Letterbox -> model -> decode -> NMS -> original pixels, for RGB images of any size.

    Args:
        model: a detector (any module with a ``codec``).
        class_names: the model's classes.
        imgsz: square input size.
        device: where the model runs.
        conf, iou, max_det: as ``edgevision predict``.
    """

    def __init__(
        self,
        model: nn.Module,
        class_names: list[str],
        imgsz: int,
        device: torch.device,
        conf: float = 0.25,
        iou: float = 0.45,
        max_det: int = 300,
    ):
        self.model = model.to(device).eval()
        self.class_names = class_names
        self.imgsz = imgsz
        self.device = device
        self.conf, self.iou, self.max_det = conf, iou, max_det

    def predict_images(self, images: list[np.ndarray], names: list[str]) -> list[Detections]:
        """Detections for a batch of (H, W, 3) uint8 RGB images."""
        boxed, metas = [], []
        for image in images:
            view, ratio, pad = letterbox(image, self.imgsz)
            boxed.append(view)
            metas.append({"ratio": ratio, "pad": pad, "orig_hw": image.shape[:2]})
        batch = torch.from_numpy(to_input(boxed)).to(self.device)  # the runtime's conversion
        raw = predict_batch(self.model, batch, self.conf, self.iou, self.max_det)
        results = []
        for dets, meta, name in zip(raw, metas, names, strict=True):
            d = to_original(dets, meta)
            hw = tuple(meta["orig_hw"])
            results.append(
                Detections(
                    d["boxes"],
                    d["scores"],
                    d["classes"],
                    self.class_names,
                    name,
                    hw,
                    keypoints=d.get("keypoints"),
                )
            )
        return results
