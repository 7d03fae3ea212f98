"""Zoo classifiers: torchvision parameter counts, key names and shapes, loading, forward/backward."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from edgevision.core.errors import UnknownModelError
from edgevision.models.backbones.mobilenetv2 import make_divisible
from edgevision.models.backbones.shufflenetv2 import STAGE_CHANNELS
from edgevision.models.classifier import head_module_name, head_prefixes
from edgevision.models.zoo import build_model as build_classifier
from edgevision.models.zoo import count_flops, model_names
from edgevision.models.zoo import default_imgsz as default_classifier_imgsz
from tests.models.cases import randomise_for_parity
from tests.models.test_shufflenetv2 import _bn_keys
from tests.models.test_shufflenetv2 import _torchvision_layout as shufflenet_layout

# torchvision's published ``num_params`` (ImageNet weights, 1000 classes).
TORCHVISION_PARAMS = {
    "cls-shufflenetv2-x0.5": 1_366_792,
    "cls-shufflenetv2-x1.0": 2_278_604,
    "cls-mobilenetv2": 3_504_872,
    "cls-resnet18": 11_689_512,
}
NAMES = model_names("classify")


@pytest.fixture(autouse=True)
def one_thread():
    """Other processes share this CPU; one intra-op thread avoids OpenMP spin-wait stalls."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def mobilenet_v2_layout(num_classes: int) -> dict[str, tuple[int, ...]]:
    """Key -> shape of torchvision's ``mobilenet_v2`` written from its module layout:
    features.0 = (Conv 3x3 s2, BN, ReLU6); features.1 = InvertedResidual t=1 whose ``conv`` is
    (dw ConvBNReLU6, 1x1 Conv, BN); features.2..17 = t=6 blocks whose ``conv`` is (1x1 ConvBNReLU6,
    dw ConvBNReLU6, 1x1 Conv, BN); features.18 = (1x1 Conv, BN, ReLU6); classifier = (Dropout, Linear)."""
    keys = {"features.0.0.weight": (32, 3, 3, 3)} | _bn_keys("features.0.1", 32)
    keys |= {"features.1.conv.0.0.weight": (32, 1, 3, 3)} | _bn_keys("features.1.conv.0.1", 32)
    keys |= {"features.1.conv.1.weight": (16, 32, 1, 1)} | _bn_keys("features.1.conv.2", 16)
    outputs = [24] * 2 + [32] * 3 + [64] * 4 + [96] * 3 + [160] * 3 + [320]
    in_channels = 16
    for index, out_channels in enumerate(outputs, start=2):
        hidden, p = in_channels * 6, f"features.{index}.conv"
        keys |= {f"{p}.0.0.weight": (hidden, in_channels, 1, 1)} | _bn_keys(f"{p}.0.1", hidden)
        keys |= {f"{p}.1.0.weight": (hidden, 1, 3, 3)} | _bn_keys(f"{p}.1.1", hidden)
        keys |= {f"{p}.2.weight": (out_channels, hidden, 1, 1)} | _bn_keys(f"{p}.3", out_channels)
        in_channels = out_channels
    keys |= {"features.18.0.weight": (1280, 320, 1, 1)} | _bn_keys("features.18.1", 1280)
    return keys | {"classifier.1.weight": (num_classes, 1280), "classifier.1.bias": (num_classes,)}


def resnet18_layout(num_classes: int) -> dict[str, tuple[int, ...]]:
    """Key -> shape of torchvision's ``resnet18``: conv1 7x7 + bn1; layerL.B = BasicBlock
    (conv1, bn1, conv2, bn2, and downsample = (1x1 Conv, BN) in the first block of layers 2-4); fc."""
    keys = {"conv1.weight": (64, 3, 7, 7)} | _bn_keys("bn1", 64)
    in_channels = 64
    for layer, channels in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            p = f"layer{layer}.{block}"
            keys |= {f"{p}.conv1.weight": (channels, in_channels, 3, 3)} | _bn_keys(
                f"{p}.bn1", channels
            )
            keys |= {f"{p}.conv2.weight": (channels, channels, 3, 3)} | _bn_keys(
                f"{p}.bn2", channels
            )
            if block == 0 and layer > 1:
                keys[f"{p}.downsample.0.weight"] = (channels, in_channels, 1, 1)
                keys |= _bn_keys(f"{p}.downsample.1", channels)
            in_channels = channels
    return keys | {"fc.weight": (num_classes, 512), "fc.bias": (num_classes,)}


LAYOUTS = {
    "cls-shufflenetv2-x0.5": lambda c: shufflenet_layout(STAGE_CHANNELS[0.5], c),
    "cls-shufflenetv2-x1.0": lambda c: shufflenet_layout(STAGE_CHANNELS[1.0], c),
    "cls-mobilenetv2": mobilenet_v2_layout,
    "cls-resnet18": resnet18_layout,
}


