"""The photo benchmark set (benchmarks/photo_set.py): a VOC tree edgevision reads without issues,
byte-identical per seed, dirty exactly where dirt.json says, small boxes near the target share."""

from __future__ import annotations

import importlib
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgevision.core.errors import ConfigError
from edgevision.data.formats import load_dataset
from edgevision.data.formats.imagefolder import load_classification

pytest.importorskip("skimage")
pytest.importorskip("sklearn")

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.append(str(BENCHMARKS))  # the photo_* modules import each other by file name
photo_set = importlib.import_module("photo_set")
photo_scenes = importlib.import_module("photo_scenes")
photo_sprites = importlib.import_module("photo_sprites")

CLASSES = list(photo_set.CLASS_NAMES)
COUNTS = {"train": 6, "val": 2, "test": 2}
# Dirt far above the real rates, so that a 10-image set holds every kind of change.
HEAVY_DIRT = {"shifted": 0.15, "missing": 0.1, "wrong_class": 0.1}


def _write(root: Path) -> Path:
    photo_set.write_detection_set(root, **{f"n_{s}": n for s, n in COUNTS.items()}, seed=3,
                                  dirt_rates=HEAVY_DIRT)  # fmt: skip
    return root


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("photo") / "set")


@pytest.fixture(scope="module")
def changes(tiny) -> dict[str, list[dict]]:
    """Image stem -> its changes in dirt.json."""
    dirt = json.loads((tiny / "dirt.json").read_text())
    assert dirt["rates"] == HEAVY_DIRT
    return {entry["image"]: entry["changes"] for entry in dirt["images"]}


def test_same_seed_gives_byte_identical_files_another_seed_other_pixels(tiny, tmp_path):
    again = _tree_bytes(_write(tmp_path / "again"))
    first = _tree_bytes(tiny)
    assert first.keys() == again.keys()
    assert "JPEGImages/train_000000.jpg" in first and "Annotations/val_000001.xml" in first
    assert [name for name in first if first[name] != again[name]] == []
    sources = photo_scenes.load_sources()
    one = photo_scenes.render_scene(sources, 3, "train", 0).image
    other = photo_scenes.render_scene(sources, 4, "train", 0).image
    assert one.shape != other.shape or not np.array_equal(one, other)


def test_edgevision_reads_every_split_with_no_issues_and_the_class_order(tiny):
    for split, count in COUNTS.items():
        records, issues = load_dataset(tiny, split=split)
        # Only notes (never errors): an image left with no object is read as a negative.
        assert {(i.kind, i.severity) for i in issues} <= {("no_objects", "info")}
        assert len(issues) == sum(r.num_objects == 0 for r in records.records)
        assert records.class_names == CLASSES
        assert [r.image_path.name for r in records.records] == [
            f"{split}_{i:06d}.jpg" for i in range(count)
        ]
        for record in records.records:
            image = cv2.imread(str(record.image_path))
            assert image.shape[:2] == (record.height, record.width)
            assert 320 <= min(image.shape[:2]) and max(image.shape[:2]) <= 800
    stats = json.loads((tiny / "stats.json").read_text())
    assert stats["class_names"] == CLASSES and stats["images_per_split"] == COUNTS


def test_train_labels_are_the_rendered_ones_changed_only_where_dirt_json_says(tiny, changes):
    sources = photo_scenes.load_sources()
    written, _ = load_dataset(tiny, split="train")
    for index, record in enumerate(written.records):
        scene = photo_scenes.render_scene(sources, 3, "train", index)
        boxes, labels = photo_set.apply_changes(
            scene.boxes, scene.labels, changes.get(record.image_path.stem, [])
        )
        np.testing.assert_array_equal(record.boxes, boxes)
        np.testing.assert_array_equal(record.labels, labels)


