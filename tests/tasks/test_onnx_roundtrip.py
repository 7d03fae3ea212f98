"""Every task, exported as a new user would: the file passes strict consumers (the full ONNX
checker, OpenCV's DNN module), and predicts and validates from the ``.onnx`` with torch
unimportable, printing what the ``.pt`` path prints."""

from __future__ import annotations

import re

import cv2
import numpy as np
import onnx
import pytest

from edgevision import api
from edgevision.cli import main
from edgevision.core.image import center_crop_view, letterbox, to_input
from edgevision.runtime import open_session
from tests.tasks.conftest import images_of
from tests.torch_blocked import run_without_torch

TASKS = ["detect", "classify"]


@pytest.mark.parametrize("task", TASKS)
def test_exported_files_pass_the_full_checker_with_one_value_per_key(exported, task):
    proto = onnx.load(exported[task])
    onnx.checker.check_model(proto, full_check=True)
    keys = [prop.key for prop in proto.metadata_props]
    assert len(keys) == len(set(keys))
    props = {prop.key: prop.value for prop in proto.metadata_props}
    assert props["task"] == task and props["edgevision_format"] == "1"


@pytest.mark.parametrize("task", TASKS)
def test_opencv_dnn_loads_the_file_and_agrees_with_onnx_runtime(exported, task_data, task):
    images = images_of(task_data[task])
    size = 128 if task == "detect" else 64
    view = letterbox(images[0], size)[0] if task == "detect" else center_crop_view(images[0], size)
    batch = to_input([view])
    expected = open_session(exported[task]).run(None, {"images": batch})[0]
    net = cv2.dnn.readNetFromONNX(exported[task])
    net.setInput(batch)
    got = net.forward()
    assert got.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, atol=1e-3 * scale)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("task", TASKS)
def test_predict_from_the_onnx_without_torch_prints_what_the_pt_path_prints(
    release_checkpoints, exported, task_data, task, tmp_path, capsys
):
    folder = task_data[task] if task == "classify" else f"{task_data[task]}/JPEGImages"
    options = ["--project", str(tmp_path), "--exist-ok", "--save-json"]
    blocked = run_without_torch(
        "predict", "--weights", exported[task], "--source", folder, "--name", "onnx", *options
    )
    assert blocked.returncode == 0, blocked.stderr
    assert (
        main(
            [
                "predict",
                "--weights",
                str(release_checkpoints[task]),
                "--source",
                folder,
                "--name",
                "pt",
                *options,
            ]
        )
        == 0
    )
    pt_lines = [line for line in _lines(capsys.readouterr().out) if ": " in line]
    onnx_lines = [line for line in _lines(blocked.stdout) if ": " in line]
    assert len(pt_lines) == len(onnx_lines) > 2
    for pt, ox in zip(pt_lines, onnx_lines, strict=True):
        assert pt.split(": ")[0] == ox.split(": ")[0]  # same image, same order
        if task == "classify":  # "path: label p, ..." with the same best label
            assert pt.split(": ")[1].split()[0] == ox.split(": ")[1].split()[0]
    assert (tmp_path / "onnx" / "predictions.json").is_file()
    assert (tmp_path / "pt" / "predictions.json").is_file()


@pytest.mark.parametrize("task", TASKS)
def test_val_from_the_onnx_without_torch_reports_the_pt_metrics(
    release_checkpoints, exported, task_data, task, tmp_path
):
    blocked = run_without_torch(
        "val",
        "--weights",
        exported[task],
        "--data",
        task_data[task],
        "--project",
        str(tmp_path),
        "--name",
        "onnx",
        "--workers",
        "0",
    )
    assert blocked.returncode == 0, blocked.stderr
    pt = api.evaluate(
        str(release_checkpoints[task]), task_data[task], workers=0, project=str(tmp_path), name="pt"
    )
    pattern = r"mAP50-95 \(COCO.* ([\d.]+)$" if task == "detect" else r"top-1 ([\d.]+)"
    pt_value = float(re.search(pattern, pt["text"], re.M).group(1))
    onnx_value = float(re.search(pattern, blocked.stdout, re.M).group(1))
    assert onnx_value == pytest.approx(pt_value, abs=0.02)
    assert len(_lines(blocked.stdout)) >= len(_lines(pt["text"]))  # the same report, printed


def test_bench_of_an_onnx_without_torch(exported):
    blocked = run_without_torch(
        "bench", "--weights", exported["detect"], "--runs", "3", "--warmup", "1", "--threads", "1"
    )
    assert blocked.returncode == 0, blocked.stderr
    assert "onnx_fp32" in blocked.stdout and "onnx_int8" in blocked.stdout
    assert "pytorch" not in blocked.stdout and "GFLOPs" in blocked.stdout
