"""The demo's whole path on a tiny budget: data, training, the val and report training ends with,
the ONNX export, both engines timed, the speed table in the report, and report.md."""

from __future__ import annotations

import json

from edgevision.demo import run_demo


def test_demo_runs_end_to_end_on_a_tiny_budget(tmp_path):
    text = run_demo(
        project=str(tmp_path), name="d", minutes=0.05, workers=0, n_train=8, n_val=4, imgsz=64
    )
    root = tmp_path / "d"
    run_dir = root / "train"
    assert "mAP50-95" in text and "ONNX Runtime" in text and "PyTorch eager" in text
    assert (root / "report.md").read_text() == text
    speed = json.loads((run_dir / "speed.json").read_text())
    assert [row["engine"] for row in speed] == ["PyTorch eager", "ONNX Runtime"]
    assert all(row["ms_per_image"] > 0 for row in speed)
    html = (run_dir / "report.html").read_text()
    assert 'id="speed"' in html and 'id="errors"' in html
    assert (run_dir / "val" / "errors.json").is_file() and (root / "predictions.png").is_file()


def test_pose_demo_runs_end_to_end_on_a_tiny_budget(tmp_path):
    text = run_demo(
        project=str(tmp_path), name="p", minutes=0.05, workers=0, n_train=8, n_val=4, imgsz=64,
        task="pose",
    )  # fmt: skip
    assert "# edgevision demo (pose)" in text and "OKS mAP50-95" in text and "sigmas" in text
    assert (tmp_path / "p" / "train" / "weights" / "best.onnx").is_file()
    assert (tmp_path / "p" / "predictions.png").is_file()
