"""ONNX export: fusion check, the four graph kinds, metadata, parity failures and bad input."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from edgevision import api
from edgevision.core.errors import CheckpointError, ConfigError, ParityError
from edgevision.export.onnx import read_info
from edgevision.export.parity import check_fusion
from edgevision.runtime import OnnxDetector
from edgevision.tasks import load_model
from edgevision.tasks.detect import export as export_module
from edgevision.tasks.detect import export_check as samples
from edgevision.tasks.detect.export_check import sample_images
from edgevision.tasks.detect.inference import DetectionPredictor as Predictor
from tests.detector import CLASS_NAMES, IMGSZ, biased_detector, fused_copy


def test_fused_model_matches_trained_model_and_a_broken_fusion_raises():
    model = biased_detector()
    fused = fused_copy(model)
    images = torch.rand(2, 3, IMGSZ, IMGSZ)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert 0 < check_fusion(model, fused, images) <= 1e-4 * 20  # raw outputs reach ~10-20
    with torch.no_grad():
        fused.head.levels[0].fused.pred.bias[4:] += 0.01  # the class logits
    with pytest.raises(ParityError, match="fused Conv\\+BN model differs"):
        check_fusion(model, fused, images)


def _session_shapes(path):
    proto = onnx.load(str(path))
    dims = lambda value: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]  # noqa: E731
    return dims(proto.graph.input[0]), {o.name: dims(o) for o in proto.graph.output}, proto


def test_static_raw_export_layout_metadata_and_parity(raw_export):
    pytest.importorskip("onnxslim", reason="simplification is optional (pip install onnxslim)")
    input_dims, outputs, proto = _session_shapes(raw_export["path"])
    assert input_dims == [1, 3, IMGSZ, IMGSZ]
    anchors = sum((IMGSZ // s) ** 2 for s in (8, 16, 32))
    assert outputs == {"raw": [1, anchors, 4 + len(CLASS_NAMES)]}
    assert proto.opset_import[0].version >= 17 and raw_export["simplified"]
    assert not any(node.op_type == "BatchNormalization" for node in proto.graph.node)
    info = read_info(raw_export["path"])
    assert (info.class_names, info.imgsz, info.strides) == (
        CLASS_NAMES,
        (IMGSZ, IMGSZ),
        (8, 16, 32),
    )
    assert (info.output_layout, info.dynamic, info.precision, info.model_name) == (
        "raw",
        False,
        "fp32",
        "nano-s",
    )
    assert info.preprocess["kind"] == "letterbox" and info.preprocess["color"] == 114
    assert info.head == "anchor_free" and info.preprocess["center"] is True
    props = {p.key: p.value for p in proto.metadata_props}
    assert "softplus" in props["output_description"] and props["edgevision_version"]
    check = raw_export["parity"]["checks"]["fp32"]
    assert check["detections"]["reference"] >= 20  # the check compared real detections
    assert check["detections"]["matched"] == check["detections"]["reference"]
    assert check["detections"]["max_box_diff_px"] <= 1.0 and check["raw_max_abs_diff"] < 1e-2
    assert "OK" in raw_export["text"]


def test_nms_export_outputs_fixed_size_detections(nms_export):
    input_dims, outputs, proto = _session_shapes(nms_export["path"])
    assert input_dims == [1, 3, IMGSZ, IMGSZ]
    assert outputs == {
        "num_dets": [1, 1],
        "boxes": [1, 50, 4],
        "scores": [1, 50],
        "classes": [1, 50],
    }
    assert any(node.op_type == "NonMaxSuppression" for node in proto.graph.node)
    types = {o.name: o.type.tensor_type.elem_type for o in proto.graph.output}
    assert types["num_dets"] == types["classes"] == onnx.TensorProto.INT64
    info = read_info(nms_export["path"])
    assert info.output_layout == "nms" and info.nms == {"conf": 0.25, "iou": 0.45, "max_det": 50}
    detections = nms_export["parity"]["checks"]["fp32"]["detections"]
    assert detections["reference"] > 0 and detections["ok"]


@pytest.mark.parametrize("fixture", ["dynamic_export", "dynamic_nms_export"])
def test_dynamic_exports_run_at_another_size_and_batch(fixture, request, checkpoint):
    result = request.getfixturevalue(fixture)
    input_dims, _, _ = _session_shapes(result["path"])
    assert input_dims == ["batch", 3, "height", "width"]
    images, names = sample_images(None, count=3, seed=5)
    model = fused_copy(load_model(checkpoint).model)
    reference = Predictor(model, CLASS_NAMES, 160, torch.device("cpu"), 0.25, 0.45, 100)
    detector = OnnxDetector(result["path"], imgsz=160, batch_size=3, max_det=100)
    assert detector.batch_size == 3
    for expected, found in zip(
        reference.predict_images(images, names), detector.predict_images(images, names), strict=True
    ):
        assert len(found) == len(expected) > 0
        np.testing.assert_array_equal(found.classes, expected.classes)
        np.testing.assert_allclose(found.boxes, expected.boxes, atol=1.0)
        np.testing.assert_allclose(found.scores, expected.scores, atol=1e-3)


def test_wrong_onnx_output_raises_parity_error(checkpoint, tmp_path, monkeypatch):
    real_run = OnnxDetector.run
    monkeypatch.setattr(
        OnnxDetector, "run", lambda self, batch: [o + 0.5 for o in real_run(self, batch)]
    )
    with pytest.raises(ParityError, match="differs from PyTorch"):
        api.export(str(checkpoint), out=str(tmp_path / "m.onnx"), simplify=False, verbose=False)


def test_wrong_onnx_detections_raise_parity_error(checkpoint, tmp_path, monkeypatch):
    real_detections = OnnxDetector._detections

    def drop_best(self, outputs):
        return [
            {key: value[1:] for key, value in found.items()}
            for found in real_detections(self, outputs)
        ]

    monkeypatch.setattr(OnnxDetector, "_detections", drop_best)
    with pytest.raises(ParityError, match="detections differ from PyTorch"):
        api.export(str(checkpoint), out=str(tmp_path / "m.onnx"), simplify=False, verbose=False)


def test_a_failed_simplification_is_reverted(checkpoint, tmp_path, monkeypatch, capsys):
    pytest.importorskip("onnxslim", reason="simplification is optional (pip install onnxslim)")
    real_check, calls = samples.check_file, []

    def fail_second(path, reference, options):
        calls.append(path)
        if len(calls) == 2:
            raise ParityError("forced")
        return real_check(path, reference, options)

    monkeypatch.setattr(export_module, "check_file", fail_second)
    result = api.export(str(checkpoint), out=str(tmp_path / "m.onnx"))
    assert not result["simplified"] and len(calls) == 2
    assert "kept the unsimplified graph" in capsys.readouterr().out
    assert OnnxDetector(result["path"]).predict(sample_images(None, 1)[0])[0].boxes.shape[1] == 4


def test_bad_weights_and_options_name_the_problem(checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="missing.pt: checkpoint not found"):
        api.export(str(tmp_path / "missing.pt"))
    foreign = tmp_path / "foreign.pt"
    torch.save({"weight": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="foreign.pt: not an edgevision checkpoint"):
        api.export(str(foreign))
    with pytest.raises(ConfigError, match="already an ONNX file"):
        api.export(str(tmp_path / "model.onnx"))
    with pytest.raises(ConfigError, match="opset 16"):
        api.export(str(checkpoint), opset=16)
    with pytest.raises(ConfigError, match="multiple of 32"):
        api.export(str(checkpoint), imgsz=100)
