"""The SSD family: prior tables by hand, offsets, the numpy twin, both zoo models' shapes, the
ImageNet MobileNetV2 weights and an ONNX export with dynamic H, W."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from edgevision.export.trace import trace
from edgevision.models import ssd_detector
from edgevision.models.backbones.mobilenetv2 import mobilenet_v2
from edgevision.models.codecs.ssd import (
    PriorLevel,
    SSDCodec,
    decode_offsets,
    encode,
    grid_prior_levels,
    ssd_prior_levels,
)
from edgevision.models.ssd_detector import (
    MobileNetV2Features,
    prior_table,
    ssd_grid,
    ssdlite_mnv2,
)
from edgevision.ops.nms import postprocess
from edgevision.runtime.codecs import ssd as twin
from tests.detector import one_torch_thread
from tests.models.cases import randomise_for_parity

__all__ = ["one_torch_thread"]
pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZES = [(320, 320), (256, 320)]
MODELS = {"ssdlite-mnv2": ssdlite_mnv2, "ssd-grid": ssd_grid}


def test_ssd_prior_sizes_equal_a_hand_computed_table():
    levels = ssd_prior_levels(2, min_scale=0.2, max_scale=0.9, aspect_ratios=[(2.0,), ()])
    r2 = math.sqrt(2)
    # s = (0.2, 0.9, 1.0): level 0 has (s, s), the extra sqrt(0.2 * 0.9), then a = 2 and its
    # transpose; level 1 (no ratios) has (0.9, 0.9) and sqrt(0.9 * 1.0).
    want = [
        [(0.2, 0.2), (math.sqrt(0.18),) * 2, (0.2 * r2, 0.2 / r2), (0.2 / r2, 0.2 * r2)],
        [(0.9, 0.9), (math.sqrt(0.9),) * 2],
    ]
    for level, sizes in zip(levels, want, strict=True):
        np.testing.assert_allclose(level.sizes(), sizes, rtol=1e-12)


def test_ssdlite_table_of_the_docstring_with_its_clipped_sizes():
    level = ssd_prior_levels()[3]  # s = 0.65, s' = 0.8
    want = [(0.65, 0.65), (math.sqrt(0.52),) * 2, (0.65 * math.sqrt(2), 0.65 / math.sqrt(2))]
    want += [(0.65 / math.sqrt(2), 0.65 * math.sqrt(2)), (1.0, 0.65 / math.sqrt(3))]
    want += [(0.65 / math.sqrt(3), 1.0)]  # 0.65 * sqrt(3) = 1.126 is clipped to the input
    np.testing.assert_allclose(level.sizes(), want, rtol=1e-12)
    assert [len(lv.sizes()) for lv in ssd_prior_levels()] == [6] * 6


def test_grid_priors_are_cell_sized_zoomed_shapes():
    (level,) = grid_prior_levels([4], zooms=(0.5, 1.0), shapes=((1.0, 1.0), (1.0, 0.5)))
    assert level.sizes() == [(0.125, 0.125), (0.125, 0.0625), (0.25, 0.25), (0.25, 0.125)]


def test_priors_of_a_small_config_equal_the_hand_table():
    # 64 x 96 input, strides 32 and 64: a 2x3 level with 2 priors per cell, then a 1x2 level.
    codec = SSDCodec(
        [PriorLevel(0.25, ((1.0, 1.0), (2.0, 1.0))), PriorLevel(0.5, ((1.0, 1.0),), (2.5,))],
        strides=(32, 64),
    )
    assert codec.feature_sizes((64, 96)) == [(2, 3), (1, 2)]
    want = []
    for cy in (0.25, 0.75):  # rows
        for cx in (1 / 6, 0.5, 5 / 6):  # columns
            want += [[cx, cy, 0.25, 0.25], [cx, cy, 0.5, 0.25]]
    want += [[0.25, 0.5, 1.0, 1.0], [0.75, 0.5, 1.0, 1.0]]  # 0.5 * 2.5 clipped to 1
    torch.testing.assert_close(codec.priors((64, 96)), torch.tensor(want))
    np.testing.assert_allclose(twin.priors(codec.metadata(), (64, 96)), want, rtol=1e-6)
    pixels = codec.pixel_priors((64, 96))
    torch.testing.assert_close(pixels[0], torch.tensor([16.0, 16.0, 24.0, 16.0]))


def test_feature_sizes_round_up_like_the_stride_two_convs():
    codec = ssdlite_mnv2(2).codec
    assert codec.feature_sizes((320, 320)) == [(20, 20), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    assert codec.feature_sizes((256, 320)) == [(16, 20), (8, 10), (4, 5), (2, 3), (1, 2), (1, 1)]
    assert codec.num_priors((320, 320)) == 6 * (400 + 100 + 25 + 9 + 4 + 1)


def test_encode_then_decode_gives_the_boxes_back():
    generator = torch.Generator().manual_seed(0)
    priors = torch.rand(200, 4, generator=generator) * torch.tensor([300, 300, 150, 150]) + 5
    corner = torch.rand(200, 2, generator=generator) * 250
    boxes = torch.cat([corner, corner + torch.rand(200, 2, generator=generator) * 60 + 1], 1)
    torch.testing.assert_close(
        decode_offsets(encode(boxes, priors), priors), boxes, atol=1e-4, rtol=0
    )


def test_offsets_of_a_hand_case():
    prior = torch.tensor([50.0, 40.0, 20.0, 10.0])  # cx, cy, w, h
    # tx = 1 moves by 0.1 w = 2 px; th = 5 scales h by exp(1); tw = 0 keeps w.
    box = decode_offsets(torch.tensor([1.0, 0.0, 0.0, 5.0]), prior)
    half_h = 5 * math.e
    torch.testing.assert_close(box, torch.tensor([42.0, 40 - half_h, 62.0, 40 + half_h]))
    torch.testing.assert_close(encode(box, prior), torch.tensor([1.0, 0.0, 0.0, 5.0]))


def _random_raw(codec: SSDCodec, hw, classes=3, seed=0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    raw = torch.randn(2, codec.num_priors(hw), 5 + classes, generator=generator) * 2
    raw[0, :3, 2:4] = torch.tensor([[40.0, 40.0], [-40.0, 0.0], [25.0, -25.0]])  # exp extremes
    return raw


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("hw", SIZES)
def test_numpy_twin_and_traced_decode_equal_the_torch_decode(name, hw):
    codec = MODELS[name](3).codec
    raw = _random_raw(codec, hw)
    boxes, scores = codec.decode(raw, hw)
    assert boxes.shape == (2, raw.shape[1], 4) and scores.shape == (2, raw.shape[1], 3)
    params = json.loads(json.dumps(codec.metadata()))  # as an ONNX file carries it
    got_boxes, got_scores = twin.decode(raw.numpy(), params, hw)
    # Boxes to 1e-5 of the input size: a corner at -0.72 px computed as cx * W - w * W / 2 with
    # terms of ~300 px carries their float32 rounding (~2e-5 px).
    scale = np.array([hw[1], hw[0]] * 2, dtype=np.float32)
    np.testing.assert_allclose(got_boxes / scale, boxes.numpy() / scale, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_scores, scores.numpy(), rtol=1e-5, atol=1e-6)
    traced_boxes, traced_scores = codec.decode_traced(raw, torch.zeros(1, 3, *hw))
    torch.testing.assert_close(traced_boxes, boxes)
    torch.testing.assert_close(traced_scores, scores)


def test_scores_softmax_without_background_or_sigmoid():
    levels = [PriorLevel(1.0, ((1.0, 1.0),))]
    # One prior: 4 offsets, then logits background 0, class 0 ln 2, class 1 ln 3.
    raw = torch.tensor([[[0.0, 0.0, 0.0, 0.0, 0.0, math.log(2.0), math.log(3.0)]]])
    softmax = SSDCodec(levels, (32,), scores="softmax").decode(raw, (32, 32))[1]
    torch.testing.assert_close(softmax, torch.tensor([[[2 / 6, 3 / 6]]]))
    sigmoid = SSDCodec(levels, (32,), scores="sigmoid").decode(raw, (32, 32))[1]
    torch.testing.assert_close(sigmoid, torch.tensor([[[2 / 3, 3 / 4]]]))


def test_decode_rejects_raw_of_another_input_size():
    codec = ssdlite_mnv2(2).codec
    with pytest.raises(ValueError, match="multiples of 32"):
        codec.decode(torch.zeros(1, 100, 7), (320, 320))
    with pytest.raises(ValueError, match="multiples of 32"):
        twin.decode(np.zeros((1, 100, 7), np.float32), codec.metadata(), (320, 320))


def test_metadata_rebuilds_the_same_codec():
    codec = ssd_grid(3).codec
    meta = json.loads(json.dumps(codec.metadata()))
    assert meta["head"] == "ssd" and meta["size_divisor"] == 32 and meta["scores"] == "sigmoid"
    assert meta["strides"] == [16, 32, 64, 128, 256, 512]
    assert tuple(PriorLevel.from_dict(level) for level in meta["levels"]) == codec.levels


def test_runtime_detections_equal_torch_postprocess():
    codec = ssdlite_mnv2(3).codec
    raw = _random_raw(codec, (256, 320), seed=1)
    raw[..., 4] += 3.0  # background mostly wins: a realistic few priors above conf
    want = postprocess(*codec.decode(raw, (256, 320)), conf=0.3, iou=0.5, max_det=50)
    got = twin.detections(raw.numpy(), codec.metadata(), (256, 320), conf=0.3, iou=0.5, max_det=50)
    assert sum(len(w["scores"]) for w in want) > 10
    for image_got, image_want in zip(got, want, strict=True):
        # Compared by prior: two priors whose scores tie to 1e-8 may come out in either order.
        order_got, order_want = np.argsort(image_got["index"]), image_want["index"].argsort()
        np.testing.assert_array_equal(
            image_got["index"][order_got], image_want["index"][order_want].numpy()
        )
        for key in ("classes", "boxes", "scores"):
            np.testing.assert_allclose(
                image_got[key][order_got], image_want[key][order_want].numpy(), rtol=1e-5
            )


@pytest.mark.parametrize("name", list(MODELS))
def test_forward_shapes_at_both_sizes_and_at_sizes_off_the_divisor(name):
    torch.manual_seed(0)
    model = MODELS[name](5).eval()
    with torch.no_grad():
        for hw in [*SIZES, (200, 264)]:
            raw = model(torch.zeros(1, 3, *hw))
            assert raw.shape == (1, model.codec.num_priors(hw), 4 + 5 + 1)
            levels = model.neck(model.backbone.forward_features(torch.zeros(1, 3, *hw)))
            assert [tuple(x.shape[2:]) for x in levels] == model.codec.feature_sizes(hw)
    assert model.size_divisor == 32 and model.strides == (16, 32, 64, 128, 256, 512)


def test_loss_options_pick_the_loss_of_each_model():
    assert ssdlite_mnv2(2).head.loss_options == {"focal": False}
    assert ssd_grid(2).head.loss_options == {"focal": True}
    assert ssdlite_mnv2(2).codec.scores == "softmax" and ssd_grid(2).codec.scores == "sigmoid"


def test_mobilenetv2_backbone_loads_an_imagenet_state_dict_by_key_names():
    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save(mobilenet_v2(1000).state_dict(), buffer)
    state_dict = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    backbone = ssdlite_mnv2(4).backbone
    skipped = backbone.load_imagenet_state_dict(state_dict)
    assert skipped == ["classifier.1.weight", "classifier.1.bias"]
    for key, value in backbone.state_dict().items():
        torch.testing.assert_close(value, state_dict[key])
    with pytest.raises(RuntimeError, match="size mismatch"):
        MobileNetV2Features(0.5).load_imagenet_state_dict(state_dict)


class _RawAndDecoded(nn.Module):
    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = detector

    def forward(self, images):
        raw = self.detector(images)
        return (raw, *self.detector.codec.decode_traced(raw, images))


@pytest.mark.parametrize("name", list(MODELS))
def test_onnx_export_with_dynamic_height_and_width(name):
    torch.manual_seed(0)
    model = randomise_for_parity(MODELS[name](3), image_hw=(96, 96))
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            # The 1x1 levels calibrate on 8 values per channel: a tiny variance would magnify
            # float32 rounding far beyond what a trained model's statistics do.
            module.running_var.clamp_(min=0.05)
    axes = {"images": {0: "batch", 2: "height", 3: "width"}}
    axes |= {out: {0: "batch", 1: "priors"} for out in ("raw", "boxes", "scores")}
    proto = trace(
        _RawAndDecoded(model), torch.rand(1, 3, 128, 128), ["raw", "boxes", "scores"], axes
    )
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for hw in [(128, 128), (96, 160)]:
        images = torch.rand(1, 3, *hw, generator=torch.Generator().manual_seed(1))
        raw, boxes, scores = session.run(None, {"images": images.numpy()})
        with torch.no_grad():
            want_raw = model(images)
        assert raw.shape == tuple(want_raw.shape)
        np.testing.assert_allclose(raw, want_raw.numpy(), rtol=1e-4, atol=1e-4)
        # The graph's decode against the eager decode of the graph's own raw output: the priors
        # it rebuilt for this size, free of the raw's rounding (which offsets scale by ~30 px).
        want_boxes, want_scores = model.codec.decode(torch.from_numpy(raw), hw)
        np.testing.assert_allclose(boxes, want_boxes.numpy(), rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(scores, want_scores.numpy(), atol=1e-6)


def test_the_module_docstring_shows_the_printed_ssd_grid_table():
    assert prior_table(ssd_grid(80), (320, 320)) in ssd_detector.__doc__
