"""Classification data: layouts, stratified hold-out, CSV, transforms, Dataset, synth, data check."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest
import torch

from edgevision.core import issues as kinds
from edgevision.core.errors import DataError
from edgevision.core.image import center_crop, center_crop_view
from edgevision.data.datasets.classify import (
    ClassificationDataset,
    ClassifyAugment,
    build_classification_loader,
    crop_window,
    normalize_images,
)
from edgevision.data.doctor.classify import EMPTY_CLASS, check_classification
from edgevision.data.formats.imagefolder import (
    detect_layout,
    is_classification_data,
    list_classification_splits,
    load_classification,
    stratified_holdout,
)
from edgevision.data.synth.classify import CLASS_NAMES, synthesize_classification


def _write_image(path, value: int = 128, size=(40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((size[1], size[0], 3), value, np.uint8)
    image[: size[1] // 2, : size[0] // 2] = 255 - value  # not flat: JPEG and resizes stay honest
    path.write_bytes(cv2.imencode(path.suffix, image)[1].tobytes())


def _folder_set(root, counts: dict[str, int]):
    for name, count in counts.items():
        for i in range(count):
            _write_image(root / name / f"{name}_{i:03d}.png", value=10 * i % 250)
    return root


def test_synth_layout_balanced_and_byte_identical(tmp_path):
    first = synthesize_classification(tmp_path / "a", n_train=10, n_val=5, seed=3)
    second = synthesize_classification(tmp_path / "b", n_train=10, n_val=5, seed=3)
    files = sorted(p.relative_to(first) for p in first.rglob("*.jpg"))
    assert len(files) == 15
    assert [(first / f).read_bytes() == (second / f).read_bytes() for f in files] == [True] * 15
    train, _ = load_classification(first, "train")
    assert train.class_names == list(CLASS_NAMES) and train.counts().tolist() == [2] * 5
    assert detect_layout(first) == "splits" and list_classification_splits(first) == [
        "train",
        "val",
    ]
    other = synthesize_classification(tmp_path / "c", n_train=10, n_val=0, seed=4)
    digest = hashlib.md5((other / files[0]).read_bytes()).hexdigest()
    assert digest != hashlib.md5((first / files[0]).read_bytes()).hexdigest()


def test_synth_refuses_existing_files_unless_forced(tmp_path):
    root = synthesize_classification(tmp_path, n_train=5, n_val=5)
    (root / "train" / "circle" / "mine.txt").write_text("keep me")
    with pytest.raises(DataError, match="--force"):
        synthesize_classification(tmp_path, n_train=5, n_val=5)
    synthesize_classification(tmp_path, n_train=5, n_val=0, force=True)
    assert len(list(root.rglob("*.jpg"))) == 5 and (root / "train" / "circle" / "mine.txt").exists()


def test_splits_layout_with_valid_alias_and_hidden_folders_ignored(tmp_path):
    _folder_set(tmp_path / "train", {"cat": 3, "dog": 2})
    _folder_set(tmp_path / "valid", {"cat": 1, "dog": 1})
    _write_image(tmp_path / "train" / ".ipynb_checkpoints" / "x.png")
    _write_image(tmp_path / "train" / "cat" / ".hidden" / "y.png")
    train, issues = load_classification(tmp_path, "train")
    val, _ = load_classification(tmp_path, "val")
    assert issues == [] and train.class_names == ["cat", "dog"]
    assert train.counts().tolist() == [3, 2] and val.counts().tolist() == [1, 1]
    assert [p.name for p, _ in val.samples] == ["cat_000.png", "dog_000.png"]


def test_one_folder_holdout_is_stratified_disjoint_and_seeded(tmp_path):
    _folder_set(tmp_path, {"a": 10, "b": 5, "c": 1})
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
        _write_image(tmp_path / "img" / name)
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
        _write_image(tmp_path / f"{i}.png")
    (tmp_path / "l.csv").write_text(
        "".join(f"{i}.png,{'cat' if i < 5 else 'dog'}\n" for i in range(10))
    )
    train, _ = load_classification(tmp_path / "l.csv", "train")
    val, _ = load_classification(tmp_path / "l.csv", "val")
    assert train.counts().tolist() == [4, 4] and val.counts().tolist() == [1, 1]


def test_fixed_class_list_reports_unknown_classes(tmp_path):
    _folder_set(tmp_path / "train", {"cat": 2, "cow": 1})
    data, issues = load_classification(tmp_path, "all", class_names=["dog", "cat"])
    assert [label for _, label in data.samples] == [1, 1]
    assert [issue.kind for issue in issues] == [kinds.UNKNOWN_CLASS]


def test_not_a_classification_dataset(tmp_path):
    (tmp_path / "Annotations").mkdir()
    _write_image(tmp_path / "JPEGImages" / "a.jpg")
    assert not is_classification_data(tmp_path)
    with pytest.raises(DataError, match="no class folders"):
        detect_layout(tmp_path / "Annotations")
    _folder_set(tmp_path / "flowers", {"rose": 1})
    assert is_classification_data(tmp_path / "flowers")


def test_crop_window_areas_aspects_and_fallback():
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, h, w = crop_window(90, 120, rng, (0.3, 1.0), (3 / 4, 4 / 3))
        assert 0 <= top <= 90 - h and 0 <= left <= 120 - w
        assert 0.3 * 90 * 120 * 0.9 <= h * w <= 90 * 120
    # A 10:1 strip never fits a 3:4..4:3 crop of >= 90% area: central crop, aspect clamped to 4:3.
    assert crop_window(10, 100, rng, (0.9, 1.0), (3 / 4, 4 / 3)) == (0, 43, 10, 13)


def test_center_crop_and_center_crop_view_sizes():
    image = np.arange(6 * 8, dtype=np.uint8).reshape(6, 8, 1).repeat(3, axis=2)
    crop = center_crop(image, 4)
    assert crop[..., 0].tolist() == [
        [10, 11, 12, 13],
        [18, 19, 20, 21],
        [26, 27, 28, 29],
        [34, 35, 36, 37],
    ]
    wide = np.zeros((100, 300, 3), np.uint8)
    wide[:, 140:160] = 255  # a bright bar in the middle survives the centre crop
    out = center_crop_view(wide, 56)  # shorter side to 64 (56 * 256 / 224), then crop 56
    assert out.shape == (56, 56, 3) and out[:, 28].min() == 255 and out[:, 0].max() == 0


def test_normalize_images_uses_imagenet_statistics():
    images = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 3, 1, 1)
    out = normalize_images(images)
    expected_zero = [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225]
    expected_one = [0.515 / 0.229, 0.544 / 0.224, 0.594 / 0.225]
    torch.testing.assert_close(out[:, :, 0, 0], torch.tensor([expected_zero, expected_one]))


def test_dataset_augmentation_is_seeded_and_unreadable_images_are_skipped(tmp_path):
    _folder_set(tmp_path / "train", {"a": 3, "b": 3})
    _folder_set(tmp_path / "val", {"a": 1, "b": 1})  # no hold-out carved from train
    (tmp_path / "train" / "a" / "a_001.png").write_bytes(b"not an image")
    data, _ = load_classification(tmp_path, "train")
    dataset = ClassificationDataset(data, imgsz=32, augment=True, hyp=ClassifyAugment(), seed=0)
    first = dataset[2]["image"]
    assert first.shape == (3, 32, 32) and first.dtype == torch.uint8
    assert torch.equal(dataset[2]["image"], first)
    dataset.set_epoch(1)
    assert not torch.equal(dataset[2]["image"], first)
    item = dataset[1]  # unreadable: the next sample is served
    assert item["path"].endswith("a_002.png") and item["label"] == 0 and dataset.num_unreadable == 1
    loader = build_classification_loader(dataset, batch_size=4, workers=0, shuffle=False)
    batch = next(iter(loader))
    assert batch["images"].shape == (4, 3, 32, 32) and batch["labels"].tolist() == [0, 0, 0, 1]


def test_ram_cache_serves_the_same_val_samples(tmp_path):
    _folder_set(tmp_path / "val", {"a": 2, "b": 1})
    _folder_set(tmp_path / "train", {"a": 1, "b": 1})
    data, _ = load_classification(tmp_path, "val")
    plain = ClassificationDataset(data, imgsz=24, augment=False)
    cached = ClassificationDataset(data, imgsz=24, augment=False, cache="ram")
    for i in range(len(data)):
        assert torch.equal(plain[i]["image"], cached[i]["image"])


def test_check_reports_corrupt_images_empty_classes_and_imbalance(tmp_path):
    _folder_set(tmp_path / "train", {"big": 30, "small": 2})
    (tmp_path / "train" / "empty").mkdir()
    (tmp_path / "train" / "small" / "broken.jpg").write_bytes(b"\xff\xd8garbage")
    (tmp_path / "train" / "small" / "notes.txt").write_text("x")
    _folder_set(tmp_path / "val", {"big": 3, "small": 1})
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
