"""Every zoo model through the same checks: forward shape, backward, ONNX Runtime parity, init."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from edgevision.core.errors import ConfigError, UnknownModelError
from edgevision.losses.for_head import detection_loss
from edgevision.models.detector import Detector
from edgevision.models.zoo import (
    MODEL_ZOO,
    build_model,
    count_flops,
    count_parameters,
    default_imgsz,
    list_models,
    model_names,
    task_of_model,
)
from edgevision.tasks import TASKS
from tests.models.cases import assert_parity, randomise_for_parity

NAMES = model_names("detect") + model_names("pose")
NUM_CLASSES = 3
NUM_KEYPOINTS = 5  # pose models: not the default 17, so a lost num_keypoints shows


def _num_points(height: int, width: int) -> int:
    return sum((height // s) * (width // s) for s in (8, 16, 32))


def _build(name: str) -> nn.Module:
    """A zoo detector with NUM_CLASSES classes (and NUM_KEYPOINTS keypoints for a pose model)."""
    if task_of_model(name) == "pose":
        return build_model(name, NUM_CLASSES, num_keypoints=NUM_KEYPOINTS)
    return build_model(name, NUM_CLASSES)


@pytest.mark.parametrize("name", NAMES)
def test_forward_shape_at_two_sizes(name):
    torch.manual_seed(0)
    model = _build(name).eval()
    assert isinstance(model, Detector)
    assert model.num_classes == NUM_CLASSES
    pose = task_of_model(name) == "pose"
    assert model.num_keypoints == (NUM_KEYPOINTS if pose else 0)
    with torch.no_grad():
        for batch, height, width in [(2, 320, 320), (1, 256, 320)]:
            raw = model(torch.rand(batch, 3, height, width))
            boxes, scores = model.codec.decode(raw, (height, width))  # raw fits the codec's grid
            assert boxes.shape == (batch, raw.shape[1], 4)
            assert scores.shape == (batch, raw.shape[1], NUM_CLASSES)
            assert 0 <= scores.min() and scores.max() <= 1
            if model.codec.family in ("anchor_free", "pose"):
                assert model.strides == (8, 16, 32)
                channels = 4 + NUM_CLASSES + 3 * model.num_keypoints
                assert raw.shape == (batch, _num_points(height, width), channels)
            if pose:
                keypoints = model.codec.decode_keypoints(raw, (height, width))
                assert keypoints.shape == (*raw.shape[:2], NUM_KEYPOINTS, 3)


@pytest.mark.parametrize("name", model_names("detect"))
def test_a_few_training_steps_lower_the_loss(name):
    """The family's own loss (the one the detection task trains with) on one fixed batch."""
    torch.manual_seed(0)
    model = _build(name).train()
    loss_fn = detection_loss(model)
    images = torch.rand(2, 3, 128, 128)
    targets = torch.tensor(
        [
            [0, 0, 16.0, 20.0, 70.0, 90.0],
            [0, 2, 80.0, 8.0, 120.0, 40.0],
            [1, 1, 30.0, 30.0, 100.0, 110.0],
        ]
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(8):
        loss = loss_fn(model(images), targets, (128, 128))["loss"]
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("name", NAMES)
def test_backward_gives_finite_gradients_everywhere(name):
    torch.manual_seed(0)
    model = _build(name).train()
    raw = model(torch.rand(2, 3, 128, 160))
    assert torch.isfinite(raw).all()
    raw.float().mean().backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None, parameter_name
        assert torch.isfinite(parameter.grad).all(), parameter_name


@pytest.mark.parametrize("name", NAMES)
def test_onnx_runtime_parity_at_two_sizes(name, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = randomise_for_parity(_build(name).eval())
    path = tmp_path / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model, (torch.rand(1, 3, 128, 128),), str(path), opset_version=17, dynamo=False,
            input_names=["images"], output_names=["raw"],
            dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}, "raw": {0: "batch", 1: "points"}},
        )  # fmt: skip
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, height, width in [(1, 128, 128), (2, 96, 160)]:
        images = torch.rand(batch, 3, height, width)
        with torch.no_grad():
            expected = model(images).numpy()
        (actual,) = session.run(None, {"images": images.numpy()})
        assert_parity(actual, expected)


@pytest.mark.parametrize("name", ["nano-s", "yolo-n"])
def test_fresh_head_predicts_prior_scores_and_four_stride_boxes(name):
    torch.manual_seed(0)
    model = build_model(name, NUM_CLASSES).eval()
    with torch.no_grad():
        boxes, scores = model.codec.decode(model(torch.rand(1, 3, 128, 128)), (128, 128))
    assert scores.min() > 0.005 and scores.max() < 0.02  # class prior 0.01
    strides = torch.tensor([8.0] * 256 + [16.0] * 64 + [32.0] * 16)
    widths_in_strides = (boxes[0, :, 2] - boxes[0, :, 0]) / strides
    assert widths_in_strides.min() > 3.5 and widths_in_strides.max() < 4.5


