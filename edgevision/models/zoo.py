"""The model zoo: the one place a model name becomes a model.

``MODEL_ZOO`` is a literal dict from name to a ``functools.partial`` of a plain constructor; nothing
registers itself at import time. FLOPs follow the common detection-paper convention
FLOPs = 2 x multiply-accumulates (counted by ``torch.utils.flop_counter``: convolutions and matrix
products only; BN, activations, pooling, resizing and additions are not counted).
"""

from __future__ import annotations

import difflib
from functools import partial

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from edgevision.errors import UnknownModelError
from edgevision.models.backbones.cspdarknet import CSPDarknet, scale_width
from edgevision.models.backbones.shufflenetv2 import shufflenet_v2
from edgevision.models.detector import Detector
from edgevision.models.heads.anchor_free import AnchorFreeHead
from edgevision.models.necks.pan import PAN, LightPAN

# NanoDet-Plus's choice for neck and head: unlike ReLU it never leaves a thin head's channels dead,
# and ONNX Runtime fuses it into the conv just the same.
_NANO_ACT = partial(nn.LeakyReLU, 0.1)


def nano_detector(
    num_classes: int, *, backbone_width: float, neck_width: int, imgsz: int = 320
) -> Detector:
    """ShuffleNetV2 (stages 2-4, no conv5) + LightPAN + depthwise decoupled head (2 convs/branch)."""
    backbone = shufflenet_v2(backbone_width, out_stages=(2, 3, 4))
    neck = LightPAN(backbone.out_channels, neck_width, act=_NANO_ACT)
    head = AnchorFreeHead(
        neck.out_channels, num_classes, neck_width, num_convs=2, depthwise=True, act=_NANO_ACT
    )
    return Detector(backbone, neck, head, backbone.strides, default_imgsz=imgsz)


def yolo_detector(
    num_classes: int, *, depth_multiple: float, width_multiple: float, imgsz: int = 640
) -> Detector:
    """CSP-Darknet + PAN (YOLOv5 v6) + YOLOX-style decoupled head of 3x3 convs, SiLU throughout."""
    backbone = CSPDarknet(depth_multiple, width_multiple, act=nn.SiLU)
    neck = PAN(backbone.out_channels, depth_multiple, act=nn.SiLU)
    head_width = scale_width(256, width_multiple)  # YOLOX: 256 channels at width 1.0
    head = AnchorFreeHead(
        neck.out_channels, num_classes, head_width, num_convs=2, depthwise=False, act=nn.SiLU
    )
    return Detector(backbone, neck, head, backbone.strides, default_imgsz=imgsz)


# Default input sizes: the nano models target CPUs (320 / 416 as NanoDet-Plus). yolo-n defaults to
# 416 because at 640 it is ~2.4x the cost for the users' CPU targets; yolo-s keeps YOLOv5's 640.
MODEL_ZOO = {
    "nano-s": partial(nano_detector, backbone_width=0.5, neck_width=96, imgsz=320),
    "nano-m": partial(nano_detector, backbone_width=1.0, neck_width=128, imgsz=416),
    "yolo-n": partial(yolo_detector, depth_multiple=0.33, width_multiple=0.25, imgsz=416),
    "yolo-s": partial(yolo_detector, depth_multiple=0.33, width_multiple=0.50, imgsz=640),
}


def zoo_entry(table: dict[str, partial], name: str, kind: str = "model") -> partial:
    """``table[name]``, or an UnknownModelError that lists close matches and every name."""
    if name in table:
        return table[name]
    matches = difflib.get_close_matches(name, list(table), n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(matches)}? " if matches else ""
    raise UnknownModelError(
        f"unknown {kind} {name!r}; {hint}available models: {', '.join(table)} "
        "(run `edgevision models` for the table)"
    )


def _entry(name: str) -> partial:
    return zoo_entry(MODEL_ZOO, name)


def build_model(name: str, num_classes: int) -> Detector:
    """Build a zoo model with freshly initialised weights.

    Raises:
        UnknownModelError: ``name`` is not in the zoo; the message lists close matches.
    """
    return _entry(name)(num_classes)


def default_imgsz(name: str) -> int:
    """The square input size a zoo model is designed and benchmarked at."""
    return int(_entry(name).keywords["imgsz"])


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not; BN running statistics are buffers, not counted)."""
    return sum(parameter.numel() for parameter in model.parameters())


def count_flops(model: nn.Module, imgsz: int | tuple[int, int]) -> int:
    """FLOPs (2 x MACs) of one forward pass at batch 1, counted by ``FlopCounterMode``.

    The model is run in eval mode and restored to its previous mode afterwards.
    """
    height, width = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    parameter = next(model.parameters())
    images = torch.zeros(1, 3, height, width, device=parameter.device, dtype=parameter.dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(images)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def list_models(num_classes: int = 80) -> list[dict]:
    """The zoo as table rows: name, task, params, flops (int) and gflops at the default size, imgsz.

    ``num_classes`` only changes the size of the class predictors (80 = COCO, the usual basis for
    comparing with published models).
    """
    rows = []
    for name in MODEL_ZOO:
        # On the meta device nothing is allocated or computed: shapes alone give the FLOPs.
        with torch.device("meta"):
            model = build_model(name, num_classes)
        imgsz = default_imgsz(name)
        flops = count_flops(model, imgsz)
        rows.append(
            {
                "name": name,
                "task": "detect",
                "params": count_parameters(model),
                "flops": flops,
                "gflops": flops / 1e9,
                "imgsz": imgsz,
            }
        )
    return rows
