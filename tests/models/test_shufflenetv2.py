"""ShuffleNetV2: torchvision-compatible names, shapes and parameter counts; backbone mode."""

from __future__ import annotations

import pytest
import torch

from edgevision.models.backbones import ShuffleNetV2, shufflenet_v2
from edgevision.models.backbones.shufflenetv2 import STAGE_CHANNELS, shuffle_order

# torchvision's published ``num_params`` of shufflenet_v2_x*_0 (ImageNet, 1000 classes).
TORCHVISION_PARAMS = {0.5: 1_366_792, 1.0: 2_278_604, 1.5: 3_503_624, 2.0: 7_393_996}


@pytest.mark.parametrize(("width", "expected"), sorted(TORCHVISION_PARAMS.items()))
def test_parameter_count_equals_torchvision(width, expected):
    model = shufflenet_v2(width, num_classes=1000)
    assert sum(p.numel() for p in model.parameters()) == expected


def _bn_keys(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    keys = {f"{prefix}.{name}": (channels,) for name in ("weight", "bias")}
    keys |= {f"{prefix}.{name}": (channels,) for name in ("running_mean", "running_var")}
    keys[f"{prefix}.num_batches_tracked"] = ()
    return keys


def _torchvision_layout(channels: tuple[int, ...], num_classes: int) -> dict[str, tuple[int, ...]]:
    """Key -> shape of torchvision's ShuffleNetV2 state dict, written from its module layout:
    conv1 = (Conv, BN, ReLU); stageN.i.branch1 = (dw, BN, 1x1, BN, ReLU) for i == 0;
    stageN.i.branch2 = (1x1, BN, ReLU, dw, BN, 1x1, BN, ReLU); conv5 = (Conv, BN, ReLU); fc."""
    keys = {"conv1.0.weight": (channels[0], 3, 3, 3)} | _bn_keys("conv1.1", channels[0])
    in_channels = channels[0]
    for stage, (repeats, out_channels) in enumerate(
        zip((4, 8, 4), channels[1:4], strict=True), start=2
    ):
        half = out_channels // 2
        for unit in range(repeats):
            p = f"stage{stage}.{unit}"
            if unit == 0:
                keys[f"{p}.branch1.0.weight"] = (in_channels, 1, 3, 3)
                keys |= _bn_keys(f"{p}.branch1.1", in_channels)
                keys[f"{p}.branch1.2.weight"] = (half, in_channels, 1, 1)
                keys |= _bn_keys(f"{p}.branch1.3", half)
            keys[f"{p}.branch2.0.weight"] = (half, in_channels if unit == 0 else half, 1, 1)
            keys |= _bn_keys(f"{p}.branch2.1", half)
            keys[f"{p}.branch2.3.weight"] = (half, 1, 3, 3)
            keys |= _bn_keys(f"{p}.branch2.4", half)
            keys[f"{p}.branch2.5.weight"] = (half, half, 1, 1)
            keys |= _bn_keys(f"{p}.branch2.6", half)
        in_channels = out_channels
    keys["conv5.0.weight"] = (channels[4], channels[3], 1, 1)
    keys |= _bn_keys("conv5.1", channels[4])
    return keys | {"fc.weight": (num_classes, channels[4]), "fc.bias": (num_classes,)}


@pytest.mark.parametrize("width", [0.5, 1.0])
def test_state_dict_keys_and_shapes_match_torchvision_layout(width):
    state = shufflenet_v2(width, num_classes=1000).state_dict()
    expected = _torchvision_layout(STAGE_CHANNELS[width], 1000)
    assert {key: tuple(value.shape) for key, value in state.items()} == expected
    assert len(state) == 338


def test_hand_written_torchvision_keys_x1_0():
    state = shufflenet_v2(1.0).state_dict()
    assert list(state)[:2] == ["conv1.0.weight", "conv1.1.weight"]
    assert state["conv1.0.weight"].shape == (24, 3, 3, 3)
    assert state["stage2.0.branch1.0.weight"].shape == (24, 1, 3, 3)
    assert state["stage2.0.branch1.2.weight"].shape == (58, 24, 1, 1)
    assert state["stage2.1.branch2.0.weight"].shape == (58, 58, 1, 1)
    assert state["stage3.7.branch2.3.weight"].shape == (116, 1, 3, 3)
    assert state["stage4.3.branch2.6.running_var"].shape == (232,)
    assert state["conv5.0.weight"].shape == (1024, 464, 1, 1)
    assert state["fc.weight"].shape == (1000, 1024)
    assert "stage2.1.branch1.0.weight" not in state  # stride-1 units have an empty branch1


def test_shuffle_order_interleaves_the_groups():
    assert shuffle_order(8, 2).tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    assert shuffle_order(6, 3).tolist() == [0, 2, 4, 1, 3, 5]
    with pytest.raises(ValueError, match="cannot shuffle 7 channels in 2 groups"):
        shuffle_order(7, 2)


def test_classifier_and_backbone_modes():
    classifier = shufflenet_v2(0.5, num_classes=7)
    assert classifier(torch.rand(2, 3, 64, 64)).shape == (2, 7)
    backbone = shufflenet_v2(0.5, out_stages=(2, 3, 4))
    assert backbone.fc is None and backbone.conv5 is None
    features = backbone(torch.rand(2, 3, 128, 96))
    assert [f.shape[1] for f in features] == backbone.out_channels == [48, 96, 192]
    assert [tuple(f.shape[2:]) for f in features] == [(16, 12), (8, 6), (4, 3)]
    assert backbone.strides == [8, 16, 32]
    with_conv5 = shufflenet_v2(0.5, out_stages=(3, 4), with_conv5=True)
    assert with_conv5.out_channels == [96, 1024]
    assert [f.shape[1] for f in with_conv5(torch.rand(1, 3, 64, 64))] == [96, 1024]


def test_imagenet_weights_load_into_backbone_and_give_same_features():
    torch.manual_seed(0)
    classifier = shufflenet_v2(0.5).eval()
    backbone = shufflenet_v2(0.5, out_stages=(2, 3, 4)).eval()
    skipped = backbone.load_imagenet_state_dict(classifier.state_dict())
    assert sorted(skipped) == sorted(
        k for k in classifier.state_dict() if k.startswith(("fc.", "conv5."))
    )
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for expected, actual in zip(
            classifier.forward_features(images), backbone(images), strict=True
        ):
            torch.testing.assert_close(actual, expected)


def test_wrong_width_weights_fail_loudly():
    backbone = shufflenet_v2(1.0, out_stages=(2, 3, 4))
    with pytest.raises(RuntimeError, match="size mismatch"):
        backbone.load_imagenet_state_dict(shufflenet_v2(0.5).state_dict())


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="not one of"):
        shufflenet_v2(0.75)
    with pytest.raises(ValueError, match="out_stages"):
        ShuffleNetV2(STAGE_CHANNELS[0.5], out_stages=(1, 2))


