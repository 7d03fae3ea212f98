"""The RepVGG detector family (``rep-n``, ``rep-s``): EfficientRep + Rep-PAN + the anchor-free head.

YOLOv6's idea: train multi-branch RepVGG blocks, deploy them as plain 3x3 convs
(:func:`models.blocks_rep.reparameterize`). It shares the anchor-free head, codec and loss with
the nano and yolo families, so training, evaluation, export and the runtime need nothing new.
"""

from __future__ import annotations

from torch import nn

from edgevision.models.backbones.cspdarknet import scale_depth, scale_width
from edgevision.models.backbones.efficientrep import EfficientRep
from edgevision.models.detector import Detector
from edgevision.models.heads.anchor_free import AnchorFreeHead
from edgevision.models.necks.rep_pan import RepPAN

# RepConvs per neck RepBlock at depth 1.0 (YOLOv6 uses 12; 3 gives one block at depth 0.33).
NECK_BASE_DEPTH = 3


def rep_detector(num_classes: int, *, depth_multiple: float, width_multiple: float) -> Detector:
    """EfficientRep + Rep-PAN + decoupled anchor-free head, ReLU throughout.

    The head is YOLOv6's "efficient decoupled head" in our :class:`AnchorFreeHead`: one full 3x3
    conv per branch (``num_convs=1``) at ``scale_width(256, width_multiple)`` channels (64 for
    rep-n), instead of yolo's two, which halves the head, the largest cost of a small detector
    at stride 8.
    """
    backbone = EfficientRep(depth_multiple, width_multiple, act=nn.ReLU)
    neck = RepPAN(backbone.out_channels, scale_depth(NECK_BASE_DEPTH, depth_multiple), act=nn.ReLU)
    head_width = scale_width(256, width_multiple)
    head = AnchorFreeHead(
        neck.out_channels, num_classes, head_width, num_convs=1, depthwise=False, act=nn.ReLU
    )
    return Detector(backbone, neck, head, backbone.strides)
