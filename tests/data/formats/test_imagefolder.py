"""Classification data on disk: ImageFolder layouts, stratified hold-out, CSV lists."""

from __future__ import annotations

import pytest

from edgevision.core import issues as kinds
from edgevision.core.errors import DataError
from edgevision.data.formats.imagefolder import (
    detect_layout,
    is_classification_data,
    load_classification,
    stratified_holdout,
)
from tests.data.classify_cases import folder_set, write_image


def test_splits_layout_with_valid_alias_and_hidden_folders_ignored(tmp_path):
    folder_set(tmp_path / "train", {"cat": 3, "dog": 2})
    folder_set(tmp_path / "valid", {"cat": 1, "dog": 1})
    write_image(tmp_path / "train" / ".ipynb_checkpoints" / "x.png")
    write_image(tmp_path / "train" / "cat" / ".hidden" / "y.png")
    train, issues = load_classification(tmp_path, "train")
    val, _ = load_classification(tmp_path, "val")
    assert issues == [] and train.class_names == ["cat", "dog"]
    assert train.counts().tolist() == [3, 2] and val.counts().tolist() == [1, 1]
    assert [p.name for p, _ in val.samples] == ["cat_000.png", "dog_000.png"]


def test_one_folder_holdout_is_stratified_disjoint_and_seeded(tmp_path):
    folder_set(tmp_path, {"a": 10, "b": 5, "c": 1})
    train, _ = load_classification(tmp_path, "train", seed=0)
    val, _ = load_classification(tmp_path, "val", seed=0)
    assert detect_layout(tmp_path) == "folder"
    assert val.counts().tolist() == [2, 1, 0]  # 20%, at least 1, never a class's only image
    assert train.counts().tolist() == [8, 4, 1]
    assert not {p for p, _ in train.samples} & {p for p, _ in val.samples}
    again, _ = load_classification(tmp_path, "val", seed=0)
    reseeded, _ = load_classification(tmp_path, "val", seed=5)
    assert again.samples == val.samples and reseeded.samples != val.samples


def test_holdout_of_a_class_does_not_depend_on_other_classes(tmp_path):
    paths = [tmp_path / f"{i}.png" for i in range(20)]
    alone = stratified_holdout({"x": paths}, 0.25, seed=1)
    together = stratified_holdout({"x": paths, "y": [tmp_path / "y.png"] * 3}, 0.25, seed=1)
    assert len(alone) == 5 and alone <= together


def test_csv_layout_header_split_column_and_defects(tmp_path):
    for name in ("a.png", "b.png", "c.png", "d.png"):
        write_image(tmp_path / "img" / name)
    (tmp_path / "outside.png").write_bytes(b"")
    csv_path = tmp_path / "data" / "labels.csv"
    csv_path.parent.mkdir()
    for name in ("a.png", "b.png", "c.png", "d.png"):
        (tmp_path / "data" / name).write_bytes((tmp_path / "img" / name).read_bytes())
    csv_path.write_text(
        "file,label,split\n# comment\na.png,10,train\nb.png,2,train\nc.png,2,valid\n"
        "d.png,10,val\nmissing.png,2,train\n../outside.png,2,train\nlonely\ne.png,2,holdout\n"
    )
    train, issues = load_classification(csv_path, "train")
    val, _ = load_classification(csv_path, "val")
    assert train.class_names == ["2", "10"]  # integer labels sort numerically
    assert [(p.name, label) for p, label in train.samples] == [("b.png", 0), ("a.png", 1)]
    assert [(p.name, label) for p, label in val.samples] == [("c.png", 0), ("d.png", 1)]
    found = {(issue.kind, issue.line) for issue in issues}
    assert {
        (kinds.PATH_ESCAPE, 8),
        (kinds.CORRUPT_ANNOTATION, 9),
        (kinds.CORRUPT_ANNOTATION, 10),
    } <= found
    assert any(i.kind == kinds.MISSING_IMAGE and i.path.name == "missing.png" for i in issues)


def test_csv_without_header_or_split_gets_the_holdout(tmp_path):
    for i in range(10):
        write_image(tmp_path / f"{i}.png")
    (tmp_path / "l.csv").write_text(
        "".join(f"{i}.png,{'cat' if i < 5 else 'dog'}\n" for i in range(10))
    )
    train, _ = load_classification(tmp_path / "l.csv", "train")
    val, _ = load_classification(tmp_path / "l.csv", "val")
    assert train.counts().tolist() == [4, 4] and val.counts().tolist() == [1, 1]


def test_fixed_class_list_reports_unknown_classes(tmp_path):
    folder_set(tmp_path / "train", {"cat": 2, "cow": 1})
    data, issues = load_classification(tmp_path, "all", class_names=["dog", "cat"])
    assert [label for _, label in data.samples] == [1, 1]
    assert [issue.kind for issue in issues] == [kinds.UNKNOWN_CLASS]


def test_not_a_classification_dataset(tmp_path):
    (tmp_path / "Annotations").mkdir()
    write_image(tmp_path / "JPEGImages" / "a.jpg")
    assert not is_classification_data(tmp_path)
    with pytest.raises(DataError, match="no class folders"):
        detect_layout(tmp_path / "Annotations")
    folder_set(tmp_path / "flowers", {"rose": 1})
    assert is_classification_data(tmp_path / "flowers")
