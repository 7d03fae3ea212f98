"""The pose loss (YOLO-pose, arXiv:2204.06806): the detection loss plus, on the same positives,
an OKS keypoint term and a keypoint visibility term."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional

from edgevision.assign.simota import AssignResult, SimOTAAssigner
from edgevision.losses.detection import DetectionLoss
from edgevision.models.codecs.pose import PoseCodec
from edgevision.ops.boxes import box_area
from edgevision.ops.keypoints import elementwise_oks, offsets_to_keypoints


class PoseLoss:
    """``DetectionLoss + kpt_weight * (1 - OKS) + kpt_l1_weight * distance / scale
    + kobj_weight * visibility BCE``.

    The detection loss assigns (SimOTA on the decoded boxes) and scores boxes and classes as for
    a detector; the keypoint terms reuse its assignment, so a point is trained on the keypoints
    of the object whose box it is matched to. Per positive point:

    - ``kpt``: ``1 - OKS`` of its decoded keypoints against the object's (COCO's OKS over the
      labelled points, the object area taken from its target box, ``ops.keypoints``). OKS is
      scale-invariant and weighs each joint by how precisely people can label it, the measure
      the model is evaluated with (YOLO-pose's point; an L1 loss would favour large objects).
      ``kpt`` also holds ``kpt_l1_weight`` times the mean distance of the labelled points
      from their targets over the object scale (sqrt of the box area): ``1 - OKS`` saturates
      for points far off (with sigma 0.05 a point half an object away has OKS ~ exp(-12) and
      no gradient), and without this term such points never move. Measured on the pose demo
      data: with OKS alone ``kpt`` stayed at 3.88 of 4 through the first epoch.
    - ``kobj``: BCE of each keypoint's visibility logit against "labelled" (``v > 0``), averaged
      over the K keypoints; the visibility score tells a drawing or a tracker which points to
      trust.

    Objects without a single labelled keypoint (boxes of a pose dataset whose keypoints were not
    annotated) add nothing to either term: they carry no keypoint information, and training their
    points to "invisible" would teach the model to hide visible people. Both terms are summed over
    positives and divided by the batch's number of positives, as the box term, so every positive
    weighs the same in every term.

    Default weights, relative to the detection loss's ``box_weight=2, cls_weight=1``:

    - ``kpt_weight=4``: twice the box weight, YOLO-pose's ratio (lambda_kpts / lambda_box =
      0.10 / 0.05; Ultralytics v8 uses 12 / 7.5 = 1.6). ``1 - OKS`` saturates at 1 for points
      far off, where its gradient is small, so it needs the larger weight to pull keypoints in
      early in training.
    - ``kobj_weight=1``: equal to the class weight, as YOLO-pose (lambda_kpts_conf = lambda_cls
      = 0.5): both are per-point confidences trained with a BCE-type loss.

    Args:
        num_classes: object classes C.
        codec: the pose head's codec (``detector.codec``), K from it.
        sigmas: (K,) OKS sigmas, the ones the model is evaluated with
            (``data.sigmas.resolve_sigmas``), so the loss trains the measure that is reported.
        kpt_weight, kpt_l1_weight, kobj_weight: weights of the keypoint terms (see above).
        box_weight, cls_weight, iou_kind, assigner: as :class:`DetectionLoss`.

    Raises:
        ValueError: ``sigmas`` of another length than K, or not all positive.
    """

    def __init__(
        self,
        num_classes: int,
        codec: PoseCodec,
        sigmas: Sequence[float],
        kpt_weight: float = 4.0,
        kobj_weight: float = 1.0,
        kpt_l1_weight: float = 1.0,
        box_weight: float = 2.0,
        cls_weight: float = 1.0,
        iou_kind: str = "giou",
        assigner: SimOTAAssigner | None = None,
    ) -> None:
        self.codec = codec
        self.num_keypoints = codec.num_keypoints
        self.sigmas = torch.as_tensor(sigmas, dtype=torch.float32).flatten()
        if len(self.sigmas) != self.num_keypoints or not bool((self.sigmas > 0).all()):
            raise ValueError(
                f"sigmas must be {self.num_keypoints} positive values (one per keypoint), got "
                f"{self.sigmas.tolist()}"
            )
        self.kpt_weight, self.kobj_weight = kpt_weight, kobj_weight
        self.kpt_l1_weight = kpt_l1_weight
        self.detection = DetectionLoss(
            num_classes, codec.box_codec, box_weight, cls_weight, iou_kind, assigner
        )

    def __call__(
        self,
        raw: torch.Tensor,
        targets: torch.Tensor,
        keypoints: torch.Tensor,
        input_hw: tuple[int, int],
    ) -> dict[str, torch.Tensor]:
        """Compute the loss of one batch.

        Args:
            raw: (B, A, 4 + C + 3K) pose head output.
            targets: (M, 6) rows ``[image_index, class, x0, y0, x1, y1]`` in input pixels (the
                batch's ``targets``).
            keypoints: (M, K, 3) ``x, y, v`` in input pixels, row m belonging to target row m
                (the batch's ``keypoints``); ``v > 0`` marks a labelled point.
            input_hw: (height, width) of the network input.

        Returns:
            ``loss``: scalar with the graph; ``cls``, ``box``, ``kpt``, ``kobj``: detached,
            weighted scalars for logging.
        """
        self._check_keypoints(targets, keypoints)
        box_raw, keypoint_raw = self.codec.split(raw)
        losses, assignment = self.detection.compute(box_raw, targets, input_hw)
        kpt_loss, kobj_loss = self._keypoint_terms(
            keypoint_raw, assignment, targets, keypoints, input_hw
        )
        return {
            **losses,
            "loss": losses["loss"] + kpt_loss + kobj_loss,
            "kpt": kpt_loss.detach(),
            "kobj": kobj_loss.detach(),
        }

    def _keypoint_terms(
        self,
        keypoint_raw: torch.Tensor,
        assignment: AssignResult,
        targets: torch.Tensor,
        keypoints: torch.Tensor,
        input_hw: tuple[int, int],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Weighted ``(kpt, kobj)`` scalars over the positives of ``assignment``."""
        device = keypoint_raw.device
        num_fg = max(int(assignment.fg_mask.sum()), 1)
        image_index, point_index = assignment.fg_mask.nonzero(as_tuple=True)
        gt_rows = assignment.matched_gt[image_index, point_index]
        gt = keypoints.to(device=device, dtype=torch.float32)[gt_rows]  # (P, K, 3)
        areas = box_area(targets.to(device=device, dtype=torch.float32)[gt_rows, 2:6])
        predicted = keypoint_raw[image_index, point_index].float()  # (P, K, 3) raw
        points, point_strides = self.codec.points(input_hw, device)
        xy = offsets_to_keypoints(
            points[point_index], point_strides[point_index], predicted[..., :2]
        )
        labelled = gt[..., 2] > 0
        has_points = labelled.any(dim=-1).float()  # (P,): objects with keypoint labels
        similarity = elementwise_oks(xy, gt, areas, self.sigmas.to(device))
        kpt_loss = self.kpt_weight * ((1 - similarity) * has_points).sum() / num_fg
        # OKS saturates: with sigma 0.05 a point half an object away has OKS ~ exp(-12) and no
        # gradient, so points far from their target would never move. The distance over the
        # object scale (sqrt of the box area) pulls them in from anywhere; OKS then sharpens.
        distance = (
            torch.linalg.vector_norm(xy - gt[..., :2], dim=-1) / areas.clamp(min=1).sqrt()[:, None]
        )
        per_object = (distance * labelled).sum(-1) / labelled.sum(-1).clamp(min=1)
        kpt_loss = kpt_loss + self.kpt_l1_weight * per_object.sum() / num_fg
        visibility = functional.binary_cross_entropy_with_logits(
            predicted[..., 2], labelled.float(), reduction="none"
        ).mean(dim=-1)
        kobj_loss = self.kobj_weight * (visibility * has_points).sum() / num_fg
        return kpt_loss, kobj_loss

    def _check_keypoints(self, targets: torch.Tensor, keypoints: torch.Tensor) -> None:
        """Fail with a readable message instead of an index error after the assignment."""
        expected = (targets.shape[0], self.num_keypoints, 3)
        if tuple(keypoints.shape) != expected:
            raise ValueError(
                f"keypoints have shape {tuple(keypoints.shape)}; expected {expected}: one "
                f"(K, 3) row per target row, K = {self.num_keypoints} as the model was built with"
            )
