"""Geometry: box conversions, the IoU family, NMS. Nothing else in edgevision re-implements these."""

from edgevision.ops.boxes import (
    box_area,
    box_iou,
    box_iou_numpy,
    clip_boxes,
    cxcywh_to_xyxy,
    distance_to_xyxy,
    elementwise_iou,
    make_anchor_points,
    order_corners,
    unletterbox_boxes,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_distance,
    xyxy_to_xywh,
)
from edgevision.ops.nms import batched_nms, nms

__all__ = [
    "batched_nms",
    "box_area",
    "box_iou",
    "box_iou_numpy",
    "clip_boxes",
    "cxcywh_to_xyxy",
    "distance_to_xyxy",
    "elementwise_iou",
    "make_anchor_points",
    "nms",
    "order_corners",
    "unletterbox_boxes",
    "xywh_to_xyxy",
    "xyxy_to_cxcywh",
    "xyxy_to_distance",
    "xyxy_to_xywh",
]