def torchvision_like_state(
    layout: dict[str, tuple[int, ...]], seed: int
) -> dict[str, torch.Tensor]:
    """Random tensors of the layout's names and shapes, plausible for each kind of tensor."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in layout.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        elif len(shape) == 4:  # conv: He-scaled so activations stay O(1) through the depth
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=generator) * (2 / fan_in) ** 0.5
        elif len(shape) == 1 and key.endswith("weight"):  # BN scale near 1: the signal survives
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.1
    return state


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_equals_torchvision(name):
    model = build_classifier(name, 1000)
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_PARAMS[name]


@pytest.mark.parametrize("name", NAMES)
def test_multiply_accumulates_match_published_figures(name):
    published_mmacs = {
        "cls-shufflenetv2-x0.5": 41,
        "cls-shufflenetv2-x1.0": 146,
        "cls-mobilenetv2": 300,
        "cls-resnet18": 1814,
    }  # papers / torchvision, 224 px
    with torch.device("meta"):  # shapes only: nothing is allocated or computed
        model = build_classifier(name, 1000)
    # Within 2%: the counter sees convs and linear layers only (no BN, pooling, shuffles).
    assert count_flops(model, 224) / 2e6 == pytest.approx(published_mmacs[name], rel=0.02)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_keys_and_shapes_match_torchvision_layout(name):
    state = build_classifier(name, 1000).state_dict()
    assert {key: tuple(value.shape) for key, value in state.items()} == LAYOUTS[name](1000)


@pytest.mark.parametrize("name", ["cls-mobilenetv2", "cls-resnet18"])
def test_torchvision_layout_state_loads_strictly_and_drives_the_output(name):
    state = torchvision_like_state(LAYOUTS[name](10), seed=1)
    model = build_classifier(name, 10).eval()
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model(images)
        model.load_state_dict(state, strict=True)
        after = model(images)
        twin = build_classifier(name, 10).eval()
        twin.load_state_dict(state, strict=True)
        torch.testing.assert_close(twin(images), after)  # the file alone decides the output
        assert (after - before).abs().max() > 1e-3
        head = head_module_name(model)
        model.state_dict()[f"{head}.weight"].zero_()
        model.state_dict()[f"{head}.bias"].copy_(torch.arange(10.0))
        torch.testing.assert_close(model(images), torch.arange(10.0).expand(2, 10))
        model.load_state_dict(state)
        first_conv = next(k for k in state if k.endswith("weight") and state[k].ndim == 4)
        model.state_dict()[first_conv].mul_(-1)  # a stem tensor reaches the logits
        assert (model(images) - after).abs().max() > 1e-4


def test_hand_written_keys_of_mobilenetv2_and_resnet18():
    mobile = build_classifier("cls-mobilenetv2", 1000).state_dict()
    assert mobile["features.2.conv.0.0.weight"].shape == (96, 16, 1, 1)
    assert mobile["features.17.conv.2.weight"].shape == (320, 960, 1, 1)
    assert "features.1.conv.3.weight" not in mobile  # the t=1 block has no expansion conv
    resnet = build_classifier("cls-resnet18", 1000).state_dict()
    assert resnet["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert "layer1.0.downsample.0.weight" not in resnet
    assert resnet["layer4.1.bn2.running_var"].shape == (512,)


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_finite_and_head_names(name):
    torch.manual_seed(0)
    model = build_classifier(name, 7).train()
    logits = model(torch.rand(2, 3, 32, 48))
    assert logits.shape == (2, 7) and torch.isfinite(logits).all()
    logits.logsumexp(1).mean().backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), parameter_name
    expected = ("classifier.",) if name == "cls-mobilenetv2" else ("fc.",)
    assert head_prefixes(model) == expected
    assert default_classifier_imgsz(name) == 224


@pytest.mark.parametrize("name", ["cls-shufflenetv2-x0.5", "cls-mobilenetv2", "cls-resnet18"])
def test_onnx_runtime_parity_at_two_sizes(name, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = randomise_for_parity(build_classifier(name, 5), image_hw=(64, 64))
    path = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.rand(1, 3, 64, 64),),
            str(path),
            opset_version=17,
            dynamo=False,
            input_names=["images"],
            output_names=["logits"],
            dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}},
        )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, height, width in [(1, 64, 64), (2, 96, 80)]:
        images = torch.rand(batch, 3, height, width)
        with torch.no_grad():
            expected = model(images).numpy()
        (actual,) = session.run(None, {"images": images.numpy()})
        assert np.abs(actual - expected).max() <= 1e-4


def test_make_divisible_follows_torchvision_rounding():
    assert make_divisible(32) == 32
    assert make_divisible(10) == 16  # 8 would be > 10% below 10
    assert make_divisible(18) == 24  # 16 is 11% below 18
    assert make_divisible(20) == 24  # nearest multiple of 8


def test_unknown_classifier_lists_close_matches():
    with pytest.raises(UnknownModelError, match="did you mean cls-resnet18"):
        build_classifier("cls-resnet-18", 3)
    with pytest.raises(UnknownModelError, match="available models: .*, cls-shufflenetv2-x0.5"):
        default_classifier_imgsz("vgg16")