def _textbook_unit(unit, x: torch.Tensor) -> torch.Tensor:
    """The paper's unit, written out: split (stride 1) or duplicate, concat, shuffle by reshape."""
    if unit.stride == 1:
        passthrough, transformed = x.chunk(2, dim=1)
        out = torch.cat([passthrough, unit.branch2(transformed)], dim=1)
    else:
        out = torch.cat([unit.branch1(x), unit.branch2(x)], dim=1)
    return out.unflatten(1, (2, -1)).transpose(1, 2).flatten(1, 2)


def test_units_that_shuffle_late_compute_the_textbook_network():
    """Shuffle + split done as gathers by the next unit (the exported graph's form) gives exactly
    the network whose every unit shuffles its own output (the paper's, torchvision's)."""
    torch.manual_seed(0)
    net = shufflenet_v2(0.5, num_classes=5).eval()
    for module in net.modules():  # non-trivial BN so a wrong channel order shows
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.5)
            module.weight.data.uniform_(0.5, 1.5)
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        x = net.maxpool(net.conv1(images))
        for stage in (net.stage2, net.stage3, net.stage4):
            assert [unit.shuffle_output for unit in stage] == [False] * (len(stage) - 1) + [True]
            for unit in stage:
                x = _textbook_unit(unit, x)
        expected = net.fc(net.conv5(x).mean(dim=(2, 3)))
        torch.testing.assert_close(net(images), expected, rtol=0, atol=1e-5)
    assert not any("index" in key or "order" in key for key in net.state_dict())


def test_exported_shuffle_is_gathers_not_reshapes():
    from edgevision.export.trace import trace

    net = shufflenet_v2(0.5, out_stages=(2, 3, 4)).eval()
    ops = [
        node.op_type for node in trace(net, torch.rand(1, 3, 64, 64), ["a", "b", "c"]).graph.node
    ]
    assert "Transpose" not in ops and "Split" not in ops
    assert ops.count("Gather") == 2 * (3 + 7 + 3) + 3  # 2 per stride-1 unit, 1 per stage end
