"""The demo dataset: a valid VOC tree, tight boxes, the promised variety, byte-exact by seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgevision.core.errors import ConfigError, DataError
from edgevision.data.formats.voc import read_voc
from edgevision.data.synth import GENERATORS, synthesize
from edgevision.data.synth import detect as synth
from edgevision.data.synth.detect import (
    ASPECT_RANGE,
    CLASS_NAMES,
    synthesize_detection,
    synthesize_detection_records,
)


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_writes_a_voc_tree_that_reads_back_to_the_drawn_records(tmp_path):
    root = synthesize_detection(tmp_path / "voc", n_train=12, n_val=4, seed=3)
    assert len(list((root / "JPEGImages").glob("*.jpg"))) == 16
    assert len(list((root / "Annotations").glob("*.xml"))) == 16
    lists = {
        s: (root / "ImageSets/Main" / f"{s}.txt").read_text().split()
        for s in ("train", "val", "trainval")
    }
    assert lists["train"] == [f"synth_{i:06d}" for i in range(12)]
    assert lists["val"] == [f"synth_{i:06d}" for i in range(12, 16)]
    assert lists["trainval"] == lists["train"] + lists["val"]

    drawn = synthesize_detection_records(tmp_path / "again", n_train=12, n_val=4, seed=3)
    train, _ = read_voc(root, split="train")
    assert train.class_names == list(CLASS_NAMES)  # alphabetical = id order, whatever reads it
    for split in ("train", "val"):
        read, issues = read_voc(root, split=split, class_names=list(CLASS_NAMES))
        assert issues == []
        assert len(read) == len(drawn[split])
        for got, want in zip(read.records, drawn[split].records, strict=True):
            assert (got.width, got.height) == (want.width, want.height)
            np.testing.assert_array_equal(got.boxes, want.boxes)
            np.testing.assert_array_equal(got.labels, want.labels)


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path):
    first = _tree_bytes(synthesize_detection(tmp_path / "a", n_train=5, n_val=2, seed=7))
    second = _tree_bytes(synthesize_detection(tmp_path / "b", n_train=5, n_val=2, seed=7))
    other = _tree_bytes(synthesize_detection(tmp_path / "c", n_train=5, n_val=2, seed=8))
    assert first == second
    assert first.keys() == other.keys()
    assert first["JPEGImages/synth_000000.jpg"] != other["JPEGImages/synth_000000.jpg"]


def test_an_image_does_not_depend_on_the_other_split_size(tmp_path):
    small = synthesize_detection_records(tmp_path / "a", n_train=2, n_val=1, seed=0)
    large = synthesize_detection_records(tmp_path / "b", n_train=4, n_val=1, seed=0)
    np.testing.assert_array_equal(small["val"].records[0].boxes, large["val"].records[0].boxes)
    np.testing.assert_array_equal(small["train"].records[1].boxes, large["train"].records[1].boxes)


def test_images_have_the_promised_sizes_classes_and_object_counts(tmp_path):
    records = synthesize_detection_records(tmp_path, n_train=60, n_val=0, seed=0)["train"].records
    widths = np.array([r.width for r in records])
    aspects = np.array([r.height / r.width for r in records])
    assert widths.min() >= 256 and widths.max() <= 400 and np.ptp(widths) > 50
    assert aspects.min() >= ASPECT_RANGE[0] - 0.01 and aspects.max() <= ASPECT_RANGE[1] + 0.01
    counts = np.array([r.num_objects for r in records])
    assert counts.min() >= 1 and counts.max() <= 8
    boxes = np.concatenate([r.boxes for r in records])
    sides = boxes[:, 2:] - boxes[:, :2]
    assert sides.min() >= 8  # nothing too small to learn at 320 px
    for r in records:
        assert (r.boxes[:, :2] >= 0).all() and (r.boxes[:, 2] <= r.width).all()
        assert (r.boxes[:, 3] <= r.height).all()
    labels = np.concatenate([r.labels for r in records])
    assert set(labels.tolist()) == set(range(len(CLASS_NAMES)))
    small_share = float((sides.prod(axis=1) < 32**2).mean())
    assert 0.25 < small_share < 0.6  # "many small" without drowning the rest


def _flat_scene(monkeypatch, height=120, width=160, max_occlusion=0.6):
    """A black scene whose objects paint pure white, so drawn pixels are easy to find."""
    monkeypatch.setattr(synth, "_fill", lambda rng, colour, shape: np.full((*shape, 3), 255.0))
    return synth._Scene(np.zeros((height, width, 3), np.uint8), max_occlusion)


@pytest.mark.parametrize("label", range(len(CLASS_NAMES)))
def test_boxes_are_tight_around_the_drawn_pixels(monkeypatch, label):
    rng = np.random.default_rng(label)
    for _ in range(5):
        scene = _flat_scene(monkeypatch)
        contours = synth._place_shape(rng, label, 160, 120)
        assert scene.try_add(rng, contours, label)
        x0, y0, x1, y1 = (int(v) for v in scene.boxes[0])
        rows, cols = np.nonzero(scene.image[..., 0] >= 128)  # at least half covered
        assert (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1) == (x0, y0, x1, y1)
        outside = scene.image[..., 0].copy()
        outside[max(y0 - 1, 0) : y1 + 1, max(x0 - 1, 0) : x1 + 1] = 0  # anti-aliased fringe
        assert outside.max() < 64  # star tips leave faint slivers, never a half-covered pixel
        points = np.concatenate(contours)  # the geometry, less a thin tip's sliver
        np.testing.assert_allclose([x0, y0], points.min(0), atol=1.5)
        np.testing.assert_allclose([x1, y1], points.max(0), atol=1.5)


def test_an_axis_aligned_square_gets_its_exact_box(monkeypatch):
    scene = _flat_scene(monkeypatch)
    square = np.array([[10.0, 20.0], [30.0, 20.0], [30.0, 35.0], [10.0, 35.0]])
    assert scene.try_add(np.random.default_rng(0), [square], 3)
    assert scene.boxes == [[10, 20, 30, 35]]


def test_an_object_may_not_hide_most_of_an_earlier_one(monkeypatch):
    def square(x0, y0, x1, y1):
        return [np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)]

    rng = np.random.default_rng(0)
    scene = _flat_scene(monkeypatch)
    assert scene.try_add(rng, square(10, 10, 50, 50), 3)
    assert not scene.try_add(rng, square(5, 5, 45, 50), 3)  # would hide 35x40 of 40x40
    assert scene.try_add(rng, square(30, 10, 70, 50), 3)  # hides half
    assert not scene.try_add(rng, square(10, 10, 25, 50), 3)  # the first would keep 10x40 of it
    assert scene.boxes == [[10, 10, 50, 50], [30, 10, 70, 50]]  # full boxes, not visible parts


def test_refuses_a_used_folder_unless_forced_and_replaces_only_its_own_files(tmp_path):
    root = synthesize_detection(tmp_path, n_train=4, n_val=2, seed=0)
    (root / "JPEGImages" / "mine.png").write_bytes(b"not ours")
    with pytest.raises(DataError, match="--force"):
        synthesize_detection(tmp_path, n_train=2, n_val=1)
    synthesize_detection(tmp_path, n_train=2, n_val=1, force=True)
    assert sorted(p.name for p in (root / "JPEGImages").iterdir()) == [
        "mine.png",
        "synth_000000.jpg",
        "synth_000001.jpg",
        "synth_000002.jpg",
    ]
    assert len(list((root / "Annotations").glob("*.xml"))) == 3


def test_dispatcher_names_tasks_that_are_not_there_yet(tmp_path, monkeypatch):
    assert synthesize(tmp_path / "d", task="detect", n_train=2, n_val=1).is_dir()
    with pytest.raises(ConfigError, match="detect, classify, pose"):
        synthesize(tmp_path / "x", task="segment")
    monkeypatch.setitem(GENERATORS, "segment", None)  # a planned task, not written yet
    with pytest.raises(
        ConfigError, match="segment is not implemented yet; available now: detect, classify, pose"
    ):
        synthesize(tmp_path / "s", task="segment")


def test_bad_counts_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="n_train"):
        synthesize_detection(tmp_path, n_train=0, n_val=0)
    with pytest.raises(ConfigError, match="width_range"):
        synthesize_detection(tmp_path, n_train=1, n_val=0, width_range=(400, 300))
