"""The model zoo: the one table where a name becomes a model, for every task.

``MODEL_ZOO`` is a literal dict from name to a :class:`ModelSpec`: the task that trains and runs
the model, a ``functools.partial`` of a plain constructor (called with the class count, and for
pose models ``num_keypoints``) and the default input size. Nothing registers itself at import
time. FLOPs follow the detection-paper convention FLOPs = 2 x multiply-accumulates (counted by
``torch.utils.flop_counter``: convolutions and matrix products only; BN, activations, pooling,
resizing and additions are not counted).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from edgevision.core.errors import ConfigError, UnknownModelError
from edgevision.models.anchor_detector import tiny_anchor_detector
from edgevision.models.backbones.cspdarknet import CSPDarknet, scale_width
from edgevision.models.backbones.mobilenetv2 import mobilenet_v2
from edgevision.models.backbones.resnet import resnet
from edgevision.models.backbones.shufflenetv2 import shufflenet_v2
from edgevision.models.detector import Detector
from edgevision.models.heads.anchor_free import AnchorFreeHead
from edgevision.models.heads.pose import PoseHead
from edgevision.models.necks.pan import PAN, LightPAN
from edgevision.models.rep_detector import rep_detector
from edgevision.models.ssd_detector import ssd_grid, ssdlite_mnv2

# NanoDet-Plus's choice for neck and head: unlike ReLU it never leaves a thin head's channels dead,
# and ONNX Runtime fuses it into the conv just the same.
_NANO_ACT = partial(nn.LeakyReLU, 0.1)
# Keypoints of a pose model when none are given: COCO's 17 person keypoints, the layout the zoo
# table's params and FLOPs are reported at and the one most pose datasets follow.
DEFAULT_KEYPOINTS = 17


def _nano_features(backbone_width: float, neck_width: int) -> tuple[nn.Module, nn.Module]:
    """ShuffleNetV2 (stages 2-4, no conv5) and LightPAN: the nano models' feature pyramid."""
    backbone = shufflenet_v2(backbone_width, out_stages=(2, 3, 4))
    return backbone, LightPAN(backbone.out_channels, neck_width, act=_NANO_ACT)


def _yolo_features(depth_multiple: float, width_multiple: float) -> tuple[nn.Module, nn.Module]:
    """CSP-Darknet and PAN (YOLOv5 v6), SiLU throughout: the yolo models' feature pyramid."""
    backbone = CSPDarknet(depth_multiple, width_multiple, act=nn.SiLU)
    return backbone, PAN(backbone.out_channels, depth_multiple, act=nn.SiLU)


def nano_detector(num_classes: int, *, backbone_width: float, neck_width: int) -> Detector:
    """ShuffleNetV2 (stages 2-4, no conv5) + LightPAN + depthwise decoupled head (2 convs/branch)."""
    backbone, neck = _nano_features(backbone_width, neck_width)
    head = AnchorFreeHead(
        neck.out_channels, num_classes, neck_width, num_convs=2, depthwise=True, act=_NANO_ACT
    )
    return Detector(backbone, neck, head, backbone.strides)


def yolo_detector(num_classes: int, *, depth_multiple: float, width_multiple: float) -> Detector:
    """CSP-Darknet + PAN (YOLOv5 v6) + YOLOX-style decoupled head of 3x3 convs, SiLU throughout."""
    backbone, neck = _yolo_features(depth_multiple, width_multiple)
    head_width = scale_width(256, width_multiple)  # YOLOX: 256 channels at width 1.0
    head = AnchorFreeHead(
        neck.out_channels, num_classes, head_width, num_convs=2, depthwise=False, act=nn.SiLU
    )
    return Detector(backbone, neck, head, backbone.strides)


def nano_pose(
    num_classes: int,
    num_keypoints: int = DEFAULT_KEYPOINTS,
    *,
    backbone_width: float,
    neck_width: int,
) -> Detector:
    """The nano detector with a :class:`PoseHead`: same backbone, neck and head branches, plus a
    depthwise keypoint branch per level."""
    backbone, neck = _nano_features(backbone_width, neck_width)
    head = PoseHead(
        neck.out_channels,
        num_classes,
        num_keypoints,
        neck_width,
        num_convs=2,
        depthwise=True,
        act=_NANO_ACT,
    )
    return Detector(backbone, neck, head, backbone.strides)


