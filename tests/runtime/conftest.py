"""Fixtures: the export tests' checkpoint, exported without the export checks (fast)."""

from __future__ import annotations

import pytest

from edgevision.tasks import load_model
from edgevision.tasks.detect.export import export_model
from tests.detector import IMGSZ, fused_copy, one_torch_thread, write_checkpoint

__all__ = ["one_torch_thread"]


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("weights") / "model.pt")


@pytest.fixture(scope="session")
def onnx_files(checkpoint, tmp_path_factory):
    """``{"raw": path, "nms": path}``: static exports of the checkpoint at IMGSZ."""
    loaded = load_model(checkpoint)
    fused, meta = fused_copy(loaded.model), loaded.meta
    folder = tmp_path_factory.mktemp("onnx")
    return {
        "raw": export_model(fused, meta, folder / "raw.onnx", IMGSZ),
        "nms": export_model(fused, meta, folder / "nms.onnx", IMGSZ, nms=True, max_det=100),
    }
