"""Fixtures: one detector checkpoint and its exports, made once per test session."""

from __future__ import annotations

import pytest

from edgevision import api
from edgevision.data.synth.detect import synthesize_detection
from tests.detector import one_torch_thread, write_checkpoint

__all__ = ["one_torch_thread"]


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("weights") / "model.pt")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A VOC dataset of 8 train and 4 val synthetic images."""
    return str(synthesize_detection(tmp_path_factory.mktemp("data") / "voc", n_train=8, n_val=4))


def _export(checkpoint, tmp_path_factory, name: str, **options) -> dict:
    out = tmp_path_factory.mktemp("onnx") / f"{name}.onnx"
    return api.export(str(checkpoint), out=str(out), verbose=False, **options)


@pytest.fixture(scope="session")
def raw_export(checkpoint, tmp_path_factory):
    """Static raw-output export, simplified with onnxslim."""
    return _export(checkpoint, tmp_path_factory, "raw")


@pytest.fixture(scope="session")
def nms_export(checkpoint, tmp_path_factory):
    return _export(checkpoint, tmp_path_factory, "nms", nms=True, max_det=50, simplify=False)


@pytest.fixture(scope="session")
def dynamic_export(checkpoint, tmp_path_factory):
    return _export(checkpoint, tmp_path_factory, "dynamic", dynamic=True, simplify=False)


@pytest.fixture(scope="session")
def dynamic_nms_export(checkpoint, tmp_path_factory):
    return _export(
        checkpoint, tmp_path_factory, "dynamic_nms", dynamic=True, nms=True, simplify=False
    )
