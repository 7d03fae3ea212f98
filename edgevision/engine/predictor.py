"""Predicting on images and videos with a PyTorch model (the ONNX path lives in runtime/)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from edgevision.data.imageio import read_image
from edgevision.data.letterbox import letterbox
from edgevision.engine.inference import predict_batch, to_original
from edgevision.results import Detections
from edgevision.runtime.video import VIDEO_SUFFIXES, predict_video
from edgevision.viz.draw import draw_detections


class Predictor:
    """Letterbox -> model -> decode -> NMS -> original pixels, for RGB images of any size."""

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
        tensors, metas = [], []
        for image in images:
            boxed, ratio, pad = letterbox(image, self.imgsz)
            tensors.append(torch.from_numpy(np.ascontiguousarray(boxed.transpose(2, 0, 1))))
            metas.append({"ratio": ratio, "pad": pad, "orig_hw": image.shape[:2]})
        batch = torch.stack(tensors).to(self.device).float().div_(255)
        raw = predict_batch(self.model, batch, self.conf, self.iou, self.max_det)
        results = []
        for dets, meta, name in zip(raw, metas, names, strict=True):
            d = to_original(dets, meta)
            results.append(
                Detections(
                    d["boxes"],
                    d["scores"],
                    d["classes"],
                    self.class_names,
                    name,
                    tuple(meta["orig_hw"]),
                )
            )
        return results

    def predict_file(self, path: Path, save_dir: Path | None = None) -> list[Detections]:
        """One image, or every frame of a video; annotated copies go to ``save_dir`` when given."""
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return self._predict_video(path, save_dir)
        image = read_image(path)
        result = self.predict_images([image], [str(path)])[0]
        if save_dir is not None:
            drawn = draw_detections(
                image, result.boxes, result.classes, result.scores, self.class_names
            )
            # In place: on an 8000x6000 photo each extra copy is 144 MB.
            cv2.imwrite(
                str(save_dir / f"{path.stem}.jpg"),
                cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR, dst=drawn),
            )
        return [result]

    def _predict_video(self, path: Path, save_dir: Path | None) -> list[Detections]:
        return predict_video(
            path, lambda rgb, name: self.predict_images([rgb], [name])[0], save_dir
        )
