"""The anchor-based YOLO loss (YOLOv5's ``ComputeLoss``): CIoU boxes, IoU-targeted objectness and
BCE classes on the positives of the shape-ratio matcher (``assign/shape_match.py``).

Weights, YOLOv5's hyper-parameters (``hyp.scratch-low``) and its scaling rules:

- ``box_weight`` 0.05, x ``3 / L`` (L levels): the CIoU term is a mean over positives per level,
  summed over levels, so fewer levels would otherwise weigh it less.
- ``cls_weight`` 0.5, x ``C / 80 x 3 / L``: the class BCE is a mean over positives x C, so its
  size shrinks as 1 / C; the factor gives every class count COCO's balance.
- ``obj_weight`` 1.0, x ``(H x W) / 640**2 x 3 / L``: the objectness BCE is a mean over every
  cell, and more cells for the same objects means a smaller mean. The input size is taken from
  each call (``input_hw``), so multi-scale batches are weighed alike.
- ``balance`` per level of the objectness, (4.0, 1.0) for two levels, (4.0, 1.0, 0.4) for
  three: the fine level has 4x the cells and mostly negatives, so its mean is small.
- ``loss_scale`` 64: YOLOv5 multiplies its loss by the batch size and sums gradients over the
  accumulation steps of a 64-image nominal batch; this trainer *averages* them, so the same
  gradient size at YOLOv5's learning rate needs the per-image mean x 64.

Objectness learns the detached CIoU of its positive's prediction (clamped at 0): scores then rank
boxes by expected quality, as the quality focal loss does in the anchor-free family. Where several
targets share an (image, anchor, cell), the objectness target is the largest of their CIoUs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional

from edgevision.assign.shape_match import LevelMatch, shape_match
from edgevision.losses.targets import check_targets
from edgevision.models.codecs.anchor_based import AnchorCodec, decode_offsets
from edgevision.ops.boxes import cxcywh_to_xyxy
from edgevision.ops.iou import elementwise_iou

# Objectness weight per level, finest first (YOLOv5's ``balance``); other counts need their own.
BALANCE = {1: (1.0,), 2: (4.0, 1.0), 3: (4.0, 1.0, 0.4)}
# What YOLOv5's weights were tuned at: three levels, COCO's 80 classes, 640 x 640 inputs.
REFERENCE_LEVELS, REFERENCE_CLASSES, REFERENCE_SIZE = 3, 80, 640
NOMINAL_BATCH = 64.0


class AnchorLoss:
    """Loss of the anchor-based head; weights as in the module docstring.

    Args:
        num_classes: number of object classes C.
        codec: the head's :class:`AnchorCodec` (``detector.codec``): strides, anchors, grid.
        box_weight, obj_weight, cls_weight: YOLOv5's term weights before scaling.
        anchor_t: shape-ratio bound of the matcher.
        balance: objectness weight per level; :data:`BALANCE` for the level count when None.
        loss_scale: multiplies every term (YOLOv5's nominal batch, see the module docstring).
    """

    def __init__(
        self,
        num_classes: int,
        codec: AnchorCodec,
        box_weight: float = 0.05,
        obj_weight: float = 1.0,
        cls_weight: float = 0.5,
        anchor_t: float = 4.0,
        balance: Sequence[float] | None = None,
        loss_scale: float = NOMINAL_BATCH,
    ) -> None:
        levels = len(codec.strides)
        if balance is None and levels not in BALANCE:
            raise ValueError(f"no default objectness balance for {levels} levels; pass balance=")
        self.balance = tuple(balance if balance is not None else BALANCE[levels])
        if len(self.balance) != levels:
            raise ValueError(
                f"balance {self.balance} has {len(self.balance)} values for {levels} levels"
            )
        self.num_classes, self.codec, self.anchor_t = num_classes, codec, anchor_t
        level_factor = REFERENCE_LEVELS / levels
        self.box_weight = box_weight * level_factor * loss_scale
        self.cls_weight = cls_weight * num_classes / REFERENCE_CLASSES * level_factor * loss_scale
        self.obj_weight = obj_weight * level_factor * loss_scale  # x input area, per call

    def __call__(
        self, raw: torch.Tensor, targets: torch.Tensor, input_hw: tuple[int, int]
    ) -> dict[str, torch.Tensor]:
        """Compute the loss of one batch.

        Args:
            raw: (B, N, 5 + C) head output.
            targets: (M, 6) rows ``[image_index, class, x0, y0, x1, y1]`` in input pixels.
            input_hw: (height, width) of the network input.

        Returns:
            ``loss``: scalar with the graph, for ``backward``; ``box``, ``obj``, ``cls``: detached
            weighted parts for logging. Without targets ``box`` and ``cls`` are 0 and ``obj``
            still teaches every cell "no object".
        """
        self._check_shapes(raw, targets, input_hw)
        raw = raw.float()  # losses in float32 even under AMP
        targets = targets.to(device=raw.device, dtype=torch.float32)
        sizes = self.codec.feature_sizes(input_hw)
        matches = shape_match(targets, self.codec.anchors, self.codec.strides, sizes, self.anchor_t)
        starts = self.codec.level_starts(input_hw)
        box = cls = obj = raw.new_zeros(())
        for level, match in enumerate(matches):
            level_raw = raw[:, starts[level] : starts[level + 1]]  # (B, h * w * na, 5 + C)
            index = (match.grid_y * sizes[level][1] + match.grid_x) * self.codec.num_anchors
            index = index + match.anchor
            obj_target = raw.new_zeros(level_raw.shape[:2])  # (B, h * w * na)
            if len(match):
                level_box, level_cls, quality = self._positives(
                    level_raw[match.image, index], match, targets
                )
                box, cls = box + level_box, cls + level_cls
                flat = match.image * level_raw.shape[1] + index
                obj_target.view(-1).scatter_reduce_(0, flat, quality, reduce="amax")
            level_obj = functional.binary_cross_entropy_with_logits(level_raw[..., 4], obj_target)
            obj = obj + self.balance[level] * level_obj
        area_factor = input_hw[0] * input_hw[1] / REFERENCE_SIZE**2
        box, cls = self.box_weight * box, self.cls_weight * cls
        obj = self.obj_weight * area_factor * obj
        return {
            "loss": box + obj + cls,
            "box": box.detach(),
            "obj": obj.detach(),
            "cls": cls.detach(),
        }

    def _positives(
        self, predictions: torch.Tensor, match: LevelMatch, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean CIoU loss and mean class BCE of one level's (K, 5 + C) positives, and their
        (K,) detached, clamped CIoU: the objectness targets."""
        pred_box = decode_offsets(predictions[:, :4], match.anchor_wh)  # in cells, as match.box
        ciou = elementwise_iou(cxcywh_to_xyxy(pred_box), cxcywh_to_xyxy(match.box), kind="ciou")
        class_target = torch.zeros_like(predictions[:, 5:])
        class_target[
            torch.arange(len(match), device=predictions.device), targets[match.target, 1].long()
        ] = 1.0
        cls = functional.binary_cross_entropy_with_logits(predictions[:, 5:], class_target)
        return (1 - ciou).mean(), cls, ciou.detach().clamp(min=0)

    def _check_shapes(self, raw: torch.Tensor, targets: torch.Tensor, input_hw) -> None:
        """Fail with a readable message instead of an index error deep in the matcher."""
        expected = self.codec.level_starts(input_hw)[-1]
        if raw.ndim != 3 or raw.shape[1] != expected or raw.shape[2] != 5 + self.num_classes:
            raise ValueError(
                f"raw output has shape {tuple(raw.shape)}; expected (B, {expected}, "
                f"{5 + self.num_classes}) for {self.num_classes} classes at input "
                f"{input_hw[0]}x{input_hw[1]}"
            )
        check_targets(targets, self.num_classes)
