"""The dense detection loss: decode with the head's codec, assign (SimOTA), quality focal loss +
IoU loss."""

from __future__ import annotations

import torch

from edgevision.assign.simota import AssignResult, SimOTAAssigner
from edgevision.losses.focal import quality_focal_loss
from edgevision.losses.iou import iou_loss
from edgevision.losses.targets import check_targets
from edgevision.models.codecs.anchor_free import AnchorFreeCodec


class DetectionLoss:
    """Loss of the dense heads: ``cls_weight * QFL + box_weight * IoU loss`` on decoded boxes.

    Both terms are normalised by the number of positives in the whole batch (YOLOX / NanoDet), so
    the loss scale does not depend on how many objects an image holds. The box term is the plain
    mean of the IoU loss over positives; GFL additionally weights it by the predicted quality,
    which we leave out to keep the first version simple.

    Args:
        num_classes: number of object classes C.
        codec: the head's codec (``detector.codec``): decodes raw outputs and gives the grid.
        box_weight: weight of the IoU loss.
        cls_weight: weight of the quality focal loss.
        iou_kind: "iou", "giou", "diou" or "ciou" for the box term.
        assigner: label assigner; a default :class:`SimOTAAssigner` when None.
    """

    def __init__(
        self,
        num_classes: int,
        codec: AnchorFreeCodec,
        box_weight: float = 2.0,
        cls_weight: float = 1.0,
        iou_kind: str = "giou",
        assigner: SimOTAAssigner | None = None,
    ) -> None:
        self.num_classes = num_classes
        self.codec = codec
        self.box_weight = box_weight
        self.cls_weight = cls_weight
        self.iou_kind = iou_kind
        self.assigner = assigner if assigner is not None else SimOTAAssigner()

    def __call__(
        self, raw: torch.Tensor, targets: torch.Tensor, input_hw: tuple[int, int]
    ) -> dict[str, torch.Tensor]:
        """Compute the loss of one batch.

        Args:
            raw: (B, A, 4 + C) head output (raw distances, then class logits).
            targets: (M, 6) rows ``[image_index, class, x0, y0, x1, y1]`` in input pixels.
            input_hw: (height, width) of the network input.

        Returns:
            ``loss``: scalar with the graph, for ``backward``; ``cls`` and ``box``: detached
            scalars (already weighted) for logging.
        """
        return self.compute(raw, targets, input_hw)[0]

    def compute(
        self, raw: torch.Tensor, targets: torch.Tensor, input_hw: tuple[int, int]
    ) -> tuple[dict[str, torch.Tensor], AssignResult]:
        """:meth:`__call__` plus the assignment it made, for losses that add terms on the same
        positives (the pose loss) instead of assigning a second time.

        Returns:
            The loss dict of :meth:`__call__` and the :class:`AssignResult` with (B, A) tensors:
            ``fg_mask``, ``matched_gt`` (rows of ``targets``), ``matched_iou``.
        """
        self._check_shapes(raw, targets)
        # The same decode as evaluation and export, so the loss trains exactly what is deployed.
        boxes, scores = self.codec.decode(raw, input_hw)  # (B, A, 4), (B, A, C)
        logits = raw[..., 4:].float()  # losses in float32 even under AMP: exp overflows in half
        points, point_strides = self.codec.points(input_hw, raw.device)
        targets = targets.to(device=raw.device, dtype=torch.float32)
        assignment = self.assigner.assign_batch(
            scores.detach(), boxes.detach(), points, point_strides, targets
        )
        num_fg = max(int(assignment.fg_mask.sum()), 1)
        cls_loss = quality_focal_loss(logits, self._score_targets(assignment, targets, logits))
        cls_loss = self.cls_weight * cls_loss.sum() / num_fg
        gt_rows = assignment.matched_gt[assignment.fg_mask]
        box_loss = iou_loss(boxes[assignment.fg_mask], targets[gt_rows, 2:6], kind=self.iou_kind)
        box_loss = self.box_weight * box_loss.sum() / num_fg  # sum / count: 0, not NaN, if none
        losses = {"loss": cls_loss + box_loss, "cls": cls_loss.detach(), "box": box_loss.detach()}
        return losses, assignment

    def _score_targets(
        self, assignment: AssignResult, targets: torch.Tensor, logits: torch.Tensor
    ) -> torch.Tensor:
        """(B, A, C) quality targets: matched IoU at the gt class of each positive, 0 elsewhere."""
        score_targets = torch.zeros_like(logits)
        image_index, point_index = assignment.fg_mask.nonzero(as_tuple=True)
        gt_classes = targets[assignment.matched_gt[image_index, point_index], 1].long()
        quality = assignment.matched_iou[image_index, point_index].to(logits)
        score_targets[image_index, point_index, gt_classes] = quality
        return score_targets

    def _check_shapes(self, raw: torch.Tensor, targets: torch.Tensor) -> None:
        """Fail with a readable message instead of an index error deep in the assigner."""
        if raw.ndim != 3 or raw.shape[-1] != 4 + self.num_classes:
            raise ValueError(
                f"raw output has shape {tuple(raw.shape)}; expected (B, A, {4 + self.num_classes})"
                f" for {self.num_classes} classes"
            )
        check_targets(targets, self.num_classes)
