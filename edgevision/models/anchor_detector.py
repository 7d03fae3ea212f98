"""The anchor-based detector family: YOLOv4-tiny's backbone and FPN with a YOLOv5-style head.

``yolo-tiny-anchor`` in the zoo. Its anchors live in the head's ``anchors`` buffer: the defaults
below at build time, replaced by ``detector.head.set_anchors`` (a file, or autoanchor's
re-clustering at train start) and restored from a checkpoint's state dict.
"""

from __future__ import annotations

from edgevision.models.backbones.csp_tiny import CSPTiny
from edgevision.models.detector import Detector
from edgevision.models.heads.anchor_based import AnchorHead
from edgevision.models.necks.tiny_fpn import TinyFPN

# YOLOv4-tiny's six anchors (darknet ``yolov4-tiny.cfg``, k-means on COCO at 416 x 416), in input
# pixels, finest level first: stride 16, then stride 32.
TINY_ANCHORS = (((10, 14), (23, 27), (37, 58)), ((81, 82), (135, 169), (344, 319)))
# The three-scale variant's nine (YOLOv5's P3-P5 defaults, COCO at 640): strides 8, 16, 32.
TINY_3L_ANCHORS = (
    ((10, 13), (16, 30), (33, 23)),
    ((30, 61), (62, 45), (59, 119)),
    ((116, 90), (156, 198), (373, 326)),
)
# Zoo default: 0.75 of YOLOv4-tiny's channels (see tiny_anchor_detector for the sizes).
DEFAULT_WIDTH = 0.75


def tiny_anchor_detector(
    num_classes: int,
    *,
    width_multiple: float = DEFAULT_WIDTH,
    anchors=None,
    three_scale: bool = False,
) -> Detector:
    """CSP tiny backbone + tiny FPN + anchor head, leaky ReLU 0.1 throughout.

    At 80 classes and 416 x 416: width 1.0 is YOLOv4-tiny itself (6.06 M parameters, 6.9
    GFLOPs, as darknet reports); the default 0.75 has 3.45 M (3.9 GFLOPs), a middle ground for
    CPUs; 0.5 has 1.57 M (1.8 GFLOPs). The three-scale variant adds 0.16-0.28 M.

    Args:
        num_classes: object classes C.
        width_multiple: scales every channel count (rounded up to multiples of 8).
        anchors: (L, 3, 2) or flat (3L, 2) sizes in input pixels; YOLOv4-tiny's
            (:data:`TINY_ANCHORS`, or :data:`TINY_3L_ANCHORS` for three scales) when None.
        three_scale: add a stride-8 level (YOLOv4-tiny-3l) for small objects.
    """
    backbone = CSPTiny(width_multiple, three_scale=three_scale)
    neck = TinyFPN(backbone.out_channels)
    if anchors is None:
        anchors = TINY_3L_ANCHORS if three_scale else TINY_ANCHORS
    head = AnchorHead(neck.out_channels, num_classes, anchors, backbone.strides)
    return Detector(backbone, neck, head, backbone.strides)
