"""``edgevision analyze`` end to end: the same metrics as ``val``, the error breakdown whose
baseline is ``val``'s AP, a label review that finds labels we broke, out-of-fold models, the
report, ``data check --apply-review``, and the user's files never edited."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from edgevision import api
from edgevision.cli import main
from edgevision.core.errors import ConfigError
from edgevision.data.formats import load_dataset
from edgevision.data.synth.detect import synthesize_detection
from tests.data.doctor.test_check import hash_tree

TRAIN = {
    "model": "nano-s",
    "epochs": 2,
    "imgsz": 64,
    "batch": 4,
    "workers": 0,
    "verbose": False,
    "seed": 3,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(data root, run folder) of a tiny detector trained with plots on (the report is written)."""
    root = tmp_path_factory.mktemp("analyze")
    data = synthesize_detection(root / "voc", n_train=8, n_val=6, width_range=(64, 96), seed=5)
    summary = api.train(data=str(data), project=str(root / "runs"), name="t", **TRAIN)
    return Path(data), Path(summary["run_dir"])


def test_train_writes_val_errors_and_a_report(trained):
    _, run_dir = trained
    for name in ("metrics.json", "per_class.json", "errors.json", "report.html"):
        assert (run_dir / "val" / name).is_file(), name
    html = (run_dir / "report.html").read_text()
    assert 'id="curves"' in html and 'id="errors"' in html and 'id="per-class"' in html


def test_analyze_matches_val_and_reviews_labels(trained, tmp_path):
    data, run_dir = trained
    weights = str(run_dir / "weights" / "best.pt")
    before = hash_tree(data)
    val = api.evaluate(weights, str(data), project=str(tmp_path), name="val", imgsz=64)
    result = api.analyze(weights, str(data), project=str(tmp_path), name="an", imgsz=64)
    assert hash_tree(data) == before  # never the user's files
    out = Path(result["run_dir"])
    assert json.loads((out / "metrics.json").read_text()) == val["metrics"] | {
        k: None for k, v in val["metrics"].items() if v != v
    }
    errors = json.loads((out / "errors.json").read_text())
    assert errors["baseline"]["mAP50"] == val["metrics"]["mAP50"]
    assert errors["baseline"]["mAP50-95"] == val["metrics"]["mAP50-95"]
    with open(out / "label_review.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header[:4] == ["file", "object", "kind", "score"] and header[-1] == "accept"
    record_set, _ = load_dataset(out / "review_copy", split="all")
    assert len(record_set) == len(load_dataset(data, split="val")[0])  # a readable marked copy
    assert (
        "label review:" in result["text"]
        and 'id="label-review"' in (out / "report.html").read_text()
    )


def test_out_of_fold_models_judge_every_image(trained, tmp_path, capsys):
    data, run_dir = trained
    weights = str(run_dir / "weights" / "best.pt")
    result = api.analyze(
        weights, str(data), split="train", folds=2, fold_epochs=1, project=str(tmp_path), name="f"
    )
    out = capsys.readouterr().out
    assert "fold 1/2: training on 4 images" in out and "fold 2/2: training on 4 images" in out
    folds = Path(result["run_dir"]) / "folds"
    for fold in (0, 1):
        assert (folds / f"fold{fold}" / "weights" / "best.pt").is_file()
        train = (folds / "data" / "ImageSets" / "Main" / f"fold{fold}_train.txt").read_text()
        held = (folds / "data" / "ImageSets" / "Main" / f"fold{fold}_val.txt").read_text()
        assert not set(train.split()) & set(held.split())  # no model judges what it learned
    per_class = json.loads((Path(result["run_dir"]) / "per_class.json").read_text())
    assert sum(row["num_gt"] for row in per_class) == load_dataset(data, "train")[0].num_objects


def test_analyze_refuses_what_it_cannot_do(trained, tmp_path, release_checkpoints):
    data, run_dir = trained
    weights = str(run_dir / "weights" / "best.pt")
    with pytest.raises(ConfigError, match="--folds 1"):
        api.analyze(weights, str(data), folds=1, project=str(tmp_path))
    with pytest.raises(ConfigError, match="analyze supports detection"):
        api.analyze(str(release_checkpoints["classify"]), str(data), project=str(tmp_path))


def test_cli_analyze_report_and_apply_review(trained, tmp_path, capsys):
    data, run_dir = trained
    weights = str(run_dir / "weights" / "best.pt")
    argv = ["analyze", "--weights", weights, "--data", str(data), "--imgsz", "64"]
    assert main([*argv, "--project", str(tmp_path), "--name", "cli"]) == 0
    printed = capsys.readouterr().out
    assert "label review:" in printed and "mAP50-95" in printed  # val's printout, then the review
    report = tmp_path / "cli" / "report.html"
    report.unlink()
    assert main(["report", str(tmp_path / "cli"), "--title", "mine"]) == 0
    assert "mine" in report.read_text()
    # One accepted row: drop the first object of the first val image.
    record_set, _ = load_dataset(data, split="val")
    first = record_set.records[0]
    review = tmp_path / "review.csv"
    shutil.copy(tmp_path / "cli" / "label_review.csv", review)
    box = " ".join(f"{v:g}" for v in first.boxes[0])  # 0-based continuous pixels, as records
    name = record_set.class_names[int(first.labels[0])]
    file = first.image_path.relative_to(record_set.root).as_posix()
    with open(review, "a", newline="") as f:
        csv.writer(f).writerow([file, 0, "unsupported", "0.9", name, box, "", "", "", "yes"])
    before = hash_tree(data)
    fixed = tmp_path / "fixed"
    code = main(["data", "check", str(data), "--apply-review", str(review), "--out", str(fixed)])
    assert hash_tree(data) == before
    text = capsys.readouterr().out
    assert "after applying the review" in text and "1 removed" in text
    assert code == (
        1 if "run edgevision data check --fix" in text.split("after applying")[1] else 0
    )
    again, _ = load_dataset(fixed, split="val")
    assert again.records[0].num_objects == first.num_objects - 1
    assert main(["data", "check", str(data), "--apply-review", str(review), "--fix"]) == 2
    assert "not together" in capsys.readouterr().err
