"""Detection models: blocks, backbones, necks, heads, the Detector, decoding and the zoo."""

from edgevision.models.blocks import (
    C3,
    CBAM,
    SPPF,
    Bottleneck,
    ConvBNAct,
    DepthwiseSeparable,
    SqueezeExcite,
    fuse_conv_bn,
)
from edgevision.models.decode import decode, postprocess
from edgevision.models.detector import Detector
from edgevision.models.zoo import (
    MODEL_ZOO,
    build_model,
    count_flops,
    count_parameters,
    default_imgsz,
    list_models,
    nano_detector,
    yolo_detector,
)

__all__ = [
    "C3",
    "CBAM",
    "MODEL_ZOO",
    "SPPF",
    "Bottleneck",
    "ConvBNAct",
    "DepthwiseSeparable",
    "Detector",
    "SqueezeExcite",
    "build_model",
    "count_flops",
    "count_parameters",
    "decode",
    "default_imgsz",
    "fuse_conv_bn",
    "list_models",
    "nano_detector",
    "postprocess",
    "yolo_detector",
]
