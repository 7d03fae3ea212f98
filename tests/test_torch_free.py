"""Where nothing needs PyTorch, nothing imports it: the package face, the data commands, and a
clear message (not a traceback) from a command that does need it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from tests.torch_blocked import run_without_torch


def test_importing_edgevision_is_light():
    """No torch, OpenCV or numpy behind ``import edgevision``; the public names resolve lazily."""
    code = (
        "import sys, time; start = time.perf_counter(); import edgevision; "
        "took = time.perf_counter() - start; "
        "heavy = [m for m in ('torch', 'cv2', 'numpy', 'onnxruntime') if m in sys.modules]; "
        "print(took, heavy, edgevision.__all__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    took, heavy, names = out.stdout.split(" ", 2)
    assert heavy == "[]" and float(took) < 0.2
    for name in ("train", "evaluate", "predict", "load_model", "Detections", "Classifications"):
        assert repr(name) in names
    import edgevision

    assert edgevision.Detections.__module__ == "edgevision.core.results"
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        edgevision.nonsense  # noqa: B018


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("torch_free")
    for task, n_train in (("detect", "8"), ("classify", "10")):
        made = run_without_torch(
            "data", "synth", str(root / task), "--task", task, "--n-train", n_train, "--n-val", "5"
        )
        assert made.returncode == 0, made.stderr
    return root


def test_every_data_command_runs_without_torch(datasets, tmp_path):
    voc, cls = str(datasets / "detect"), str(datasets / "classify")
    runs = str(tmp_path / "runs")
    commands = [
        ("data", "check", voc, "--json", str(tmp_path / "check.json")),
        ("data", "check", cls),
        ("data", "stats", voc, "--project", runs),
        (
            "data",
            "anchors",
            voc,
            "-k",
            "3",
            "--imgsz",
            "160",
            "--generations",
            "0",
            "--project",
            runs,
        ),
        ("data", "convert", voc, "--to", "coco", "--out", str(tmp_path / "coco")),
        ("data", "split", voc, "--val", "0.2", "--test", "0", "--force"),
    ]
    for command in commands:
        done = run_without_torch(*command)
        assert done.returncode == 0, (command, done.stdout[-500:], done.stderr[-2000:])
    assert json.loads((tmp_path / "check.json").read_text())["check"]
    assert (tmp_path / "runs" / "stats" / "stats.json").is_file()


def test_a_command_that_needs_torch_says_so(datasets):
    done = run_without_torch("train", "--data", str(datasets / "detect"), "--epochs", "1")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "`edgevision train` needs PyTorch" in done.stderr and "pip install torch" in done.stderr


def test_the_core_install_is_torch_free_and_training_is_an_extra():

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"])
    assert "torch" not in core and "onnxruntime" in core
    assert any(req.startswith("torch") for req in project["optional-dependencies"]["train"])