def _xml_objects(path: Path) -> tuple[np.ndarray, list[str]]:
    """Boxes (reader's convention: xmin - 1) and names of a VOC file, parsed by hand."""
    objects = ET.parse(path).getroot().findall("object")
    names = [o.findtext("name") for o in objects]
    corners = [[float(o.find("bndbox").findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
               for o in objects]  # fmt: skip
    return np.array(corners, np.float32).reshape(-1, 4) - [1, 1, 0, 0], names


def test_clean_val_test_labels_differ_from_the_dirty_ones_only_where_dirt_json_says(tiny, changes):
    kinds = set()
    for split in ("val", "test"):
        clean, issues = load_dataset(tiny / f"{split}_clean.json", split=split)
        assert {i.severity for i in issues} <= {"info"} and clean.class_names == CLASSES
        dirty, _ = load_dataset(tiny, split=split)
        assert [r.image_path for r in clean.records] == [r.image_path for r in dirty.records]
        for good, bad in zip(clean.records, dirty.records, strict=True):
            found = changes.get(good.image_path.stem, [])
            kinds.update(change["kind"] for change in found)
            boxes, labels = photo_set.apply_changes(good.boxes, good.labels, found)
            np.testing.assert_array_equal(bad.boxes, boxes)
            np.testing.assert_array_equal(bad.labels, labels)
            xml_boxes, xml_names = _xml_objects(
                tiny / "Annotations_clean" / f"{good.image_path.stem}.xml"
            )
            np.testing.assert_array_equal(xml_boxes, good.boxes)
            assert xml_names == [CLASSES[k] for k in good.labels]
    all_kinds = {c["kind"] for found in changes.values() for c in found}
    assert all_kinds == {"shifted", "missing", "wrong_class"}
    assert kinds  # val/test hold some of it too, so the clean files are not copies


def test_add_dirt_each_kind_at_rate_one():
    boxes = np.array([[10, 10, 40, 30], [0, 0, 5, 5], [90, 50, 100, 60]], np.float32)
    labels = np.array([CLASSES.index("car"), CLASSES.index("digit3"), CLASSES.index("cone")])
    rng = np.random.default_rng(0)
    kept_boxes, kept_labels, found = photo_set.add_dirt(
        rng, boxes, labels, 100, 60, {"missing": 1.0}
    )
    assert kept_boxes.shape == (0, 4) and len(kept_labels) == 0
    assert [(c["kind"], c["object"]) for c in found] == [
        ("missing", 0),
        ("missing", 1),
        ("missing", 2),
    ]

    _, wrong, found = photo_set.add_dirt(rng, boxes, labels, 100, 60, {"wrong_class": 1.0})
    assert (wrong != labels).all()
    assert CLASSES[wrong[1]].startswith("digit")  # a digit is confused with another digit
    assert not CLASSES[wrong[0]].startswith("digit") and not CLASSES[wrong[2]].startswith("digit")
    assert [c["new_class"] for c in found] == [CLASSES[k] for k in wrong]

    moved, same, found = photo_set.add_dirt(rng, boxes, labels, 100, 60, {"shifted": 1.0})
    np.testing.assert_array_equal(same, labels)
    offsets = np.abs(moved - boxes)
    assert ((offsets == 0) | ((offsets >= 2) & (offsets <= 6))).all() and (offsets.sum(1) > 0).all()
    assert (moved >= 0).all() and (moved[:, [0, 2]] <= 100).all() and (moved[:, [1, 3]] <= 60).all()
    assert [c["new_box"] for c in found] == moved.tolist()

    with pytest.raises(ConfigError, match="unknown dirt kinds"):
        photo_set.add_dirt(rng, boxes, labels, 100, 60, {"swapped": 0.1})


def test_coco_small_share_sizes_and_every_class_on_thirty_images():
    sources = photo_scenes.load_sources()
    scenes = [photo_scenes.render_scene(sources, 0, "train", i) for i in range(30)]
    boxes = np.concatenate([s.boxes for s in scenes])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    assert len(boxes) > 100
    assert 0.35 <= (areas < 32**2).mean() <= 0.6
    assert (areas >= 96**2).mean() >= 0.08  # large objects too
    assert min((boxes[:, 2:] - boxes[:, :2]).min(0)) >= 3
    for scene in scenes:
        height, width = scene.image.shape[:2]
        assert (scene.boxes >= 0).all() and (scene.boxes[:, [0, 2]] <= width).all()
        assert (scene.boxes[:, [1, 3]] <= height).all()
    labels = np.concatenate([s.labels for s in scenes])
    assert np.bincount(labels, minlength=8)[CLASSES.index("car")] == np.bincount(labels).max()
    assert any(s.truncated.any() for s in scenes) and any((s.occlusion > 0.1).any() for s in scenes)


def test_class_quotas_by_largest_remainder():
    assert photo_set.class_quotas(100) == {
        "ball": 12, "car": 30, "cone": 15, "digit0": 8,
        "digit3": 7, "digit4": 5, "digit7": 3, "person": 20,
    }  # fmt: skip
    # 10 images: floors car 3, person 2, cone 1, ball 1, then one each for the four digits
    # makes 11: the largest class gives one back.
    assert photo_set.class_quotas(10) == {
        "ball": 1, "car": 2, "cone": 1, "digit0": 1,
        "digit3": 1, "digit4": 1, "digit7": 1, "person": 2,
    }  # fmt: skip
    assert sum(photo_set.class_quotas(3).values()) == 3


def test_classification_twin_is_an_imbalanced_imagefolder(tmp_path):
    counts = {"train": 10, "val": 8, "test": 8}
    photo_set.write_classification_set(tmp_path / "cls", *counts.values(), seed=1)
    for split, count in counts.items():
        data, issues = load_classification(tmp_path / "cls", split)
        assert issues == [] and data.class_names == CLASSES
        assert data.counts().tolist() == list(photo_set.class_quotas(count).values())
        for path, _ in data.samples:
            height, width = cv2.imread(str(path)).shape[:2]
            assert 96 <= min(height, width) and max(height, width) <= 320


def test_sprites_draw_every_class_and_missing_packages_name_the_fix(monkeypatch):
    assert sorted(photo_sprites.DRAWERS) == CLASSES
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import now raises ImportError
    with pytest.raises(ConfigError, match="pip install scikit-image scikit-learn"):
        photo_scenes.load_sources.__wrapped__()  # past the cache: the real import path
