"""INT8: float tail selection, QDQ graph structure, calibration, and that detections survive."""

from __future__ import annotations

import onnx
import pytest

from edgevision import api
from edgevision.core.errors import ConfigError
from edgevision.export.onnx import read_info
from edgevision.export.quantize import ImageCalibrationReader, float_tail_nodes, random_images
from edgevision.runtime import OnnxDetector
from tests.detector import CLASS_NAMES


def test_float_tail_is_the_final_convs_and_everything_after(nms_export):
    proto = onnx.load(nms_export["path"])
    tail = set(float_tail_nodes(proto))
    by_name = {node.name: node for node in proto.graph.node}
    tail_convs = sorted(name for name in tail if by_name[name].op_type == "Conv")
    assert len(tail_convs) == 3  # the fused box + class predictor of each of 3 levels
    assert all(name.endswith("fused/pred/Conv") for name in tail_convs)
    assert any(by_name[name].op_type == "NonMaxSuppression" for name in tail)
    assert not any("backbone" in name or "neck" in name for name in tail)


def test_calibration_reader_yields_letterboxed_batches_and_rewinds():
    reader = ImageCalibrationReader(random_images(2, 50) + [random_images(1, 90)[0][:60]], (64, 64))
    batches = [reader.get_next() for _ in range(4)]
    assert [b["images"].shape for b in batches[:3]] == [(1, 3, 64, 64)] * 3 and batches[3] is None
    assert batches[2]["images"][0, :, 0, 0].tolist() == pytest.approx([114 / 255] * 3)  # grey pad
    reader.rewind()
    assert reader.get_next()["images"].shape == (1, 3, 64, 64)


@pytest.fixture(scope="module")
def int8_export(checkpoint, tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "model.onnx"
    return api.export(
        str(checkpoint),
        int8=True,
        int8_keep_slower=True,  # the test model's INT8 may be slower on a busy CI machine
        data=tiny_data,
        out=str(out),
        simplify=False,
        verbose=False,
    )


def test_int8_export_is_qdq_with_a_float_tail_and_keeps_detections(int8_export):
    path = int8_export["int8_path"]
    assert path.endswith("model-int8.onnx")
    info = read_info(path)
    assert info.precision == "int8" and info.class_names == CLASS_NAMES
    proto = onnx.load(path)
    produced_by = {out: node.op_type for node in proto.graph.node for out in node.output}
    convs = [node for node in proto.graph.node if node.op_type == "Conv"]
    float_convs = [node for node in convs if produced_by.get(node.input[1]) != "DequantizeLinear"]
    assert len(float_convs) == 3 and len(convs) > 20
    report = int8_export["int8"]
    assert report["calibration_images"] == 8
    assert report["speed"]["keep"] and report["speed"]["speedup"] > 0
    assert report["speed"]["text"].startswith("INT8 ")
    assert report["detections"]["reference"] > 0 and report["detections"]["recall"] >= 0.5
    assert set(report["metrics"]) == {"fp32", "int8"}
    assert report["metrics"]["int8"]["images"] == 4
    found = OnnxDetector(path).predict(_images())
    assert sum(len(d) for d in found) > 0


def _images():
    from edgevision.tasks.detect.export_check import sample_images

    return sample_images(None, count=2)[0]


def test_int8_without_data_is_refused(checkpoint, tmp_path):
    with pytest.raises(ConfigError, match="--int8 needs --data"):
        api.export(str(checkpoint), int8=True, out=str(tmp_path / "m.onnx"), verbose=False)
