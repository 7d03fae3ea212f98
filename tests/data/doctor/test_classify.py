"""The data check of a classification set: corrupt images, empty classes, imbalance."""

from __future__ import annotations

from edgevision.core import issues as kinds
from edgevision.data.doctor.classify import EMPTY_CLASS, check_classification
from edgevision.data.synth.classify import synthesize_classification
from tests.data.classify_cases import folder_set


def test_check_reports_corrupt_images_empty_classes_and_imbalance(tmp_path):
    folder_set(tmp_path / "train", {"big": 30, "small": 2})
    (tmp_path / "train" / "empty").mkdir()
    (tmp_path / "train" / "small" / "broken.jpg").write_bytes(b"\xff\xd8garbage")
    (tmp_path / "train" / "small" / "notes.txt").write_text("x")
    folder_set(tmp_path / "val", {"big": 3, "small": 1})
    report = check_classification(tmp_path)
    assert report.class_names == ["big", "empty", "small"]
    assert report.counts["train"].tolist() == [30, 0, 2] and report.counts["val"].tolist() == [
        3,
        0,
        1,
    ]
    assert sorted(issue.kind for issue in report.issues) == [EMPTY_CLASS, kinds.UNREADABLE_IMAGE]
    assert report.exit_code == 1 and report.imbalance() == {
        "train": float("inf"),
        "val": float("inf"),
    }
    text = report.format_text()
    assert "broken.jpg" in text and "'empty' has no readable training images" in text
    assert "imbalanced" in text and "notes.txt" in text
    assert report.to_json()["imbalance"] == {"train": None, "val": None}  # JSON has no infinity


def test_check_of_a_clean_set_exits_zero(tmp_path):
    root = synthesize_classification(tmp_path, n_train=10, n_val=5)
    report = check_classification(root, deep=True)
    assert report.exit_code == 0 and report.imbalance() == {"train": 1.0, "val": 1.0}
    assert report.format_text().endswith("clean") and report.to_json()["counts"]["val"] == [1] * 5
