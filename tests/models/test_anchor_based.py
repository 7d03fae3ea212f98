"""The anchor-based family: backbone, FPN, head layout, anchors buffer, torch codec and its twin."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from edgevision.models.anchor_detector import TINY_ANCHORS, tiny_anchor_detector
from edgevision.models.backbones.csp_tiny import CSPTiny
from edgevision.models.codecs.anchor_based import (
    FAMILY,
    AnchorCodec,
    anchors_by_level,
    decode_offsets,
    encode_offsets,
)
from edgevision.models.heads.anchor_based import AnchorHead
from edgevision.models.necks.tiny_fpn import TinyFPN
from edgevision.ops.nms import postprocess as torch_postprocess
from edgevision.runtime.codecs import anchor_based as twin

STRIDES = (16, 32)
ANCHORS = torch.tensor(TINY_ANCHORS, dtype=torch.float32)
WIDTH = 0.25  # the smallest model: these tests check layout and numbers, not capacity


def _model(num_classes: int = 3, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    return tiny_anchor_detector(num_classes, width_multiple=WIDTH, **kwargs)


@pytest.mark.parametrize("hw", [(320, 320), (256, 320)])
def test_forward_shapes(hw):
    model = _model().eval()
    with torch.no_grad():
        raw = model(torch.rand(2, 3, *hw))
    cells = sum((hw[0] // s) * (hw[1] // s) for s in STRIDES)
    assert raw.shape == (2, cells * 3, 5 + 3)
    assert model.strides == STRIDES and model.size_divisor == 32 and model.num_classes == 3
    assert model.codec.family == FAMILY == "anchor"


def test_three_scale_variant_adds_the_stride_8_level():
    model = _model(three_scale=True).eval()
    with torch.no_grad():
        raw = model(torch.rand(1, 3, 128, 160))
    assert model.strides == (8, 16, 32) and model.head.anchors.shape == (3, 3, 2)
    assert raw.shape == (1, 3 * (16 * 20 + 8 * 10 + 4 * 5), 8)


def test_backbone_and_neck_maps():
    backbone = CSPTiny(1.0)
    features = backbone.forward_features(torch.rand(1, 3, 64, 96))
    assert backbone.out_channels == [256, 512] and backbone.strides == [16, 32]
    assert [tuple(f.shape) for f in features] == [(1, 256, 4, 6), (1, 512, 2, 3)]
    neck = TinyFPN(backbone.out_channels)
    outputs = neck(features)
    assert neck.out_channels == [256, 512]
    assert [tuple(o.shape) for o in outputs] == [(1, 256, 4, 6), (1, 512, 2, 3)]
    # YOLOv4-tiny (width 1.0) at 80 classes has darknet's 6.06 M parameters.
    with torch.device("meta"):
        full = tiny_anchor_detector(80, width_multiple=1.0)
    assert sum(p.numel() for p in full.parameters()) == 6_056_606


def test_head_order_is_level_then_row_major_cell_then_anchor():
    num_classes, na = 2, 3
    head = AnchorHead([1, 1], num_classes, ANCHORS, STRIDES)
    channels = na * (5 + num_classes)
    with torch.no_grad():
        for pred in head.preds:  # output channel k = feature + 1000 * k
            pred.weight.fill_(1.0)
            pred.bias.copy_(torch.arange(channels) * 1000.0)
    sizes = [(2, 3), (1, 2)]
    features = [torch.arange(h * w, dtype=torch.float32).reshape(1, 1, h, w) for h, w in sizes]
    features[1] = features[1] + 100  # tells level 1's cells apart
    raw = head(features)[0]
    n = 0
    for level, (h, w) in enumerate(sizes):
        for y in range(h):
            for x in range(w):
                for a in range(na):
                    cell = y * w + x + 100 * level
                    channel = a * (5 + num_classes) + torch.arange(5 + num_classes)
                    torch.testing.assert_close(raw[n], cell + 1000.0 * channel)
                    n += 1
    assert n == raw.shape[0]


def test_bias_init_sets_yolov5_priors():
    head = AnchorHead([8, 8], 4, ANCHORS, STRIDES)
    for pred, stride in zip(head.preds, STRIDES, strict=True):
        bias = pred.bias.view(3, 9)
        torch.testing.assert_close(bias[:, :4], torch.zeros(3, 4))
        objectness = bias[:, 4].sigmoid() / (1 - bias[:, 4].sigmoid())  # odds = exp(bias)
        torch.testing.assert_close(objectness, torch.full((3,), 8 / (640 / stride) ** 2))
        torch.testing.assert_close(bias[:, 5:], torch.full((3, 4), math.log(0.6 / 3.01)))


def _random_raw(hw, classes=4, batch=2, seed=0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    count = sum((hw[0] // s) * (hw[1] // s) for s in STRIDES) * 3
    raw = torch.randn(batch, count, 5 + classes, generator=generator) * 2
    raw[..., 4:] -= 1.5  # some scores pass conf, most do not
    return raw


@pytest.mark.parametrize("hw", [(96, 160), (128, 128)])
def test_torch_decode_equals_the_numpy_twin(hw):
    codec = AnchorCodec(STRIDES, ANCHORS)
    raw = _random_raw(hw)
    boxes, scores = codec.decode(raw, hw)
    params = codec.metadata()
    got_boxes, got_scores = twin.decode(raw.numpy(), params["strides"], params["anchors"], hw)
    # 1e-5 relative: boxes up to 4 x 344 px wide differ by an ulp or two (~1e-4 px) where the two
    # sigmoids round differently; a wrong formula is off by pixels.
    np.testing.assert_allclose(got_boxes, boxes.numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(got_scores, scores.numpy(), rtol=0, atol=1e-6)
    assert boxes.dtype == scores.dtype == torch.float32


def test_decode_by_hand():
    """Raw 0 decodes to a box of exactly the anchor, centred on its cell; score 0.25."""
    codec = AnchorCodec(STRIDES, ANCHORS)
    raw = torch.zeros(1, 3 * (2 * 4 + 1 * 2), 6)
    boxes, scores = codec.decode(raw, (32, 64))
    # Level 0 is 2 rows x 4 columns; prediction (cell y=1, x=2, anchor 1) sits at (1*4+2)*3+1,
    # anchor 1 of level 0 is 23 x 27.
    n = (1 * 4 + 2) * 3 + 1
    cx, cy = (2 + 0.5) * 16, (1 + 0.5) * 16
    torch.testing.assert_close(
        boxes[0, n], torch.tensor([cx - 11.5, cy - 13.5, cx + 11.5, cy + 13.5])
    )
    torch.testing.assert_close(scores[0, n], torch.tensor([0.25]))


def test_detections_equal_torch_decode_and_postprocess():
    hw = (96, 160)
    codec = AnchorCodec(STRIDES, ANCHORS)
    raw = _random_raw(hw, batch=3, seed=1)
    want = torch_postprocess(*codec.decode(raw, hw), conf=0.25, iou=0.5, max_det=40)
    got = twin.detections(raw.numpy(), codec.metadata(), hw, conf=0.25, iou=0.5, max_det=40)
    assert sum(len(w["scores"]) for w in want) > 20
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g["index"], w["index"].numpy())
        np.testing.assert_array_equal(g["classes"], w["classes"].numpy())
        np.testing.assert_allclose(g["scores"], w["scores"].numpy(), atol=1e-6)
        np.testing.assert_allclose(g["boxes"], w["boxes"].numpy(), rtol=1e-5, atol=1e-4)


def test_decode_rejects_a_raw_of_another_size():
    codec = AnchorCodec(STRIDES, ANCHORS)
    with pytest.raises(ValueError, match="divisible by 32"):
        codec.decode(_random_raw((96, 160)), (96, 96))
    with pytest.raises(ValueError, match="divisible by 32"):
        twin.decode(_random_raw((96, 160)).numpy(), STRIDES, TINY_ANCHORS, (96, 96))
    with pytest.raises(ValueError, match="no 'anchors'"):
        twin.detections(_random_raw((96, 160)).numpy(), {"strides": [16, 32]}, (96, 160))


def test_encode_then_decode_gives_the_boxes_back():
    hw = (96, 160)
    codec = AnchorCodec(STRIDES, ANCHORS)
    cells, strides, anchor_wh = codec.grid(hw)
    generator = torch.Generator().manual_seed(0)
    index = torch.randperm(len(cells), generator=generator)[:50]
    # Boxes each prediction can represent: centre within (-0.4, 1.4) cells of its cell's corner,
    # size 0.3 .. 3.5 anchors.
    offset = torch.rand(50, 2, generator=generator) * 1.8 - 0.4
    centres = (cells[index] + offset) * strides[index]
    wh = anchor_wh[index] * (0.3 + torch.rand(50, 2, generator=generator) * 3.2)
    boxes = torch.cat([centres - wh / 2, centres + wh / 2], dim=1)
    raw = torch.zeros(1, len(cells), 6)
    raw[0, index, :4] = codec.encode(boxes, index, hw)
    decoded, _ = codec.decode(raw, hw)
    torch.testing.assert_close(decoded[0, index], boxes, rtol=1e-5, atol=1e-3)


def test_encode_rejects_boxes_out_of_reach():
    anchor = torch.tensor([[10.0, 10.0]])
    with pytest.raises(ValueError, match="not representable"):
        encode_offsets(torch.tensor([[0.5, 0.5, 41.0, 10.0]]), anchor)  # 4.1 anchors wide
    with pytest.raises(ValueError, match="not representable"):
        encode_offsets(torch.tensor([[1.6, 0.5, 10.0, 10.0]]), anchor)
    raw = encode_offsets(torch.tensor([[1.2, -0.3, 39.0, 0.5]]), anchor)
    torch.testing.assert_close(decode_offsets(raw, anchor), torch.tensor([[1.2, -0.3, 39.0, 0.5]]))


def test_decode_traced_equals_decode():
    codec = AnchorCodec(STRIDES, ANCHORS)
    raw = _random_raw((96, 160))
    for got, want in zip(
        codec.decode_traced(raw, torch.zeros(2, 3, 96, 160)),
        codec.decode(raw, (96, 160)),
        strict=True,
    ):
        torch.testing.assert_close(got, want)


def test_anchors_are_saved_and_loaded_with_the_state_dict():
    model = _model()
    new = torch.tensor([[[5, 6], [7, 8], [9, 10]], [[50, 60], [70, 80], [90, 100]]]).float()
    model.head.set_anchors(new)
    state = model.state_dict()
    torch.testing.assert_close(state["head.anchors"], new)
    fresh = _model()
    torch.testing.assert_close(fresh.codec.anchors, ANCHORS)
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.codec.anchors, new)
    assert fresh.codec.metadata()["anchors"] == new.tolist()


def test_set_anchors_is_seen_by_the_codec_and_its_copies():
    model = _model()
    raw = torch.zeros(1, 3 * (4 * 4 + 2 * 2), 8)
    before, _ = model.codec.decode(raw, (64, 64))
    # A flat list is sorted by area and split by level, as k-means and anchor files give it.
    flat = [[300, 300], [8, 8], [16, 16], [32, 32], [100, 100], [200, 200]]
    model.head.set_anchors(flat)
    torch.testing.assert_close(model.codec.anchors, anchors_by_level(sorted(flat), 2))
    after, _ = model.codec.decode(raw, (64, 64))
    torch.testing.assert_close(after[0, 0, 2:] - after[0, 0, :2], torch.tensor([8.0, 8.0]))
    assert not torch.equal(before, after)
    # A deep copy (EMA, export) decodes with its own head's buffer.
    clone = copy.deepcopy(model)
    clone.head.set_anchors(TINY_ANCHORS)
    torch.testing.assert_close(clone.codec.anchors, ANCHORS)
    torch.testing.assert_close(model.codec.anchors[0, 0], torch.tensor([8.0, 8.0]))


def test_set_anchors_refuses_another_count():
    model = _model()
    with pytest.raises(ValueError, match="give 6 anchors"):
        model.head.set_anchors(torch.ones(2, 2, 2))
    with pytest.raises(ValueError, match="do not fit 2 levels"):
        model.head.set_anchors(torch.ones(5, 2))
    with pytest.raises(ValueError, match="positive"):
        model.head.set_anchors(torch.zeros(6, 2))


def test_decode_traced_exports_with_a_dynamic_grid():
    """ONNX graph of forward + decode_traced, run at two sizes: the grid follows the input."""
    onnxruntime = pytest.importorskip("onnxruntime")
    from edgevision.export.trace import trace

    class Decoded(nn.Module):
        def __init__(self, detector):
            super().__init__()
            self.detector = detector

        def forward(self, images):
            return self.detector.codec.decode_traced(self.detector(images), images)

    model = _model().eval()
    model.head.set_anchors([[12, 16], [20, 30], [40, 50], [60, 90], [100, 120], [150, 140]])
    axes = {"images": {0: "batch", 2: "height", 3: "width"}}
    graph = trace(Decoded(model), torch.rand(1, 3, 64, 64), ["boxes", "scores"], axes)
    session = onnxruntime.InferenceSession(
        graph.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    for hw in [(64, 64), (96, 128)]:
        images = torch.rand(1, 3, *hw)
        boxes, scores = session.run(None, {"images": images.numpy()})
        with torch.no_grad():
            want_boxes, want_scores = model.codec.decode(model(images), hw)
        np.testing.assert_allclose(boxes, want_boxes.numpy(), rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(scores, want_scores.numpy(), atol=1e-5)
