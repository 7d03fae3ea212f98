"""The classification models of the zoo: one literal dict of ``partial``s, as ``models/zoo.py``.

Every entry builds a torchvision-layout network (state-dict keys and shapes identical to
torchvision's model of the same name), so ImageNet weights a user downloaded for torchvision load
with ``--weights``. The dict has the shape of ``zoo.MODEL_ZOO`` (called with ``num_classes``, an
``imgsz`` keyword giving the default input size) so the two can be merged into one table.
"""

from __future__ import annotations

from functools import partial

from torch import nn

from edgevision.models.backbones.mobilenetv2 import MobileNetV2, mobilenet_v2
from edgevision.models.backbones.resnet import ResNet, resnet
from edgevision.models.backbones.shufflenetv2 import ShuffleNetV2, shufflenet_v2
from edgevision.models.zoo import zoo_entry

CLASSIFIER_IMGSZ = 224  # ImageNet training size; transfer learning works best near it


def shufflenet_classifier(
    num_classes: int, *, width_multiple: float, imgsz: int = CLASSIFIER_IMGSZ
) -> ShuffleNetV2:
    """ShuffleNetV2 classifier (``imgsz`` is zoo metadata: the network takes any input size)."""
    del imgsz
    return shufflenet_v2(width_multiple, num_classes=num_classes)


def mobilenet_classifier(
    num_classes: int, *, width_multiple: float = 1.0, imgsz: int = CLASSIFIER_IMGSZ
) -> MobileNetV2:
    """MobileNetV2 classifier (``imgsz`` is zoo metadata: the network takes any input size)."""
    del imgsz
    return mobilenet_v2(num_classes, width_multiple)


def resnet_classifier(num_classes: int, *, depth: int, imgsz: int = CLASSIFIER_IMGSZ) -> ResNet:
    """ResNet classifier (``imgsz`` is zoo metadata: the network takes any input size)."""
    del imgsz
    return resnet(depth, num_classes)


CLASSIFIER_ZOO = {
    "cls-shufflenetv2-x0.5": partial(shufflenet_classifier, width_multiple=0.5, imgsz=224),
    "cls-shufflenetv2-x1.0": partial(shufflenet_classifier, width_multiple=1.0, imgsz=224),
    "cls-mobilenetv2": partial(mobilenet_classifier, width_multiple=1.0, imgsz=224),
    "cls-resnet18": partial(resnet_classifier, depth=18, imgsz=224),
}


def _entry(name: str) -> partial:
    return zoo_entry(CLASSIFIER_ZOO, name, "classification model")


def build_classifier(name: str, num_classes: int) -> nn.Module:
    """A zoo classifier with fresh weights; forward maps (B, 3, H, W) to (B, num_classes) logits.

    Raises:
        UnknownModelError: ``name`` is not a classifier of the zoo; the message lists close matches.
    """
    return _entry(name)(num_classes)


def default_classifier_imgsz(name: str) -> int:
    """The square input size a zoo classifier is trained and benchmarked at by default."""
    return int(_entry(name).keywords["imgsz"])


def head_module_name(model: nn.Module) -> str:
    """Name of the final ``nn.Linear`` (``"fc"`` or ``"classifier.1"``): the part that is replaced
    when the class count changes and that ``--head-lr-mult`` speeds up."""
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not names:
        raise ValueError(f"{type(model).__name__} has no nn.Linear classifier layer")
    return names[-1]


def head_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Parameter-name prefixes of the classifier head: the top-level module holding the final
    linear layer (``("fc.",)`` for ShuffleNetV2 / ResNet, ``("classifier.",)`` for MobileNetV2)."""
    return (head_module_name(model).split(".")[0] + ".",)
