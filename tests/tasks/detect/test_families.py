"""Every detector family through the whole path from the command line: train on VOC, COCO or YOLO
input, val on all three, predict a folder, export (raw, and NMS in a dynamic graph, both
parity-checked), INT8, the torch-free runtime on the .onnx, --weights with another class count,
and --resume (tiny sets, one epoch at 64 px: the path, not the accuracy)."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch

from edgevision import api
from edgevision.cli import main
from edgevision.data.convert import convert_dataset
from edgevision.data.synth.detect import synthesize_detection
from edgevision.engine.checkpoint import load_checkpoint, state_dict_from
from edgevision.models.zoo import model_names

# The families added beside anchor-free nano/yolo (those have their own CLI tests); each trains on
# another input format, so every format feeds every kind of head somewhere.
FAMILIES = {
    "yolo-tiny-anchor": ("anchor", "voc"),
    "ssdlite-mnv2": ("ssd", "coco"),
    "ssd-grid": ("ssd", "yolo"),
    "rep-n": ("anchor_free", "voc"),
}
FORMATS = ("voc", "coco", "yolo")
TRAIN = ["--epochs", "1", "--imgsz", "64", "--batch", "4", "--workers", "0", "--seed", "3"]
TRAIN += ["--no-plots", "--no-verbose", "--lr0", "0.002"]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    voc = synthesize_detection(root / "voc", n_train=9, n_val=4, width_range=(64, 96), seed=5)
    return {
        "voc": voc,
        "coco": convert_dataset(voc, "coco", root / "coco"),
        "yolo": convert_dataset(voc, "yolo", root / "yolo"),
    }


def _train(data, project, name, *extra) -> int:
    return main(
        ["train", "--data", str(data), "--project", str(project), "--name", name, *TRAIN, *extra]
    )


def test_every_family_is_tested_here():
    assert set(FAMILIES) <= set(model_names("detect"))


@pytest.mark.slow
@pytest.mark.parametrize("model", list(FAMILIES))
def test_family_through_the_whole_path(model, datasets, tmp_path):
    family, fmt = FAMILIES[model]
    # 9 training images at batch 4: the lone last image is dropped (BatchNorm on SSD's 1x1 cells).
    assert _train(datasets[fmt], tmp_path, "run", "--model", model) == 0
    best = tmp_path / "run" / "weights" / "best.pt"
    meta = load_checkpoint(best)["meta"]
    assert meta["head"] == family and meta["model_name"] == model
    assert "mAP50-95" in (tmp_path / "run" / "results.csv").read_text().splitlines()[0]

    # val: the same weights give the same metrics whichever format holds the boxes.
    stats = {}
    for name in FORMATS:
        argv = ["val", "--weights", str(best), "--data", str(datasets[name]), "--workers", "0"]
        assert main([*argv, "--project", str(tmp_path), "--name", f"val-{name}"]) == 0
        stats[name] = json.loads((tmp_path / f"val-{name}" / "metrics.json").read_text())
    for name in ("coco", "yolo"):
        for key in ("mAP50-95", "mAP50", "AR100"):
            assert stats[name][key] == pytest.approx(stats["voc"][key], rel=1e-3, abs=1e-9)

    # predict a folder with the PyTorch weights.
    folder = datasets["voc"] / "JPEGImages"
    argv = [
        "predict",
        "--source",
        str(folder),
        "--conf",
        "0.001",
        "--max-det",
        "100",
        "--save-json",
    ]
    assert main([*argv, "--weights", str(best), "--project", str(tmp_path), "--name", "pt"]) == 0

    # export: raw, and decode + NMS in a dynamic graph; each checked against PyTorch.
    exports = {"raw": {}, "nms": {"nms": True, "dynamic": True}}
    for name, options in exports.items():
        out = tmp_path / f"{name}.onnx"
        result = api.export(str(best), out=str(out), verbose=False, simplify=False, **options)
        check = result["parity"]["checks"]["fp32"]
        assert check["raw_max_abs_diff"] < 1e-2, check
        assert check["detections"]["matched"] == check["detections"]["reference"], check
    # The torch-free runtime decodes the raw graph with the family's numpy twin: the same
    # detections as PyTorch's decode and NMS (and the graph with NMS inside runs too).
    found = {"pt": json.loads(next((tmp_path / "pt").rglob("*.json")).read_text())}
    for name in exports:
        weights = str(tmp_path / f"{name}.onnx")
        assert main([*argv, "--weights", weights, "--project", str(tmp_path), "--name", name]) == 0
        found[name] = json.loads(next((tmp_path / name).rglob("*.json")).read_text())
    assert found["raw"] and len(found["raw"]) == len(found["pt"])
    by_torch = {}
    for b in found["pt"]:
        by_torch.setdefault((b["file_name"], b["category_id"]), []).append(b)
    for a in found["raw"]:
        assert any(_same(a, b) for b in by_torch[a["file_name"], a["category_id"]]), a


def _same(a: dict, b: dict) -> bool:
    return abs(a["score"] - b["score"]) < 1e-4 and np.allclose(a["bbox"], b["bbox"], atol=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["yolo-tiny-anchor", "ssd-grid"])
def test_int8_and_weights_with_another_class_count(model, datasets, tmp_path):
    assert _train(datasets["voc"], tmp_path, "run", "--model", model) == 0
    best = tmp_path / "run" / "weights" / "best.pt"
    result = api.export(
        str(best), out=str(tmp_path / "m.onnx"), int8=True, data=str(datasets["voc"]),
        simplify=False, verbose=False, int8_keep_slower=True,
    )  # fmt: skip
    assert result["int8"]["calibration_images"] == 9
    assert result["int8"]["speed"]["fp32_ms"] > 0 and result["int8"]["speed"]["int8_ms"] > 0
    assert set(result["int8"]["metrics"]) == {"fp32", "int8"}
    # --weights into a model of another class count: everything but the class predictors loads.
    two_classes = _one_class_copy(datasets["voc"], tmp_path / "one")
    assert _train(two_classes, tmp_path, "fine", "--model", model, "--weights", str(best)) == 0
    tuned = state_dict_from(load_checkpoint(tmp_path / "fine" / "weights" / "last.pt"))
    trained = state_dict_from(load_checkpoint(best))
    backbone = [k for k in trained if k.startswith("backbone.") and trained[k].is_floating_point()]
    assert backbone and all(tuned[k].shape == trained[k].shape for k in backbone)


def _one_class_copy(voc, out):
    """The VOC set with every object renamed "thing": a one-class dataset."""
    shutil.copytree(voc, out)
    for xml in (out / "Annotations").glob("*.xml"):
        text = re.sub(r"<name>[^<]*</name>", "<name>thing</name>", xml.read_text())
        xml.write_text(text)
    return out


@pytest.mark.slow
def test_resume_keeps_the_clustered_anchors_and_equals_an_uninterrupted_run(datasets, tmp_path):
    """yolo-tiny-anchor: the anchors given at train start (--anchors FILE) live in the checkpoint; a run resumed
    from its first epoch's checkpoint ends with the same weights and anchors as one that was not
    stopped."""
    anchors = tmp_path / "anchors.txt"
    anchors.write_text("# w,h in input pixels\n4,5  8,7  9,16\n20,18  30,41  60,52\n")
    args = ["--model", "yolo-tiny-anchor", "--epochs", "2", "--save-period", "1"]
    args += ["--anchors", str(anchors)]
    assert _train(datasets["voc"], tmp_path, "whole", *args) == 0
    whole = tmp_path / "whole" / "weights"
    shutil.copytree(tmp_path / "whole", tmp_path / "cut")
    shutil.copy(whole / "epoch1.pt", tmp_path / "cut" / "weights" / "last.pt")
    assert main(["train", "--resume", str(tmp_path / "cut")]) == 0
    expected = state_dict_from(load_checkpoint(whole / "last.pt"))
    resumed = state_dict_from(load_checkpoint(tmp_path / "cut" / "weights" / "last.pt"))
    given = torch.tensor([[[4.0, 5], [8, 7], [9, 16]], [[20, 18], [30, 41], [60, 52]]])
    assert torch.equal(expected["head.anchors"], given)  # --anchors FILE, kept in the checkpoint
    for key, value in expected.items():
        assert torch.equal(resumed[key], value), key
