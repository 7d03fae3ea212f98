"""Pose end to end for K = 5 and K = 17, from COCO keypoints and YOLO-pose inputs (tiny
generated sets): train, val (OKS with the data's sigmas, named), predict with skeletons and COCO
keypoint rows, export with keypoints in the NMS graph (parity-checked), and the torch-free
runtime predicting keypoints from the ``.onnx``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgevision import api
from edgevision.cli import main
from edgevision.core.errors import DataError
from edgevision.data.convert import convert_dataset
from edgevision.data.synth.pose import synthesize_pose
from edgevision.runtime import open_model
from tests.torch_blocked import run_without_torch

TRAIN = {"epochs": 1, "imgsz": 64, "batch": 4, "workers": 0, "verbose": False, "seed": 1}


@pytest.fixture(scope="module", params=[5, 17])
def pose_run(request, tmp_path_factory):
    """(data by format, run folder) of a nano-s-pose trained one epoch on K keypoints."""
    k = request.param
    root = tmp_path_factory.mktemp(f"pose{k}")
    coco = synthesize_pose(root / "coco", n_train=8, n_val=4, num_keypoints=k, seed=k)
    data = {"coco": coco, "yolo": convert_dataset(coco, "yolo", root / "yolo")}
    summary = api.train(
        data=str(data["coco"]), model="nano-s-pose", project=str(root), name="t", **TRAIN
    )
    return k, data, Path(summary["run_dir"])


def test_train_val_from_both_formats(pose_run, tmp_path):
    k, data, run_dir = pose_run
    meta_metrics = json.loads((run_dir / "val" / "metrics.json").read_text())
    assert len(meta_metrics["kpt_sigmas"]) == k and "OKS mAP50-95" in meta_metrics
    assert "sigmas from" in (run_dir / "val" / "metrics.txt").read_text()
    assert 'id="metrics"' in (run_dir / "report.html").read_text()
    weights = str(run_dir / "weights" / "best.pt")
    scores = {}
    for fmt, root in data.items():
        result = api.evaluate(weights, str(root), project=str(tmp_path), name=fmt, imgsz=64)
        assert "keypoints: COCO OKS by" in result["text"]
        scores[fmt] = result["metrics"]
    # The same labels through both readers give the same numbers (conversion is lossless).
    for name in ("OKS mAP50-95", "OKS mAP50", "mAP50-95"):
        assert scores["coco"][name] == pytest.approx(scores["yolo"][name], abs=1e-6), name
    trained = api.train(
        data=str(data["yolo"]), model="nano-s-pose", project=str(tmp_path), name="y", **TRAIN
    )
    assert (Path(trained["run_dir"]) / "weights" / "last.pt").is_file()


def test_predict_draws_and_writes_coco_keypoint_rows(pose_run, tmp_path):
    k, data, run_dir = pose_run
    weights = str(run_dir / "weights" / "best.pt")
    source = str(Path(data["coco"]) / "images" / "val")
    results = api.predict(
        weights, source, conf=0.0, save_json=True, project=str(tmp_path), name="p"
    )
    assert results and all(r.keypoints.shape == (len(r), k, 3) for r in results)
    assert results[0].skeleton  # the data's skeleton travels with the model
    rows = json.loads((tmp_path / "p" / "predictions.json").read_text())
    assert rows and all(len(row["keypoints"]) == 3 * k for row in rows)
    assert len(list((tmp_path / "p").glob("*.jpg"))) == 4


def test_export_with_keypoints_in_the_graph_and_the_torch_free_runtime(pose_run, tmp_path):
    k, data, run_dir = pose_run
    weights = str(run_dir / "weights" / "best.pt")
    for nms in (False, True):
        out = tmp_path / f"pose_{'nms' if nms else 'raw'}.onnx"
        report = api.export(weights, nms=nms, out=str(out), verbose=False)
        assert report["path"] == str(out) and "OK" in report["text"]
        outputs = [o.name for o in onnx.load(str(out)).graph.output]
        assert ("keypoints" in outputs) == nms
        session = open_model(out, conf=0.0)
        assert session.info.task == "pose"
        image = np.full((96, 120, 3), 128, np.uint8)
        found = session.predict_images([image], ["x"])[0]
        assert found.keypoints is not None and found.keypoints.shape[1:] == (k, 3)
    source = str(Path(data["coco"]) / "images" / "val")
    done = run_without_torch(
        "predict", "--weights", str(tmp_path / "pose_raw.onnx"), "--source", source,
        "--project", str(tmp_path), "--name", "free", "--conf", "0.0",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "free" / "predictions.json").read_text())
    assert rows and len(rows[0]["keypoints"]) == 3 * k


def test_a_pose_model_on_box_only_data_is_a_clear_error(tmp_path):
    from edgevision.data.synth.detect import synthesize_detection

    voc = synthesize_detection(tmp_path / "voc", n_train=4, n_val=2, seed=1)
    with pytest.raises(DataError, match="needs keypoints"):
        api.train(data=str(voc), model="nano-s-pose", project=str(tmp_path), **TRAIN)
    argv = ["train", "--data", str(voc), "--model", "nano-s-pose", "--epochs", "1"]
    assert main([*argv, "--project", str(tmp_path / "cli")]) == 1
