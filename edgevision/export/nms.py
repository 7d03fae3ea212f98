"""Decode + NMS inside an exported graph (``--nms``), for any detector whose head has a codec.

Without ``--nms`` the graph is the detector itself, so the file's output *is* the head's raw
contract and the runtime decodes it in numpy (the codec's twin). Reasons: it works for any input
size (a dynamic graph needs no anchor grid inside), ONNX Runtime vs PyTorch parity compares the
very tensor the model computes, and INT8 calibration sees no sigmoid/softplus tail to keep in
float.

With ``--nms`` the graph is :class:`NmsDetector`: the codec's traced decode, one label per point
(its best class), ONNX ``NonMaxSuppression`` over the class dimension (class-aware; boxes of
other classes have score 0 and fall under the score threshold) and a fixed-size, zero-padded
result. A pose codec (one with ``num_keypoints``) adds a ``keypoints`` output: the decoded
keypoints of each kept point, gathered with the same selection as its box.
"""

from __future__ import annotations

import torch
from torch import nn

from edgevision.ops.nms import nms


class NonMaxSuppressionOp(torch.autograd.Function):
    """ONNX ``NonMaxSuppression`` (opset >= 11) in a trace; eager runs the same rule with ``ops.nms``.

    Inputs: boxes (B, A, 4) xyxy, scores (B, C, A). Output: (K, 3) int64 rows
    ``(batch, class, box)`` of kept boxes with score > ``score_threshold``, at most
    ``max_per_class`` per batch and class, best first within each.
    """

    @staticmethod
    def forward(
        ctx, boxes, scores, max_per_class: int, iou_threshold: float, score_threshold: float
    ):
        rows = []
        for batch_index in range(scores.shape[0]):
            for class_index in range(scores.shape[1]):
                class_scores = scores[batch_index, class_index]
                index = torch.nonzero(class_scores > score_threshold).flatten()
                kept = index[nms(boxes[batch_index, index], class_scores[index], iou_threshold)]
                for box_index in kept[:max_per_class].tolist():
                    rows.append([batch_index, class_index, box_index])
        return torch.tensor(rows, dtype=torch.int64).reshape(-1, 3)

    @staticmethod
    def symbolic(graph, boxes, scores, max_per_class, iou_threshold, score_threshold):
        return graph.op(
            "NonMaxSuppression",
            boxes,
            scores,
            graph.op("Constant", value_t=torch.tensor([max_per_class], dtype=torch.int64)),
            graph.op("Constant", value_t=torch.tensor([iou_threshold], dtype=torch.float32)),
            graph.op("Constant", value_t=torch.tensor([score_threshold], dtype=torch.float32)),
            center_point_box_i=0,
        )


class NmsDetector(nn.Module):
    """Detector + decode + class-aware NMS -> fixed-size detections (the ``--nms`` graph).

    Args:
        detector: a ``Detector`` (any module with a ``codec`` whose ``decode_traced`` gives boxes
            and scores; a codec with ``num_keypoints`` also ``decode_keypoints_traced``).
        conf: keep points whose best score is above this.
        iou: NMS IoU threshold.
        max_det: detections per image (output rows; the rest is zero padding).

    Forward returns ``num_dets`` (B, 1) int64, ``boxes`` (B, max_det, 4) xyxy input pixels,
    ``scores`` (B, max_det) and ``classes`` (B, max_det) int64, best first; for a pose codec
    also ``keypoints`` (B, max_det, K, 3) float32 (``x, y`` input pixels, visibility score).

    Attributes:
        num_keypoints: K of a pose codec, 0 otherwise (then there is no ``keypoints`` output).
    """

    def __init__(self, detector: nn.Module, conf: float, iou: float, max_det: int):
        super().__init__()
        self.detector = detector
        self.codec = detector.codec
        self.num_keypoints = int(getattr(self.codec, "num_keypoints", 0))
        self.conf, self.iou, self.max_det = float(conf), float(iou), int(max_det)

    def forward(self, images: torch.Tensor):
        raw = self.detector(images)
        boxes, scores = self.codec.decode_traced(raw, images)
        # One label per point, as postprocess does: every class but the best gets score 0.
        best = scores.amax(dim=-1, keepdim=True)
        class_scores = scores * (scores >= best)
        selected = NonMaxSuppressionOp.apply(
            boxes, class_scores.transpose(1, 2), self.max_det, self.iou, self.conf
        )
        keypoints = None
        if self.num_keypoints:
            keypoints = self.codec.decode_keypoints_traced(raw, images)
        return self._pad_per_image(images, boxes, class_scores, selected, keypoints)

    def _pad_per_image(self, images, boxes, class_scores, selected, keypoints=None):
        """(K, 3) selections of the whole batch -> the best ``max_det`` per image, zero padded.

        A (B, K) score table with -1 where a selection belongs to another image, plus ``max_det``
        padding columns, lets one ``topk`` pick each image's best without a loop. ``keypoints``
        (B, A, K, 3), when given, are gathered with the same selection.
        """
        batch_index, class_index, box_index = selected[:, 0], selected[:, 1], selected[:, 2]
        selected_scores = class_scores[batch_index, box_index, class_index]
        selected_boxes = boxes[batch_index, box_index]
        image_ids = torch.arange(images.shape[0], device=images.device)[:, None]
        table = torch.where(image_ids == batch_index[None, :], selected_scores[None, :], -1.0)
        # Built from traced values, not a shape tuple, so the batch size stays dynamic.
        padding = (image_ids * 0 - 1).to(table.dtype).expand(-1, self.max_det)
        top_scores, top_index = torch.cat([table, padding], dim=1).topk(self.max_det, dim=1)
        valid = top_scores >= 0
        all_boxes = torch.cat([selected_boxes, boxes.new_zeros(self.max_det, 4)])
        all_classes = torch.cat([class_index, class_index.new_zeros(self.max_det)])
        out_boxes = torch.where(valid[..., None], all_boxes[top_index], 0.0)
        out_classes = torch.where(valid, all_classes[top_index], 0)
        num_dets = valid.sum(dim=1, keepdim=True, dtype=torch.int64)
        outputs = (num_dets, out_boxes, torch.where(valid, top_scores, 0.0), out_classes)
        if keypoints is None:
            return outputs
        selected_keypoints = keypoints[batch_index, box_index]  # (S, K, 3)
        padding_keypoints = keypoints.new_zeros(self.max_det, self.num_keypoints, 3)
        all_keypoints = torch.cat([selected_keypoints, padding_keypoints])
        return (*outputs, torch.where(valid[..., None, None], all_keypoints[top_index], 0.0))