def yolo_pose(
    num_classes: int,
    num_keypoints: int = DEFAULT_KEYPOINTS,
    *,
    depth_multiple: float,
    width_multiple: float,
) -> Detector:
    """The yolo detector with a :class:`PoseHead` (3x3 keypoint branch, as YOLOv8-pose's)."""
    backbone, neck = _yolo_features(depth_multiple, width_multiple)
    head_width = scale_width(256, width_multiple)
    head = PoseHead(
        neck.out_channels,
        num_classes,
        num_keypoints,
        head_width,
        num_convs=2,
        depthwise=False,
        act=nn.SiLU,
    )
    return Detector(backbone, neck, head, backbone.strides)


def shufflenet_classifier(num_classes: int, *, width_multiple: float) -> nn.Module:
    """ShuffleNetV2 classifier, torchvision's layout (ImageNet ``.pth`` files load by name)."""
    return shufflenet_v2(width_multiple, num_classes=num_classes)


def mobilenet_classifier(num_classes: int, *, width_multiple: float = 1.0) -> nn.Module:
    """MobileNetV2 classifier, torchvision's layout."""
    return mobilenet_v2(num_classes, width_multiple)


def resnet_classifier(num_classes: int, *, depth: int) -> nn.Module:
    """ResNet classifier, torchvision's layout."""
    return resnet(depth, num_classes)


@dataclass(frozen=True)
class ModelSpec:
    """One zoo entry."""

    task: str  # the task folder (edgevision/tasks/<task>) that trains, validates and runs it
    build: Callable[..., nn.Module]  # called with the class count (pose: and num_keypoints)
    imgsz: int  # default square input size for train, predict, export and bench


# Default input sizes: the nano models target CPUs (320 / 416 as NanoDet-Plus). yolo-n defaults to
# 416 because at 640 it is ~2.4x the cost for the users' CPU targets; yolo-s keeps YOLOv5's 640.
# Classifiers default to ImageNet's 224, where transfer learning from ImageNet weights works best.
MODEL_ZOO: dict[str, ModelSpec] = {
    "nano-s": ModelSpec("detect", partial(nano_detector, backbone_width=0.5, neck_width=96), 320),
    "nano-m": ModelSpec("detect", partial(nano_detector, backbone_width=1.0, neck_width=128), 416),
    "yolo-n": ModelSpec(
        "detect", partial(yolo_detector, depth_multiple=0.33, width_multiple=0.25), 416
    ),
    "yolo-s": ModelSpec(
        "detect", partial(yolo_detector, depth_multiple=0.33, width_multiple=0.50), 640
    ),
    # The other families users come with: anchor-based YOLOv4-tiny on the data's k-means anchors.
    "yolo-tiny-anchor": ModelSpec(
        "detect", partial(tiny_anchor_detector, width_multiple=0.75), 416
    ),
    # RepVGG blocks (3x3 + 1x1 + identity while training, one 3x3 conv once exported) on an
    # EfficientRep backbone and Rep-PAN neck, YOLOv6's design; rep-s at 416 as yolo-n (CPU cost).
    "rep-n": ModelSpec(
        "detect", partial(rep_detector, depth_multiple=0.33, width_multiple=0.25), 320
    ),
    "rep-s": ModelSpec(
        "detect", partial(rep_detector, depth_multiple=0.33, width_multiple=0.50), 416
    ),
    # SSDLite (MobileNetV2, 6 levels, hard-negative mining) and the fastai multi-grid SSD (focal).
    "ssdlite-mnv2": ModelSpec("detect", partial(ssdlite_mnv2, width_multiple=1.0), 320),
    "ssd-grid": ModelSpec("detect", ssd_grid, 320),
    "cls-shufflenetv2-x0.5": ModelSpec(
        "classify", partial(shufflenet_classifier, width_multiple=0.5), 224
    ),
    "cls-shufflenetv2-x1.0": ModelSpec(
        "classify", partial(shufflenet_classifier, width_multiple=1.0), 224
    ),
    "cls-mobilenetv2": ModelSpec(
        "classify", partial(mobilenet_classifier, width_multiple=1.0), 224
    ),
    "cls-resnet18": ModelSpec("classify", partial(resnet_classifier, depth=18), 224),
    # Pose: the detectors' backbones, necks and sizes with a keypoint head.
    "nano-s-pose": ModelSpec("pose", partial(nano_pose, backbone_width=0.5, neck_width=96), 320),
    "nano-m-pose": ModelSpec("pose", partial(nano_pose, backbone_width=1.0, neck_width=128), 416),
    "yolo-n-pose": ModelSpec(
        "pose", partial(yolo_pose, depth_multiple=0.33, width_multiple=0.25), 416
    ),
}

