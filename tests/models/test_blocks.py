"""Blocks: shapes, exact behaviour of attention / shortcut / SPPF, and conv-BN folding parity."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn

from edgevision.models.backbones import shufflenet_v2
from edgevision.models.blocks import (
    C3,
    CBAM,
    SPPF,
    Bottleneck,
    ConvBNAct,
    DepthwiseSeparable,
    SqueezeExcite,
    _fold_bn,
    fuse_conv_bn,
)
from edgevision.models.heads.anchor_free import FusedBranches
from edgevision.models.zoo import build_model
from tests.models.cases import assert_parity, randomise_for_parity


@pytest.mark.parametrize(
    ("act", "expected"),
    [
        (nn.ReLU, nn.ReLU),
        (nn.SiLU, nn.SiLU),
        (nn.Hardswish, nn.Hardswish),
        (partial(nn.LeakyReLU, 0.1), nn.LeakyReLU),
        (None, nn.Identity),
    ],
)
def test_conv_bn_act_activation_and_stride(act, expected):
    block = ConvBNAct(3, 8, 3, stride=2, act=act)
    assert isinstance(block.act, expected)
    assert block.conv.bias is None
    assert block(torch.rand(2, 3, 32, 48)).shape == (2, 8, 16, 24)


def test_depthwise_separable_parameter_count():
    block = DepthwiseSeparable(16, 32, 3)
    # depthwise 16*9, BN 2*16, pointwise 16*32, BN 2*32: no biases, no hidden expansion.
    assert sum(p.numel() for p in block.parameters()) == 16 * 9 + 32 + 16 * 32 + 64
    assert block(torch.rand(1, 16, 10, 10)).shape == (1, 32, 10, 10)


def _zero_parameters(module: nn.Module) -> nn.Module:
    for parameter in module.parameters():
        nn.init.zeros_(parameter)
    return module


def test_squeeze_excite_gate_is_half_when_weights_are_zero():
    x = torch.rand(2, 16, 5, 5)
    # hard-sigmoid(0) = 0.5 exactly.
    torch.testing.assert_close(_zero_parameters(SqueezeExcite(16))(x), 0.5 * x)


def test_cbam_gates_are_half_when_weights_are_zero():
    x = torch.rand(2, 16, 5, 5)
    # channel gate sigmoid(0) = 0.5, then spatial gate sigmoid(0) = 0.5.
    torch.testing.assert_close(_zero_parameters(CBAM(16))(x), 0.25 * x)


def test_depthwise_separable_with_attention_keeps_shape():
    block = DepthwiseSeparable(16, 24, act=nn.Hardswish, attention=SqueezeExcite)
    assert isinstance(block.attention, SqueezeExcite)
    assert block(torch.rand(1, 16, 8, 8)).shape == (1, 24, 8, 8)


def test_bottleneck_shortcut_adds_input():
    block = Bottleneck(8, 8, shortcut=True).eval()
    # Zeroing the last BN makes the residual branch SiLU(0) = 0, leaving exactly the input.
    _zero_parameters(block.conv2.bn)
    x = torch.rand(1, 8, 6, 6)
    torch.testing.assert_close(block(x), x)
    assert not Bottleneck(8, 16).add


def test_c3_shapes():
    assert C3(16, 32, num_blocks=2)(torch.rand(2, 16, 8, 12)).shape == (2, 32, 8, 12)


def test_sppf_equals_spp_with_5_9_13_pools():
    block = SPPF(8, 16).eval()
    x = torch.rand(1, 8, 20, 20)
    hidden = block.conv1(x)
    pools = [nn.functional.max_pool2d(hidden, k, 1, k // 2) for k in (5, 9, 13)]
    expected = block.conv2(torch.cat([hidden, *pools], dim=1))
    torch.testing.assert_close(block(x), expected)


@pytest.mark.parametrize("name", ["nano-s", "yolo-n"])
def test_fuse_conv_bn_matches_unfused_detector(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=5).eval()
    randomise_for_parity(model)
    images = torch.rand(2, 3, 96, 128)
    convs_before = sum(isinstance(m, nn.Conv2d) for m in model.head.modules())
    with torch.no_grad():
        expected = model(images)
        fused = fuse_conv_bn(model)
        actual = fused(images)
    assert fused is model
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert_parity(actual, expected)
    convs_after = sum(isinstance(m, nn.Conv2d) for m in model.head.modules())
    if name == "nano-s":  # depthwise branches: box + class run as one path, half the convs
        assert all(isinstance(level.fused, FusedBranches) for level in model.head.levels)
        assert not any(hasattr(level, "cls_pred") for level in model.head.levels)
        assert convs_before - convs_after == 3 * 5  # per level 2 x (2 dw + 2 pw) + 2 preds -> 5
        with torch.no_grad():
            assert_parity(fuse_conv_bn(model)(images), expected)  # idempotent
    else:  # full 3x3 branches are left as they are
        assert convs_after == convs_before
        assert not any(hasattr(level, "fused") for level in model.head.levels)


def test_fused_branches_need_folded_depthwise_branches():
    model = build_model("nano-s", num_classes=3).eval()
    level = model.head.levels[0]
    assert not FusedBranches.fusable(level)  # BN not folded yet: nothing to fuse
    level.fuse_branches()
    assert not hasattr(level, "fused") and hasattr(level, "cls_branch")
    for unit in [*level.box_branch, *level.cls_branch]:  # fold BN by hand: now fusable
        for part in (unit.depthwise, unit.pointwise):
            part.conv, part.bn = _fold_bn(part.conv, part.bn), nn.Identity()
    assert FusedBranches.fusable(level)
    level.cls_branch[0].pointwise.act = nn.ReLU()  # the fused path has one activation per conv
    assert not FusedBranches.fusable(level)


def test_fuse_conv_bn_handles_torchvision_sequential_layout():
    torch.manual_seed(0)
    model = shufflenet_v2(0.5, num_classes=10).eval()
    randomise_for_parity(model, seed=1)
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(images)
        actual = fuse_conv_bn(model)(images)
    assert isinstance(model.stage2[0].branch1[1], nn.Identity)
    assert model.stage2[0].branch1[0].bias is not None
    assert_parity(actual, expected)
