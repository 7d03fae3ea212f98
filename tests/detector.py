"""A small detector checkpoint with many confident, well-spread detections, built in code.

A freshly initialised detector scores every point near its 0.01 class prior, so nothing passes
``conf`` and a parity check would compare empty lists. Here the BatchNorm statistics are set from
a few random batches (unit-scale features, non-trivial folding) and the class predictors get
large random weights, so each image yields dozens of detections of several classes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from edgevision.engine.checkpoint import save_checkpoint
from edgevision.models.zoo import build_model

CLASS_NAMES = ["circle", "cross", "ring"]
IMGSZ = 128


def biased_detector(name: str = "nano-s", seed: int = 0) -> nn.Module:
    """A zoo detector (3 classes) in eval mode whose outputs spread over the score range."""
    torch.manual_seed(seed)
    model = build_model(name, len(CLASS_NAMES))
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # cumulative average: running stats = mean over the batches
    for level in model.head.levels:
        nn.init.normal_(level.cls_pred.weight, std=0.05)
        nn.init.constant_(level.cls_pred.bias, -3.0)
        nn.init.normal_(level.box_pred.weight, std=0.1)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(4, 3, IMGSZ, IMGSZ))
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_var.clamp_(min=0.05)
    return model


def write_checkpoint(path: Path, name: str = "nano-s") -> Path:
    """An edgevision checkpoint of :func:`biased_detector` at ``path``."""
    model = biased_detector(name)
    return save_checkpoint(
        path, {"task": "detect", "meta": meta_for(name), "model": model.state_dict(), "ema": None}
    )


def fused_copy(model: nn.Module) -> nn.Module:
    """A Conv+BN-folded deep copy (what export traces)."""
    import copy

    from edgevision.models.blocks import fuse_conv_bn

    return fuse_conv_bn(copy.deepcopy(model)).eval()


def meta_for(name: str = "nano-s") -> dict:
    return {
        "model_name": name,
        "num_classes": len(CLASS_NAMES),
        "class_names": CLASS_NAMES,
        "imgsz": IMGSZ,
        "task": "detect",
    }


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """PyTorch on one thread during these tests: on a shared 2-core machine, two OpenMP threads
    waiting on each other's time slices make a 10 ms forward take seconds."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
