"""RepVGG blocks and the rep detector family: branch sums against a hand computation, fused ==
unfused on random BN statistics, the fused structure, idempotence, conv-BN folding on top,
ONNX Runtime parity of the fused graph, and training in channels_last (the few training steps
that lower the loss are tests/models/test_zoo.py's, for every detector)."""

from __future__ import annotations

import copy
import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional

from edgevision.models.backbones.efficientrep import EfficientRep
from edgevision.models.blocks import fuse_conv_bn
from edgevision.models.blocks_rep import RepBlock, RepConv, is_reparameterized, reparameterize
from edgevision.models.necks.rep_pan import RepPAN
from edgevision.models.rep_detector import rep_detector
from tests.models.cases import assert_parity, randomise_for_parity

NUM_CLASSES = 3


def _rep_n() -> nn.Module:
    torch.manual_seed(0)
    return rep_detector(NUM_CLASSES, depth_multiple=0.33, width_multiple=0.25)


@torch.no_grad()
def _randomise_batch_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random affine terms and running statistics in every BN, far from the identity init."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            shape = module.running_mean.shape
            module.weight.copy_(torch.rand(shape, generator=generator) + 0.5)
            module.bias.copy_(torch.randn(shape, generator=generator) * 0.3)
            module.running_mean.copy_(torch.randn(shape, generator=generator) * 0.3)
            module.running_var.copy_(torch.rand(shape, generator=generator) * 1.5 + 0.5)
    return model.eval()


