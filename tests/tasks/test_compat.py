"""Checkpoints written by the first release still work: they load, predict, validate, export (see
``test_onnx_roundtrip``) and a run they belong to resumes."""

from __future__ import annotations

import csv

import pytest
import torch

from edgevision import api
from edgevision.engine.checkpoint import load_checkpoint, save_checkpoint
from edgevision.tasks import load_model
from tests.detector import CLASS_NAMES, biased_detector


@pytest.mark.parametrize("task", ["detect", "classify"])
def test_first_release_weights_load_as_their_task(release_checkpoints, task):
    loaded = load_model(release_checkpoints[task])
    assert loaded.task == task and not loaded.model.training
    if task == "detect":  # no head family in the file: anchor-free, as every release-1 detector
        assert loaded.meta["head"] == "anchor_free" and loaded.class_names == CLASS_NAMES
        reference = biased_detector()
        for key, value in reference.state_dict().items():
            assert torch.equal(loaded.model.state_dict()[key], value), key


def test_a_checkpoint_naming_another_head_family_is_refused(release_checkpoints, tmp_path):
    state = load_checkpoint(release_checkpoints["detect"])
    state["meta"] = {**state["meta"], "head": "anchor_based"}
    save_checkpoint(tmp_path / "other.pt", state)
    with pytest.raises(Exception, match="'anchor_based' head, but nano-s has a 'anchor_free' head"):
        load_model(tmp_path / "other.pt")


def test_a_first_release_run_resumes_to_its_end(task_data, tmp_path):
    options = dict(model="nano-s", imgsz=64, batch=4, nbs=4, workers=0, verbose=False, plots=False)
    api.train(data=task_data["detect"], epochs=1, project=str(tmp_path), name="run", **options)
    last = tmp_path / "run" / "weights" / "last.pt"
    state = load_checkpoint(last)
    for key in ("head", "strides"):  # what the first release did not write
        del state["meta"][key]
    state["config"] = {**state["config"], "task": "detect", "epochs": 2}  # its default then
    save_checkpoint(last, state)
    summary = api.train(resume=str(tmp_path / "run"))
    assert summary["epochs"] == 1 and load_checkpoint(last)["epoch"] == 1  # epoch 2 of 2 ran
    with open(tmp_path / "run" / "results.csv", newline="") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1", "2"]
    assert load_checkpoint(last)["meta"]["head"] == "anchor_free"  # written by this release
