"""Stratified split: exact sizes, every class everywhere when possible, list files, no overwrite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgevision.core.errors import ConfigError, DataError
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.formats.voc import read_voc
from edgevision.data.split import format_splits, split_class_counts, split_dataset, write_splits
from edgevision.data.synth.detect import synthesize_detection


def _record_set(
    label_lists: list[list[int]], num_classes: int, root: Path = Path("/d"), fmt="voc"
) -> RecordSet:
    records = [
        ImageRecord(
            root / "images" / f"{i:04d}.jpg",
            100,
            100,
            np.tile([0, 0, 10, 10], (len(labels), 1)),
            labels,
        )
        for i, labels in enumerate(label_lists)
    ]
    return RecordSet(records, [f"c{i}" for i in range(num_classes)], root, fmt)


def _imbalanced(num_images: int = 50, seed: int = 0) -> RecordSet:
    """Class 0 everywhere-ish, class 1 common, class 2 in 6 images, class 3 in exactly 3, some negatives."""
    rng = np.random.default_rng(seed)
    label_lists = []
    for i in range(num_images):
        labels = [0] if rng.random() < 0.8 else []
        labels += [1] * int(rng.random() < 0.4)
        labels += [2] * (i % 8 == 3)
        labels += [3] * (i in (7, 21, 40))
        label_lists.append(labels)
    return _record_set(label_lists, 4)


def test_sizes_are_exact_and_every_image_is_used_once():
    for num_images, val, test in [(50, 0.1, 0.1), (37, 0.2, 0.15), (11, 0.25, 0.0), (3, 0.3, 0.3)]:
        splits = split_dataset(_imbalanced(num_images), val=val, test=test, seed=0)
        sizes = [len(splits[name]) for name in ("train", "val", "test")]
        assert sizes[1] == round(num_images * val) and sizes[2] == round(num_images * test)
        assert abs(sizes[1] - num_images * val) <= 1 and abs(sizes[2] - num_images * test) <= 1
        every = sorted(splits["train"] + splits["val"] + splits["test"])
        assert every == list(range(num_images))
        assert all(splits[name] == sorted(splits[name]) for name in splits)


def test_every_class_reaches_every_split_when_it_can():
    record_set = _imbalanced()
    splits = split_dataset(record_set, val=0.1, test=0.1, seed=0)
    counts = split_class_counts(record_set, splits)
    assert counts["val"][3] == 1 and counts["test"][3] == 1 and counts["train"][3] == 1
    assert all(count > 0 for name in counts for count in counts[name])


def test_a_random_split_would_often_miss_the_rare_class():
    # Why stratification: with 5 val images out of 50, a class in 3 images lands in val rarely.
    record_set, misses = _imbalanced(), 0
    for seed in range(20):
        val = np.random.default_rng(seed).permutation(50)[:5]
        misses += not any(3 in record_set.records[i].labels for i in val)
        counts = split_class_counts(record_set, split_dataset(record_set, 0.1, 0.1, seed=seed))
        assert counts["val"][3] == 1  # the stratified split never misses
    assert misses >= 10


def test_rare_classes_keep_train_first():
    # class 1 in two images, class 2 in one: too few for three splits; train must get each.
    record_set = _record_set([[0], [0, 1], [0], [0, 1], [0, 2], [0], [0], [0], [0], [0]], 3)
    for seed in range(10):
        counts = split_class_counts(record_set, split_dataset(record_set, 0.2, 0.2, seed=seed))
        assert counts["train"][1] >= 1 and counts["train"][2] == 1


def test_deterministic_by_seed():
    record_set = _imbalanced()
    assert split_dataset(record_set, seed=3) == split_dataset(record_set, seed=3)
    assert split_dataset(record_set, seed=3) != split_dataset(record_set, seed=4)


@pytest.mark.parametrize("val, test", [(0.5, 0.5), (-0.1, 0.1), (1.0, 0.0)])
def test_bad_fractions_are_config_errors(val, test):
    with pytest.raises(ConfigError, match="val"):
        split_dataset(_imbalanced(), val=val, test=test)


def test_format_shows_images_and_classes_per_split():
    record_set = _imbalanced()
    text = format_splits(record_set, split_dataset(record_set))
    assert text.splitlines()[1].split() == ["images", "40", "5", "5"]
    assert text.splitlines()[5].split() == ["c3", "1", "1", "1"]


def test_voc_lists_read_back_and_are_not_overwritten_without_force(tmp_path):
    root = synthesize_detection(tmp_path / "voc", n_train=12, n_val=4, seed=1)
    record_set, _ = read_voc(root)
    splits = split_dataset(record_set, val=0.25, test=0.25, seed=0)
    with pytest.raises(DataError) as error:  # synth wrote train/val/trainval lists already
        write_splits(record_set, splits)
    message = str(error.value)
    assert (
        "ImageSets/Main/train.txt" in message and "trainval.txt" in message and "--force" in message
    )
    assert "test.txt" not in message  # only files that exist are named

    old_train = (root / "ImageSets/Main/train.txt").read_text()
    written = write_splits(record_set, splits, force=True)
    assert sorted(p.name for p in written) == ["test.txt", "train.txt", "trainval.txt", "val.txt"]
    assert (root / "ImageSets/Main/train.txt.bak").read_text() == old_train
    for name in ("train", "val", "test"):
        read, issues = read_voc(root, split=name, class_names=record_set.class_names)
        assert issues == []
        assert [r.image_path for r in read.records] == [
            record_set.records[i].image_path for i in splits[name]
        ]
    trainval = (root / "ImageSets/Main/trainval.txt").read_text().split()
    assert sorted(trainval) == sorted(
        record_set.records[i].image_path.stem for i in splits["train"] + splits["val"]
    )


def test_yolo_and_coco_lists_hold_relative_image_paths(tmp_path):
    record_set = _record_set([[0], [0], [0], [0]], 1, root=tmp_path, fmt="yolo")
    splits = {"train": [0, 1], "val": [2], "test": [3]}
    written = write_splits(record_set, splits)
    assert written == [tmp_path / "train.txt", tmp_path / "val.txt", tmp_path / "test.txt"]
    assert (tmp_path / "train.txt").read_text() == "./images/0000.jpg\n./images/0001.jpg\n"
    with pytest.raises(DataError, match="train.txt, val.txt, test.txt"):
        write_splits(record_set, splits)
