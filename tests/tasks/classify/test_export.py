"""Classifier export: normalisation and softmax in the graph, metadata, parity with PyTorch."""

import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from edgevision import api
from edgevision.core.errors import ConfigError
from edgevision.engine.checkpoint import save_checkpoint
from edgevision.models.zoo import build_model as build_classifier

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


@pytest.fixture()
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build_classifier("cls-shufflenetv2-x0.5", 3)
    with (
        torch.no_grad()
    ):  # real BN statistics, so a wrong fold or normalisation shows in the output
        model.train()(torch.rand(8, 3, 64, 64))
    meta = {
        "task": "classify",
        "model_name": "cls-shufflenetv2-x0.5",
        "num_classes": 3,
        "class_names": ["a", "b", "c"],
        "imgsz": 64,
        "mean": MEAN,
        "std": STD,
    }
    path = tmp_path / "cls.pt"
    save_checkpoint(path, {"meta": meta, "model": model.eval().state_dict(), "ema": None})
    return path, model.eval()


def test_export_matches_pytorch_on_normalised_input(checkpoint, tmp_path):
    path, model = checkpoint
    result = api.export(str(path), out=str(tmp_path / "cls.onnx"), verbose=False)
    proto = onnx.load(result["path"])
    onnx.checker.check_model(proto, full_check=True)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["task"] == "classify" and json.loads(meta["class_names"]) == ["a", "b", "c"]
    assert meta["edgevision_format"] == "1" and meta["output_layout"] == "probabilities"
    assert json.loads(meta["preprocess"]) == {
        "kind": "center_crop",
        "resize_shorter": 73,
        "crop": 64,
    }
    assert result["runtime_max_abs_diff"] <= 1e-4  # the torch-free session, preprocessing included
    session = onnxruntime.InferenceSession(result["path"], providers=["CPUExecutionProvider"])
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    got = session.run(["probabilities"], {"images": images.numpy()})[0]
    normalised = (images - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = model(normalised).softmax(1).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert got.sum() == pytest.approx(1.0, abs=1e-5)


def test_api_export_dispatches_on_task_and_refuses_detector_options(checkpoint, tmp_path):
    path, _ = checkpoint
    with pytest.raises(ConfigError, match="apply to detectors"):
        api.export(str(path), nms=True)
    result = api.export(str(path), out=str(tmp_path / "x.onnx"), dynamic=True)
    assert result["ort_max_abs_diff"] <= 1e-4