@pytest.mark.parametrize(
    ("typo", "suggestion"), [("nano_s", "nano-s"), ("yolos", "yolo-s"), ("nanom", "nano-m")]
)
def test_unknown_name_lists_close_matches(typo, suggestion):
    with pytest.raises(UnknownModelError, match=f"did you mean {suggestion}") as error:
        build_model(typo, NUM_CLASSES)
    assert isinstance(error.value, ConfigError) and isinstance(error.value, ValueError)
    assert "available models: nano-s, nano-m, yolo-n, yolo-s, " in str(error.value)
    assert "cls-resnet18" in str(error.value)
    with pytest.raises(UnknownModelError):
        default_imgsz(typo)


def test_count_flops_is_twice_the_multiply_accumulates():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert count_flops(conv, 16) == 2 * (8 * 3 * 9) * 16 * 16
    assert count_flops(conv, (16, 32)) == 2 * (8 * 3 * 9) * 16 * 32
    assert conv.training  # mode restored


def test_one_table_for_every_task():
    assert model_names() == list(MODEL_ZOO) and set(model_names()) == {
        *model_names("detect"),
        *model_names("classify"),
        *model_names("pose"),
    }
    # A task folder runs each model's task.
    assert {spec.task for spec in MODEL_ZOO.values()} <= set(TASKS)
    assert task_of_model("nano-s") == "detect" and task_of_model("cls-resnet18") == "classify"
    assert model_names("classify") == [n for n in MODEL_ZOO if n.startswith("cls-")]
    assert model_names("pose") == ["nano-s-pose", "nano-m-pose", "yolo-n-pose"]


def test_pose_models_share_the_detectors_backbone_and_neck_and_default_to_17_keypoints():
    for name in model_names("pose"):
        detector, pose = build_model(name.removesuffix("-pose"), 1), build_model(name, 1)
        assert pose.num_keypoints == 17 and pose.codec.metadata()["num_keypoints"] == 17
        assert default_imgsz(name) == default_imgsz(name.removesuffix("-pose"))
        for part in ("backbone", "neck"):
            assert [p.shape for p in getattr(pose, part).parameters()] == [
                p.shape for p in getattr(detector, part).parameters()
            ]
        # The detection head inside the pose head is the detector's own.
        assert [p.shape for p in pose.head.detection.parameters()] == [
            p.shape for p in detector.head.parameters()
        ]


def test_num_keypoints_only_for_pose_models():
    with pytest.raises(ConfigError, match="nano-s is a detect model and predicts no keypoints"):
        build_model("nano-s", 1, num_keypoints=17)
    with pytest.raises(ConfigError, match="num_keypoints must be at least 1"):
        build_model("nano-s-pose", 1, num_keypoints=0)
    assert build_model("nano-s", 1, num_keypoints=0).num_keypoints == 0


def test_list_models_rows():
    rows = list_models("detect")
    assert [row["name"] for row in rows] == model_names("detect")
    nano = rows[0]
    assert nano["task"] == "detect" and nano["imgsz"] == default_imgsz("nano-s") == 320
    assert nano["params"] == count_parameters(build_model("nano-s", 80))
    assert nano["flops"] == count_flops(build_model("nano-s", 80), 320)
    assert nano["gflops"] == pytest.approx(nano["flops"] / 1e9)
    flops = {row["name"]: row["flops"] for row in rows}
    assert flops["nano-s"] < flops["nano-m"] < flops["yolo-n"] < flops["yolo-s"]
    assert all(MODEL_ZOO[row["name"]].imgsz == row["imgsz"] for row in rows)
    everything = list_models()
    assert [row["name"] for row in everything] == list(MODEL_ZOO)
    assert {row["task"] for row in everything} == {"detect", "classify", "pose"}
    pose = {row["name"]: row for row in list_models("pose")}
    # Reported at COCO keypoints: one class, 17 keypoints; the keypoint branch adds to nano-s.
    assert pose["nano-s-pose"]["params"] == count_parameters(build_model("nano-s-pose", 1))
    assert pose["nano-s-pose"]["flops"] > count_flops(build_model("nano-s", 1), 320)


def test_focal_flags_reach_a_focal_head_only():
    """--fl-gamma / --fl-alpha set the focal loss of ssd-grid; other heads ignore them."""
    grid = detection_loss(build_model("ssd-grid", NUM_CLASSES), fl_gamma=1.5, fl_alpha=0.4)
    assert grid.focal and (grid.gamma, grid.alpha) == (1.5, 0.4)
    assert (detection_loss(build_model("ssd-grid", NUM_CLASSES)).gamma) == 2.0
    lite = detection_loss(build_model("ssdlite-mnv2", NUM_CLASSES), fl_gamma=1.5, fl_alpha=0.4)
    assert not lite.focal
