"""DetectionDataset, sanitizing, collate and the DataLoader on small generated image sets."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from edgevision.core.errors import ConfigError
from edgevision.core.image import letterbox, read_image
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.datasets import detect as dataset_module
from edgevision.data.datasets.detect import (
    AugmentConfig,
    DetectionDataset,
    estimate_cache_bytes,
)
from edgevision.data.datasets.loader import build_dataloader, detection_collate
from edgevision.data.datasets.sanitize import sanitize_records


def make_records(tmp_path, count=6, keypoints=False, seed=0) -> RecordSet:
    """PNG images 120-200 px, each with one white rectangle labelled with the image index."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(count):
        height, width = (int(v) for v in rng.integers(120, 201, 2))
        image = np.zeros((height, width, 3), np.uint8)
        x0, y0 = (int(v) for v in rng.integers(5, 40, 2))
        x1, y1 = x0 + int(rng.integers(30, 70)), y0 + int(rng.integers(30, 70))
        image[y0:y1, x0:x1] = 255
        path = tmp_path / f"{i:03d}.png"
        cv2.imwrite(str(path), image)
        points = (
            np.array([[[x0 + 5, y0 + 5, 2], [x1 - 5, y0 + 5, 2]]], np.float32)
            if keypoints
            else None
        )
        records.append(ImageRecord(path, width, height, [[x0, y0, x1, y1]], [i], keypoints=points))
    names = [f"c{i}" for i in range(count)]
    flip_idx = [1, 0] if keypoints else None
    return RecordSet(records, names, tmp_path, "voc", flip_idx=flip_idx)


def same_item(a: dict, b: dict) -> bool:
    return torch.equal(a["image"], b["image"]) and torch.equal(a["boxes"], b["boxes"])


def test_sanitize_counts_and_fixes(tmp_path):
    record_set = make_records(tmp_path, count=2)
    record = record_set.records[0]
    width = record.width
    record.boxes = np.array(
        [
            [50, 40, 10, 5],
            [-5, -5, 20, 20],
            [10, 10, 10, 30],
            [width + 1, 0, width + 9, 9],
            [1, 1, 9, 9],
            [30, 30, 31, 60],
            [30, 30, 60, 31.5],
        ],
        np.float32,
    )  # swapped, out of image, zero width, fully outside, crowd, 1 px wide, 1.5 px high
    record.labels = np.zeros(7, np.int64)
    record.difficult = np.zeros(7, bool)
    record.iscrowd = np.array([0, 0, 0, 0, 1, 0, 0], bool)
    missing = ImageRecord(tmp_path / "missing.png", 10, 10, [[0, 0, 5, 5]], [0])
    cleaned, report = sanitize_records(record_set.with_records([*record_set.records, missing]))
    assert report == {
        "images": 3,
        "images_skipped": 1,
        "objects_annotated": 9,
        "objects_used": 4,
        "swapped": 1,
        "clipped": 2,
        "zero_area": 2,
        "degenerate": 1,  # the stray click; 1.5 px is small but a box
        "crowd": 1,
        "keypoints_hidden": 0,
    }
    assert len(cleaned) == 2
    np.testing.assert_array_equal(
        cleaned.records[0].boxes, [[10, 5, 50, 40], [0, 0, 20, 20], [30, 30, 60, 31.5]]
    )
    assert record.boxes[0, 0] == 50  # the input record is left as annotated


def test_val_sample_is_the_letterboxed_image_and_inverts_to_original_boxes(tmp_path):
    record_set = make_records(tmp_path)
    dataset = DetectionDataset(record_set, imgsz=160, augment=False)
    for index in range(len(dataset)):
        item, record = dataset[index], record_set.records[index]
        expected, ratio, pad = letterbox(read_image(record.image_path), 160)
        assert torch.equal(item["image"], torch.from_numpy(expected).permute(2, 0, 1))
        meta = item["meta"]
        assert meta["ratio"] == pytest.approx(ratio) and meta["pad"] == pad
        assert meta["orig_hw"] == (record.height, record.width)
        back = (item["boxes"].numpy() - np.array(pad * 2)) / meta["ratio"]
        np.testing.assert_allclose(back, record.boxes, atol=1e-3)


def test_ram_cache_equals_no_cache(tmp_path):
    record_set = make_records(tmp_path)
    for augment in (False, True):
        plain = DetectionDataset(record_set, imgsz=128, augment=augment, seed=3, cache="none")
        cached = DetectionDataset(record_set, imgsz=128, augment=augment, seed=3, cache="ram")
        assert cached.cache == "ram"
        assert all(same_item(plain[i], cached[i]) for i in range(len(plain)))


def test_cache_falls_back_when_memory_is_short(tmp_path, monkeypatch):
    record_set = make_records(tmp_path, count=2)
    monkeypatch.setattr(dataset_module, "available_memory_bytes", lambda: 1000)
    with pytest.warns(UserWarning, match="RAM cache needs"):
        dataset = DetectionDataset(record_set, imgsz=128, cache="ram")
    assert dataset.cache == "none"
    with pytest.raises(ConfigError, match="cache='disk'"):
        DetectionDataset(record_set, cache="disk")


