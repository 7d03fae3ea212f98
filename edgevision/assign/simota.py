"""SimOTA label assignment for anchor-free detectors (YOLOX, arXiv:2107.08430).

Why SimOTA and not TAL (task-aligned assignment, TOOD / YOLOv8):

- **Dynamic k.** Each ground truth gets ``k = floor(sum of its top-10 predicted IoUs)`` positives, so
  large, well-predicted objects get many positives and small or hard ones at least one. TAL uses a
  fixed ``top-k`` (13 in YOLOv8) for every object, which over-assigns tiny objects on a coarse grid.
- **Small datasets.** Our users train on a few thousand images. The SimOTA cost mixes a
  classification term with an IoU term and a hard geometric prior (inside the box *and* near its
  centre), which keeps early, noisy predictions from stealing positives; TAL's alignment metric
  ``score^alpha * IoU^beta`` is near zero for every point at the start of training and relies on
  long schedules to settle.
- **Readable.** The whole algorithm is a cost matrix, a top-k and an argmin, all vectorised below.

TAL remains the alternative worth adding (``assign/tal.py``) when we train the larger models on
big datasets with long schedules, where it matches or beats SimOTA.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from edgevision.ops.boxes import xyxy_to_cxcywh
from edgevision.ops.grid import xyxy_to_distance
from edgevision.ops.iou import box_iou

# Added to the cost of a (gt, point) pair whose point is not both inside the box and near its centre:
# such a pair is picked only when a gt has too few pairs that are (YOLOX uses the same constant).
_OUTSIDE_COST = 1e5


@dataclass
class AssignResult:
    """Which predictions are positives and what they are matched to.

    Attributes:
        fg_mask: (A,) or (B, A) bool, True for positive (foreground) points.
        matched_gt: (A,) or (B, A) int64 index of the matched ground truth, -1 for background.
            Per image it indexes ``gt_boxes``; from :meth:`SimOTAAssigner.assign_batch` it indexes
            the rows of ``targets``.
        matched_iou: (A,) or (B, A) float IoU of the predicted box with its matched gt, 0 for
            background; the quality target of the classification branch.
    """

    fg_mask: torch.Tensor
    matched_gt: torch.Tensor
    matched_iou: torch.Tensor

    @classmethod
    def background(cls, shape: tuple[int, ...], device: torch.device) -> AssignResult:
        """Everything background: what an image without objects gets."""
        return cls(
            fg_mask=torch.zeros(shape, dtype=torch.bool, device=device),
            matched_gt=torch.full(shape, -1, dtype=torch.int64, device=device),
            matched_iou=torch.zeros(shape, dtype=torch.float32, device=device),
        )


class SimOTAAssigner:
    """YOLOX's simplified optimal-transport assignment, vectorised over points and gts.

    Args:
        center_radius: a point is a centre candidate of a gt when it lies within
            ``center_radius * stride`` of the gt centre (in x and in y).
        candidate_topk: how many of a gt's best IoUs are summed to get its dynamic k.
        iou_weight: weight of ``-log(IoU)`` in the cost.
        cls_weight: weight of the classification BCE in the cost.
    """

    def __init__(
        self,
        center_radius: float = 2.5,
        candidate_topk: int = 10,
        iou_weight: float = 3.0,
        cls_weight: float = 1.0,
    ) -> None:
        self.center_radius = center_radius
        self.candidate_topk = candidate_topk
        self.iou_weight = iou_weight
        self.cls_weight = cls_weight

    @torch.no_grad()
    def assign(
        self,
        pred_scores: torch.Tensor,
        pred_boxes: torch.Tensor,
        points: torch.Tensor,
        point_strides: torch.Tensor,
        gt_boxes: torch.Tensor,
        gt_labels: torch.Tensor,
    ) -> AssignResult:
        """Assign the points of one image to its ground truths.

        Args:
            pred_scores: (A, C) class probabilities in [0, 1] (sigmoid applied), detached.
            pred_boxes: (A, 4) predicted xyxy boxes in input pixels, detached.
            points: (A, 2) point centres ``x, y`` in input pixels.
            point_strides: (A,) stride of each point.
            gt_boxes: (G, 4) xyxy ground-truth boxes; G may be 0.
            gt_labels: (G,) integer classes.

        Returns:
            An :class:`AssignResult` with (A,) tensors.
        """
        num_points = points.shape[0]
        result = AssignResult.background((num_points,), points.device)
        if gt_boxes.shape[0] == 0:
            return result
        # Assignment decides discrete matches: do it in float32 even under AMP.
        gt_boxes, pred_boxes = gt_boxes.float(), pred_boxes.float()
        in_box, in_centre = self._geometry(points.float(), point_strides.float(), gt_boxes)
        candidates = (in_box | in_centre).any(dim=0).nonzero().squeeze(1)  # (Ac,)
        if candidates.numel() == 0:
            return result
        ious = box_iou(gt_boxes, pred_boxes[candidates])  # (G, Ac)
        in_both = in_box[:, candidates] & in_centre[:, candidates]
        cost = self._cost(pred_scores[candidates].float(), gt_labels.long(), ious, in_both)
        matching = self._dynamic_k_matching(cost, ious)  # (G, Ac) bool

        # A point chosen by several gts keeps only the cheapest of them.
        matched_gt = cost.masked_fill(~matching, float("inf")).argmin(dim=0)  # (Ac,)
        is_fg = matching.any(dim=0)
        fg_points = candidates[is_fg]
        result.fg_mask[fg_points] = True
        result.matched_gt[fg_points] = matched_gt[is_fg]
        result.matched_iou[fg_points] = ious[matched_gt, torch.arange(len(candidates))][is_fg]
        return result

    def _geometry(
        self, points: torch.Tensor, point_strides: torch.Tensor, gt_boxes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(G, A) masks: point strictly inside the gt box; point within the gt's centre region."""
        in_box = xyxy_to_distance(points[None], gt_boxes[:, None]).amin(dim=-1) > 0
        centres = xyxy_to_cxcywh(gt_boxes)[:, None, :2]  # (G, 1, 2)
        radius = (self.center_radius * point_strides)[None]  # (1, A): scales with the level
        in_centre = (points[None] - centres).abs().amax(dim=-1) < radius
        return in_box, in_centre

    def _cost(
        self,
        scores: torch.Tensor,
        gt_labels: torch.Tensor,
        ious: torch.Tensor,
        in_both: torch.Tensor,
    ) -> torch.Tensor:
        """(G, Ac) matching cost; lower is a better (gt, point) pair.

        The classification term is the BCE of the gt-class score against 1, i.e. ``-log p``. YOLOX
        also sums the BCE of the other classes against 0; that adds a per-point constant which
        would let confident wrong-class points drop out of a gt's top-k, so we leave it out.
        """
        gt_class_scores = scores[:, gt_labels].T  # (G, Ac)
        cls_cost = F.binary_cross_entropy(
            gt_class_scores, torch.ones_like(gt_class_scores), reduction="none"
        )
        iou_cost = -torch.log(ious + 1e-8)
        outside = (~in_both).float() * _OUTSIDE_COST
        return self.cls_weight * cls_cost + self.iou_weight * iou_cost + outside

    def _dynamic_k_matching(self, cost: torch.Tensor, ious: torch.Tensor) -> torch.Tensor:
        """(G, Ac) bool: each gt takes its ``k_g`` cheapest points, ``k_g`` from its top IoUs."""
        topk = min(self.candidate_topk, ious.shape[1])
        dynamic_k = ious.topk(topk, dim=1).values.sum(dim=1).int().clamp(min=1)  # (G,)
        # One top-k at the largest k for all gts, then keep the first k_g columns of row g.
        max_k = int(dynamic_k.max())
        cheapest = cost.topk(max_k, dim=1, largest=False).indices  # (G, max_k)
        keep = torch.arange(max_k, device=cost.device)[None] < dynamic_k[:, None]
        matching = torch.zeros_like(cost, dtype=torch.bool)
        return matching.scatter_(1, cheapest, keep)

    @torch.no_grad()
    def assign_batch(
        self,
        pred_scores: torch.Tensor,
        pred_boxes: torch.Tensor,
        points: torch.Tensor,
        point_strides: torch.Tensor,
        targets: torch.Tensor,
    ) -> AssignResult:
        """Assign every image of a batch; images differ in their number of gts, so loop over them.

        Args:
            pred_scores: (B, A, C) class probabilities, detached.
            pred_boxes: (B, A, 4) predicted xyxy boxes, detached.
            points: (A, 2) point centres, shared by the batch.
            point_strides: (A,) stride of each point.
            targets: (M, 6) rows ``[image_index, class, x0, y0, x1, y1]`` (the training batch).

        Returns:
            An :class:`AssignResult` with (B, A) tensors; ``matched_gt`` indexes rows of ``targets``.
        """
        batch_size, num_points = pred_scores.shape[:2]
        result = AssignResult.background((batch_size, num_points), pred_scores.device)
        image_index = targets[:, 0].long()
        for image in range(batch_size):
            rows = (image_index == image).nonzero().squeeze(1)
            one = self.assign(
                pred_scores[image],
                pred_boxes[image],
                points,
                point_strides,
                targets[rows, 2:6],
                targets[rows, 1],
            )
            result.fg_mask[image] = one.fg_mask
            result.matched_gt[image][one.fg_mask] = rows[one.matched_gt[one.fg_mask]]
            result.matched_iou[image] = one.matched_iou
        return result