# Class counts the zoo table reports params and FLOPs at: the benchmarks models are compared on.
# Pose: COCO keypoints' one class (person), with DEFAULT_KEYPOINTS keypoints.
REFERENCE_CLASSES = {"detect": 80, "classify": 1000, "pose": 1}  # COCO, ImageNet, COCO person


def zoo_entry(name: str) -> ModelSpec:
    """``MODEL_ZOO[name]``, or an UnknownModelError that lists close matches and every name."""
    if name in MODEL_ZOO:
        return MODEL_ZOO[name]
    matches = difflib.get_close_matches(name, list(MODEL_ZOO), n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(matches)}? " if matches else ""
    raise UnknownModelError(
        f"unknown model {name!r}; {hint}available models: {', '.join(MODEL_ZOO)} "
        "(run `edgevision models` for the table)"
    )


def model_names(task: str | None = None) -> list[str]:
    """Zoo names, in table order; only those of ``task`` when given."""
    return [name for name, spec in MODEL_ZOO.items() if task in (None, spec.task)]


def build_model(name: str, num_classes: int, num_keypoints: int | None = None) -> nn.Module:
    """Build a zoo model with freshly initialised weights.

    Args:
        name: zoo name.
        num_classes: object or image classes.
        num_keypoints: keypoints per object; pose models only (None: :data:`DEFAULT_KEYPOINTS`).
            Other models take None or 0: they predict no keypoints.

    Raises:
        UnknownModelError: ``name`` is not in the zoo; the message lists close matches.
        ConfigError: ``num_keypoints`` for a model without a keypoint head, or below 1.
    """
    spec = zoo_entry(name)
    if spec.task != "pose":
        if num_keypoints:
            raise ConfigError(
                f"{name} is a {spec.task} model and predicts no keypoints (num_keypoints="
                f"{num_keypoints}); pick a pose model: {', '.join(model_names('pose'))}"
            )
        return spec.build(num_classes)
    if num_keypoints is None:
        num_keypoints = DEFAULT_KEYPOINTS
    if num_keypoints < 1:
        raise ConfigError(f"{name}: num_keypoints must be at least 1, got {num_keypoints}")
    return spec.build(num_classes, num_keypoints=num_keypoints)


def default_imgsz(name: str) -> int:
    """The square input size a zoo model is designed and benchmarked at."""
    return zoo_entry(name).imgsz


def task_of_model(name: str) -> str:
    """The task a zoo model belongs to ("detect", "classify", ...)."""
    return zoo_entry(name).task


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


def list_models(task: str | None = None) -> list[dict]:
    """The zoo as table rows: name, task, params, flops (int) and gflops at the default size, imgsz.

    Params and FLOPs are counted at :data:`REFERENCE_CLASSES` classes (80 for detectors, as COCO;
    1000 for classifiers, as ImageNet), the usual basis for comparing with published models.
    """
    rows = []
    for name in model_names(task):
        spec = MODEL_ZOO[name]
        # On the meta device nothing is allocated or computed: shapes alone give the FLOPs.
        with torch.device("meta"):
            model = spec.build(REFERENCE_CLASSES[spec.task])
        flops = count_flops(model, spec.imgsz)
        rows.append(
            {
                "name": name,
                "task": spec.task,
                "params": count_parameters(model),
                "flops": flops,
                "gflops": flops / 1e9,
                "imgsz": spec.imgsz,
            }
        )
    return rows