@torch.no_grad()
def _jitter_running_stats(model: nn.Module, seed: int = 1) -> nn.Module:
    """Move calibrated statistics off what the batch gave (mean by 0.2 sd, var by 0.7-1.4x)."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            shape = module.running_mean.shape
            spread = module.running_var.sqrt()
            module.running_mean.add_(torch.randn(shape, generator=generator) * 0.2 * spread)
            module.running_var.mul_(torch.rand(shape, generator=generator) * 0.7 + 0.7)
    return model


def _eval_bn(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return (x - bn.running_mean[:, None, None]) * scale[:, None, None] + bn.bias[:, None, None]


def _rep_convs(model: nn.Module) -> list[RepConv]:
    return [module for module in model.modules() if isinstance(module, RepConv)]


@pytest.mark.parametrize(
    ("in_channels", "out_channels", "stride", "has_identity"),
    [(8, 8, 1, True), (8, 16, 1, False), (8, 8, 2, False), (6, 16, 2, False)],
)
def test_rep_conv_is_the_branch_sum_and_fuses_to_it(
    in_channels, out_channels, stride, has_identity
):
    torch.manual_seed(0)
    block = _randomise_batch_norms(RepConv(in_channels, out_channels, stride))
    assert (block.identity is not None) == has_identity
    x = torch.randn(2, in_channels, 10, 14)
    with torch.no_grad():
        dense = _eval_bn(
            functional.conv2d(x, block.dense[0].weight, None, stride, 1), block.dense[1]
        )
        pointwise = _eval_bn(
            functional.conv2d(x, block.pointwise[0].weight, None, stride), block.pointwise[1]
        )
        identity = _eval_bn(x, block.identity) if has_identity else 0.0
        expected = functional.relu(dense + pointwise + identity)
        assert expected.shape == (2, out_channels, 10 // stride, 14 // stride)
        assert_parity(block(x), expected)
        block.reparameterize()
        assert_parity(block(x), expected)


def test_rep_conv_rejects_other_strides():
    with pytest.raises(ValueError, match="stride must be 1 or 2, got 3"):
        RepConv(8, 8, stride=3)


def test_rep_block_chains_its_convs():
    block = RepBlock(12, 8, num_blocks=3)
    assert [(conv.in_channels, conv.out_channels) for conv in block] == [(12, 8), (8, 8), (8, 8)]
    assert [conv.identity is not None for conv in block] == [False, True, True]
    assert block(torch.rand(1, 12, 6, 6)).shape == (1, 8, 6, 6)


def test_backbone_and_neck_shapes_and_channels():
    backbone = EfficientRep(0.33, 0.25)
    assert backbone.out_channels == [64, 128, 256] and backbone.strides == [8, 16, 32]
    assert [len(stage[1]) for stage in (backbone.stage1, backbone.stage2, backbone.stage3)] == [
        1,
        2,
        3,
    ]
    neck = RepPAN(backbone.out_channels, num_blocks=1)
    assert neck.out_channels == [32, 64, 128]
    with torch.no_grad():
        features = backbone.forward_features(torch.rand(2, 3, 64, 96))
        assert [tuple(f.shape) for f in features] == [
            (2, 64, 8, 12),
            (2, 128, 4, 6),
            (2, 256, 2, 3),
        ]
        outputs = neck(features)
    assert [tuple(f.shape) for f in outputs] == [(2, 32, 8, 12), (2, 64, 4, 6), (2, 128, 2, 3)]


def test_rep_n_fused_equals_unfused_with_random_bn_statistics():
    model = _jitter_running_stats(randomise_for_parity(_rep_n()))
    fused = reparameterize(copy.deepcopy(model))
    images = torch.rand(2, 3, 128, 96, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected, actual = model(images), fused(images)
    assert expected.shape == (2, 16 * 12 + 8 * 6 + 4 * 3, 4 + NUM_CLASSES)
    # The output moves with the input far beyond the tolerance, so a wrong fold cannot hide.
    assert (expected[0] - expected[1]).abs().max() > 0.05
    assert_parity(actual, expected)


def test_reparameterize_leaves_one_biased_3x3_conv_per_rep_conv():
    model = _rep_n().eval()
    blocks = _rep_convs(model)
    assert not is_reparameterized(model)
    convs_before = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    assert reparameterize(model) is model
    assert is_reparameterized(model) and _rep_convs(model) == blocks
    for block in blocks:
        assert block.dense is None and block.pointwise is None and block.identity is None
        inner = [m for m in block.modules() if m is not block and not isinstance(m, nn.ReLU)]
        assert inner == [block.fused]
        assert type(block.fused) is nn.Conv2d and block.fused.kernel_size == (3, 3)
        assert block.fused.bias is not None
    # Two convs per block became one; the head's and neck's ConvBNAct convs are untouched.
    convs_after = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    assert convs_after == convs_before - len(blocks)


def test_is_reparameterized_is_true_without_rep_convs():
    assert is_reparameterized(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)))


def test_reparameterize_twice_changes_nothing():
    model = randomise_for_parity(_rep_n())
    reparameterize(model)
    state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    fused_convs = [block.fused for block in _rep_convs(model)]
    reparameterize(model)
    assert [block.fused for block in _rep_convs(model)] == fused_convs
    assert state.keys() == model.state_dict().keys()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[name]), name


@pytest.mark.parametrize("order", ["reparameterize_first", "fuse_conv_bn_first"])
def test_fuse_conv_bn_and_reparameterize_in_either_order(order):
    """The export path folds Conv+BN on a copy; either order gives the eval model's output and
    leaves no BatchNorm anywhere."""
    model = _jitter_running_stats(randomise_for_parity(_rep_n()))
    deployed = copy.deepcopy(model)
    if order == "reparameterize_first":
        fuse_conv_bn(reparameterize(deployed))
    else:
        reparameterize(fuse_conv_bn(deployed))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in deployed.modules())
    images = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert_parity(deployed(images), model(images))


def test_fused_rep_n_onnx_runtime_parity_at_two_sizes(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    model = randomise_for_parity(_rep_n())
    fused = fuse_conv_bn(reparameterize(copy.deepcopy(model)))
    path = tmp_path / "rep-n.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            fused, (torch.rand(1, 3, 128, 128),), str(path), opset_version=17, dynamo=False,
            input_names=["images"], output_names=["raw"],
            dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}, "raw": {0: "batch", 1: "points"}},
        )  # fmt: skip
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, height, width in [(1, 128, 128), (2, 96, 160)]:
        images = torch.rand(batch, 3, height, width)
        with torch.no_grad():
            expected = model(images).numpy()  # the unfused model: fusing and export at once
        (actual,) = session.run(None, {"images": images.numpy()})
        assert_parity(actual, expected)


def test_rep_n_trains_in_channels_last_like_the_trainer():
    """The trainer feeds channels_last batches. PyTorch 2.13's CPU backward of a stride-2 1x1 conv
    on such input with 3 channels corrupts the heap and aborts the process, so the stem's 1x1
    branch subsamples and convolves at stride 1; run in a child process so a regression fails this
    test instead of killing the suite."""
    code = (
        "import torch\n"
        "from edgevision.models.zoo import build_model\n"
        "torch.manual_seed(0)\n"
        "model = build_model('rep-n', 6).train().to(memory_format=torch.channels_last)\n"
        "for _ in range(5):\n"
        "    x = torch.rand(4, 3, 64, 64).contiguous(memory_format=torch.channels_last)\n"
        "    model(x).float().mean().backward()\n"
        "print('trained')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0 and "trained" in done.stdout, done.stderr[-2000:]
