"""OnnxDetector: torch-free, equal to the PyTorch predictor, and clear about bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

from edgevision.core.errors import CheckpointError, ConfigError, DataError
from edgevision.core.image import read_image
from edgevision.runtime import (
    ModelInfo,
    OnnxClassifier,
    OnnxDetector,
    open_model,
    parse_metadata,
    to_metadata,
)
from edgevision.tasks import load_model
from edgevision.tasks.detect.export_check import sample_images
from edgevision.tasks.detect.inference import DetectionPredictor as Predictor
from tests.detector import CLASS_NAMES, IMGSZ

BLOCKED_RUN = """
import importlib.abc, json, sys

class BlockTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
        return None

sys.meta_path.insert(0, BlockTorch())
try:
    import torch  # noqa: F401
    sys.exit("the torch block does not work")
except ImportError:
    pass
from edgevision.runtime import OnnxDetector

detector = OnnxDetector(sys.argv[1], threads=1)
results = detector.predict(sys.argv[2:])
assert not any(name == "torch" or name.startswith("torch.") for name in sys.modules)
print(json.dumps([{"boxes": r.boxes.tolist(), "scores": r.scores.tolist(),
                   "classes": r.classes.tolist()} for r in results]))
"""


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for index, image in enumerate(sample_images(None, count=3, seed=3)[0]):
        paths.append(folder / f"sample{index}.png")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return paths


@pytest.mark.parametrize("layout", ["raw", "nms"])
def test_runtime_without_torch_matches_the_pytorch_predictor(
    layout, onnx_files, checkpoint, image_files
):
    command = [sys.executable, "-c", BLOCKED_RUN, str(onnx_files[layout]), *map(str, image_files)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    found = json.loads(completed.stdout)
    loaded = load_model(checkpoint)
    predictor = Predictor(
        loaded.model, loaded.class_names, IMGSZ, torch.device("cpu"), 0.25, 0.45, 100
    )
    expected = predictor.predict_images(
        [read_image(p) for p in image_files], list(map(str, image_files))
    )
    assert sum(len(e) for e in expected) > 5
    for want, got in zip(expected, found, strict=True):
        assert got["classes"] == want.classes.tolist()
        np.testing.assert_allclose(np.array(got["boxes"]).reshape(-1, 4), want.boxes, atol=1.0)
        np.testing.assert_allclose(got["scores"], want.scores, atol=1e-3)


def test_detections_are_in_original_pixels_with_names(onnx_files, image_files):
    detector = OnnxDetector(onnx_files["raw"])
    result = detector.predict(image_files[0])[0]
    height, width = read_image(image_files[0]).shape[:2]
    assert result.image_path == str(image_files[0]) and result.orig_hw == (height, width)
    assert result.class_names == CLASS_NAMES and result.boxes.dtype == np.float32
    assert result.boxes[:, 2].max() <= width and result.boxes[:, 3].max() <= height


def test_open_model_picks_the_session_of_the_file_task(onnx_files):
    session = open_model(onnx_files["nms"], conf=0.5)
    assert isinstance(session, OnnxDetector) and session.conf == 0.5
    with pytest.raises(CheckpointError, match="a detect model, not a classify model"):
        OnnxClassifier(onnx_files["raw"])
    with pytest.raises(ConfigError, match="has no option 'topk'"):
        session.configure(topk=3)


def test_nms_graph_thresholds_can_only_tighten(onnx_files, image_files):
    loose = OnnxDetector(onnx_files["nms"]).predict(image_files)
    strict = OnnxDetector(onnx_files["nms"], conf=0.5, max_det=2).predict(image_files)
    for a, b in zip(loose, strict, strict=True):
        assert len(b) <= 2 and (b.scores > 0.5).all()
        np.testing.assert_array_equal(b.scores, a.scores[a.scores > 0.5][:2])


def test_metadata_round_trip_and_refusals(tmp_path):
    info = ModelInfo(
        CLASS_NAMES,
        (128, 160),
        "nms",
        strides=(8, 16, 32),
        head="anchor_free",
        codec={"head": "anchor_free", "strides": [8, 16, 32]},
        dynamic=True,
        nms={"conf": 0.3, "iou": 0.5, "max_det": 10},
        preprocess={"kind": "letterbox", "color": 114},
        keypoints={"num_keypoints": 4},
    )
    props = to_metadata(info, ["num_dets", "boxes", "scores", "classes"])
    assert all(isinstance(v, str) for v in props.values())
    assert parse_metadata(props, "m.onnx") == info
    with pytest.raises(CheckpointError, match="m.onnx: ONNX model without edgevision metadata"):
        parse_metadata({"producer": "x"}, "m.onnx")
    with pytest.raises(CheckpointError, match="newer than this edgevision"):
        parse_metadata({**props, "edgevision_format": "99"}, "m.onnx")
    with pytest.raises(CheckpointError, match="malformed edgevision metadata"):
        parse_metadata({**props, "imgsz": "[128"}, "m.onnx")


def test_first_release_files_still_read():
    detector = {  # the keys the first release wrote for a detector (no head, codec, preprocess)
        "edgevision_format": "1", "task": "detect", "class_names": '["a"]', "imgsz": "[64, 64]",
        "strides": "[8, 16, 32]", "output_layout": "raw", "letterbox": '{"color": 114}',
    }  # fmt: skip
    info = parse_metadata(detector, "old.onnx")
    assert info.head == "anchor_free" and info.codec == {
        "head": "anchor_free",
        "strides": [8, 16, 32],
    }
    assert info.preprocess == {"kind": "letterbox", "color": 114}
    classifier = {  # its classifier files had no edgevision_format and a JSON output_layout
        "task": "classify", "class_names": '["a", "b"]', "imgsz": "[96, 96]",
        "preprocess": '{"resize_shorter": 110, "center_crop": 96}',
        "output_layout": '{"probabilities": "(B, C) softmax over class_names"}',
    }  # fmt: skip
    info = parse_metadata(classifier, "old_cls.onnx")
    assert (info.task, info.output_layout, info.strides) == ("classify", "probabilities", ())
    assert info.preprocess == {"kind": "center_crop", "resize_shorter": 110, "crop": 96}


def test_a_file_of_an_unknown_head_family_is_refused(onnx_files, tmp_path):
    proto = onnx.load(str(onnx_files["raw"]))
    for prop in proto.metadata_props:
        if prop.key == "head":
            prop.value = "from_the_future"
    onnx.save(proto, str(tmp_path / "future.onnx"))
    with pytest.raises(CheckpointError, match="head family 'from_the_future' is not known"):
        OnnxDetector(tmp_path / "future.onnx")


def test_unusable_model_files_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="nothing.onnx: ONNX model not found"):
        OnnxDetector(tmp_path / "nothing.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="garbage.onnx: not a loadable ONNX model"):
        OnnxDetector(garbage)
    plain = tmp_path / "plain.onnx"
    node = onnx.helper.make_node("Identity", ["images"], ["raw"])
    inputs = [onnx.helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT, [1, 3, 8, 8])]
    outputs = [onnx.helper.make_tensor_value_info("raw", onnx.TensorProto.FLOAT, [1, 3, 8, 8])]
    graph = onnx.helper.make_graph([node], "g", inputs, outputs)
    onnx.save(onnx.helper.make_model(graph), str(plain))
    with pytest.raises(CheckpointError, match="plain.onnx: ONNX model without edgevision metadata"):
        OnnxDetector(plain)


def test_wrong_images_and_sizes_are_explained(onnx_files, tmp_path):
    detector = OnnxDetector(onnx_files["raw"])
    with pytest.raises(
        DataError, match=r"images\[0\]: array of shape \(8, 8, 3\) and dtype float32"
    ):
        detector.predict(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(DataError, match=r"images\[1\]: array of shape \(8, 8\)"):
        detector.predict([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8)])
    with pytest.raises(DataError, match=r"images\[0\]: got int"):
        detector.predict([3])
    notes = Path(tmp_path / "notes.txt")
    notes.write_text("hello")
    with pytest.raises(DataError, match="notes.txt: not an image file"):
        detector.predict(notes)
    with pytest.raises(ConfigError, match="fixed 128x128 input, cannot run at imgsz 160"):
        OnnxDetector(onnx_files["raw"], imgsz=160)
