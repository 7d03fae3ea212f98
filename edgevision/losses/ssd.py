"""The SSD loss: IoU matching to priors, softmax cross entropy with hard-negative mining (or a
sigmoid focal loss over every prior) and a box term on the matched priors."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgevision.assign.iou_match import match_boxes
from edgevision.losses.focal import sigmoid_focal_loss
from edgevision.losses.iou import iou_loss
from edgevision.losses.targets import check_targets
from edgevision.models.codecs.ssd import SSDCodec, decode_offsets, encode
from edgevision.ops.boxes import cxcywh_to_xyxy

BOX_KINDS = ("smooth_l1", "giou")


def hard_negative_mask(
    background_loss: torch.Tensor, positive: torch.Tensor, neg_pos_ratio: float = 3.0
) -> torch.Tensor:
    """SSD's hard-negative mining: per image the ``neg_pos_ratio * P`` negatives of highest loss.

    An image with no objects (P = 0) mines as many negatives as the batch's average image:
    ``neg_pos_ratio * max(1, round(mean P))``. Mining zero there (torchvision, ssd.pytorch) would
    teach nothing from background-only images, which are where false positives are unlearnt.

    Args:
        background_loss: (B, N) loss of each prior against the background class.
        positive: (B, N) bool, priors matched to an object.
        neg_pos_ratio: negatives per positive.

    Returns:
        (B, N) bool, the negatives that contribute (never a positive; all negatives at most).
    """
    num_pos = positive.sum(dim=1)
    empty_image_pos = max(1, round(float(num_pos.float().mean())))
    num_neg = (neg_pos_ratio * torch.where(num_pos > 0, num_pos, empty_image_pos)).long()
    num_neg = torch.minimum(num_neg, (~positive).sum(dim=1))
    ranked = background_loss.detach().masked_fill(positive, -float("inf"))
    order = ranked.argsort(dim=1, descending=True)
    rank = order.argsort(dim=1)  # rank of each prior in its image's decreasing order
    return rank < num_neg[:, None]


class SSDLoss:
    """Loss of the SSD heads: ``cls_weight * classification + box_weight * box``, both summed and
    divided by the number of matched priors in the batch (SSD's ``1/N``; 0, not NaN, with none).

    Classification is softmax cross entropy over the C + 1 logits (background index 0) on the
    positives and the mined negatives (:func:`hard_negative_mask`); with ``focal=True`` it is the
    sigmoid focal loss of the C class logits against one-hot targets over *every* prior, no
    mining (the fastai multi-grid SSD; the background logit is not trained, and the codec must
    score with "sigmoid"). The box term is smooth L1 (beta 1) on the encoded offsets, summed over
    the 4 of them, or GIoU loss on the decoded boxes.

    Args:
        num_classes: object classes C.
        codec: the head's :class:`SSDCodec` (``detector.codec``): priors and offsets.
        neg_pos_ratio: mined negatives per positive (softmax mode).
        box_kind: "smooth_l1" or "giou".
        focal: sigmoid focal classification instead of mined cross entropy.
        gamma, alpha: focal-loss focusing exponent and positive weight.
        box_weight, cls_weight: weights of the two terms.
        iou_threshold: IoU from which a prior matches a gt (:func:`match_priors`).
    """

    def __init__(
        self,
        num_classes: int,
        codec: SSDCodec,
        neg_pos_ratio: float = 3.0,
        box_kind: str = "smooth_l1",
        focal: bool = False,
        gamma: float = 2.0,
        alpha: float = 0.25,
        box_weight: float = 1.0,
        cls_weight: float = 1.0,
        iou_threshold: float = 0.5,
    ) -> None:
        if box_kind not in BOX_KINDS:
            raise ValueError(f"box_kind must be one of {BOX_KINDS}, got {box_kind!r}")
        wanted = "sigmoid" if focal else "softmax"
        if codec.scores != wanted:
            raise ValueError(
                f"focal={focal} trains {wanted} scores but the codec decodes {codec.scores!r}; "
                f"use the head's loss_options (focal={codec.scores == 'sigmoid'})"
            )
        self.num_classes, self.codec = num_classes, codec
        self.neg_pos_ratio, self.box_kind, self.focal = neg_pos_ratio, box_kind, focal
        self.gamma, self.alpha = gamma, alpha
        self.box_weight, self.cls_weight = box_weight, cls_weight
        self.iou_threshold = iou_threshold

    def __call__(
        self, raw: torch.Tensor, targets: torch.Tensor, input_hw: tuple[int, int]
    ) -> dict[str, torch.Tensor]:
        """Compute the loss of one batch.

        Args:
            raw: (B, N, 4 + C + 1) head output (offsets, then background and class logits).
            targets: (M, 6) rows ``[image_index, class, x0, y0, x1, y1]`` in input pixels.
            input_hw: (height, width) of the network input.

        Returns:
            ``loss``: scalar with the graph; ``cls`` and ``box``: detached weighted scalars.
        """
        self._check_shapes(raw, targets, input_hw)
        raw = raw.float()  # exp and log-softmax overflow in half precision
        priors = self.codec.pixel_priors(input_hw, raw.device)
        targets = targets.to(device=raw.device, dtype=torch.float32)
        labels, gt_boxes = self.match(targets, priors, raw.shape[0])
        positive = labels > 0
        num_pos = max(int(positive.sum()), 1)
        cls_loss = self.cls_weight * self._classification(raw[..., 4:], labels) / num_pos
        box_loss = self.box_weight * self._box(raw[..., :4], gt_boxes, priors, positive) / num_pos
        return {"loss": cls_loss + box_loss, "cls": cls_loss.detach(), "box": box_loss.detach()}

    def match(
        self, targets: torch.Tensor, priors: torch.Tensor, batch_size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per prior: (B, N) label (0 background, 1 + class) and (B, N, 4) matched gt xyxy."""
        prior_xyxy = cxcywh_to_xyxy(priors)
        labels = torch.zeros(batch_size, len(priors), dtype=torch.long, device=priors.device)
        gt_boxes = torch.zeros(batch_size, len(priors), 4, device=priors.device)
        for image in range(batch_size):
            rows = targets[targets[:, 0] == image]
            matched = match_boxes(rows[:, 2:6], prior_xyxy, self.iou_threshold)
            hit = matched >= 0
            labels[image, hit] = rows[matched[hit], 1].long() + 1
            gt_boxes[image, hit] = rows[matched[hit], 2:6]
        return labels, gt_boxes

    def _classification(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.focal:
            one_hot = F.one_hot(labels, self.num_classes + 1)[..., 1:].to(logits)
            return sigmoid_focal_loss(logits[..., 1:], one_hot, self.alpha, self.gamma).sum()
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none")
        loss = loss.view_as(labels)
        positive = labels > 0
        # For a negative its loss *is* the background loss: mining ranks on it directly.
        negative = hard_negative_mask(loss, positive, self.neg_pos_ratio)
        return loss[positive].sum() + loss[negative].sum()

    def _box(self, offsets, gt_boxes, priors, positive) -> torch.Tensor:
        prior_rows = priors.expand(positive.shape[0], -1, -1)[positive]
        if self.box_kind == "giou":
            predicted = decode_offsets(offsets[positive], prior_rows)
            return iou_loss(predicted, gt_boxes[positive], kind="giou").sum()
        wanted = encode(gt_boxes[positive], prior_rows)
        return F.smooth_l1_loss(offsets[positive], wanted, reduction="sum", beta=1.0)

    def _check_shapes(self, raw, targets, input_hw) -> None:
        """Fail with a readable message instead of an index error in the matcher."""
        expected = self.codec.num_priors(input_hw)
        if raw.ndim != 3 or raw.shape[1:] != (expected, 5 + self.num_classes):
            raise ValueError(
                f"raw output has shape {tuple(raw.shape)}; expected (B, {expected}, "
                f"{5 + self.num_classes}) for {self.num_classes} classes at input "
                f"{input_hw[0]}x{input_hw[1]}"
            )
        check_targets(targets, self.num_classes)