def test_cache_estimate_uses_resized_sizes(tmp_path):
    records = [ImageRecord(tmp_path / "a.jpg", 640, 480), ImageRecord(tmp_path / "b.jpg", 0, 0)]
    assert estimate_cache_bytes(records, 320) == (320 * 240 + 320 * 320) * 3


def test_augmentation_is_deterministic_per_seed_epoch_index(tmp_path):
    record_set = make_records(tmp_path)
    first = DetectionDataset(record_set, imgsz=128, seed=1)
    second = DetectionDataset(record_set, imgsz=128, seed=1)
    assert same_item(first[2], second[2]) and same_item(first[2], first[2])
    before = first[2]
    first.set_epoch(1)
    assert not same_item(first[2], before)
    assert not same_item(DetectionDataset(record_set, imgsz=128, seed=2)[2], before)


def test_augmented_boxes_lie_on_white_pixels(tmp_path):
    record_set = make_records(tmp_path)
    hyp = AugmentConfig(mosaic=0.0, hsv_h=0, hsv_s=0, hsv_v=0, degrees=0)
    dataset = DetectionDataset(record_set, imgsz=160, hyp=hyp)
    for index in range(len(dataset)):
        item = dataset[index]
        image = item["image"].permute(1, 2, 0).numpy()
        ys, xs = np.nonzero((image > 200).all(axis=2))
        if len(item["boxes"]):
            white = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            np.testing.assert_allclose(item["boxes"][0].numpy(), white, atol=1.5)


def test_close_mosaic_leaves_one_image_per_sample(tmp_path):
    record_set = make_records(tmp_path, count=8)
    dataset = DetectionDataset(record_set, imgsz=128, hyp=AugmentConfig(mosaic=1.0, scale=0.0))
    labels = [set(dataset[i]["labels"].tolist()) for i in range(8)]
    assert any(len(found - {i}) > 0 for i, found in enumerate(labels))  # mosaics mix images
    dataset.close_mosaic()
    assert all(set(dataset[i]["labels"].tolist()) <= {i} for i in range(8))


def test_unreadable_image_is_skipped_and_counted(tmp_path):
    record_set = make_records(tmp_path)
    record_set.records[2].image_path.write_bytes(b"not an image")
    dataset = DetectionDataset(record_set, imgsz=128, augment=False)
    item = dataset[2]
    assert item["meta"]["index"] == 3 and item["labels"].tolist() == [3]
    assert dataset.num_unreadable == 1
    assert dataset.unreadable_paths() == [record_set.records[2].image_path]
    dataset[2]
    assert dataset.num_unreadable == 1  # counted once


def test_collate_shapes_and_image_index_column(tmp_path):
    record_set = make_records(tmp_path, keypoints=True)
    dataset = DetectionDataset(record_set, imgsz=128, hyp=AugmentConfig(mosaic=1.0))
    items = [dataset[i] for i in range(4)]
    batch = detection_collate(items)
    assert batch["images"].shape == (4, 3, 128, 128) and batch["images"].dtype == torch.float32
    assert 0 <= batch["images"].min() and batch["images"].max() <= 1
    torch.testing.assert_close(batch["images"][1], items[1]["image"].float() / 255)
    counts = [len(item["boxes"]) for item in items]
    assert batch["targets"].shape == (sum(counts), 6)
    expected_index = torch.repeat_interleave(torch.arange(4.0), torch.tensor(counts))
    assert torch.equal(batch["targets"][:, 0], expected_index)
    assert torch.equal(batch["targets"][:, 2:], torch.cat([item["boxes"] for item in items]))
    assert batch["keypoints"].shape == (sum(counts), 2, 3)
    assert len(batch["meta"]) == 4 and {"image_path", "orig_hw", "ratio", "pad", "image_id"} <= set(
        batch["meta"][0]
    )


def test_loader_batches_do_not_depend_on_worker_count(tmp_path):
    record_set = make_records(tmp_path, count=6)
    dataset = DetectionDataset(record_set, imgsz=96, seed=0)
    runs = {}
    for workers in (0, 2):
        loader = build_dataloader(dataset, batch_size=3, workers=workers, shuffle=True, seed=5)
        epochs = []
        for epoch in range(2):
            dataset.set_epoch(epoch)
            epochs.append([batch["images"] for batch in loader])
        runs[workers] = epochs
    for epoch in range(2):
        for a, b in zip(runs[0][epoch], runs[2][epoch], strict=True):
            assert torch.equal(a, b)
    assert not torch.equal(runs[0][0][0], runs[0][1][0])  # new epoch: new order and augmentation
    assert runs[2][0][0].dtype == torch.float32 and runs[2][0][0].shape == (3, 3, 96, 96)


def test_loader_can_keep_uint8_images(tmp_path):
    dataset = DetectionDataset(make_records(tmp_path, count=4), imgsz=64, augment=False)
    loader = build_dataloader(dataset, batch_size=4, workers=0, shuffle=False, float_images=False)
    batch = next(iter(loader))
    assert batch["images"].dtype == torch.uint8
    assert torch.equal(batch["images"][0], dataset[0]["image"])
