"""Classification dataset: crop window, normalisation, seeded augmentation, RAM cache, loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgevision.config import TrainConfig
from edgevision.core.errors import ConfigError
from edgevision.data.datasets.classify import (
    ClassificationDataset,
    ClassifyAugment,
    build_classification_loader,
    crop_window,
    normalize_images,
    random_erase,
    train_transform,
)
from edgevision.data.formats.imagefolder import load_classification
from tests.data.classify_cases import folder_set


def test_crop_window_areas_aspects_and_fallback():
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, h, w = crop_window(90, 120, rng, (0.3, 1.0), (3 / 4, 4 / 3))
        assert 0 <= top <= 90 - h and 0 <= left <= 120 - w
        assert 0.3 * 90 * 120 * 0.9 <= h * w <= 90 * 120
    # A 10:1 strip never fits a 3:4..4:3 crop of >= 90% area: central crop, aspect clamped to 4:3.
    assert crop_window(10, 100, rng, (0.9, 1.0), (3 / 4, 4 / 3)) == (0, 43, 10, 13)


def test_normalize_images_uses_imagenet_statistics():
    images = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 3, 1, 1)
    out = normalize_images(images)
    expected_zero = [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225]
    expected_one = [0.515 / 0.229, 0.544 / 0.224, 0.594 / 0.225]
    torch.testing.assert_close(out[:, :, 0, 0], torch.tensor([expected_zero, expected_one]))


def test_random_erase_fills_one_rectangle_with_the_mean_that_normalises_to_zero():
    rng = np.random.default_rng(0)
    for _ in range(50):
        image = random_erase(np.full((40, 60, 3), 7, np.uint8), rng)
        ys, xs = np.nonzero((image != 7).any(axis=2))
        assert len(ys), "one rectangle is always erased when one fits"
        box = image[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        assert len(ys) == box.shape[0] * box.shape[1]  # a full rectangle, nothing outside it
        assert 0.02 * 2400 * 0.8 <= len(ys) <= 0.33 * 2400 * 1.2
        pixel = torch.from_numpy(box[:1, :1].transpose(2, 0, 1).copy())[None]
        assert normalize_images(pixel).abs().max() < 0.01  # the ImageNet mean, i.e. 0 after
    source = np.full((40, 60, 3), 7, np.uint8)  # a view of the RAM cache must stay as it is
    assert (random_erase(source, rng) != 7).any() and (source == 7).all()
    # too small for any rectangle of 2-33 % the area in aspect 0.3-3.3: left as it is
    assert (random_erase(np.zeros((1, 1, 3), np.uint8), rng) == 0).all()


def test_rotation_turns_the_crop_about_its_centre():
    image = np.zeros((64, 64, 3), np.uint8)
    image[30:34, 16:26] = 255  # a bar left of the centre, far from the edges (reflections)
    hyp = ClassifyAugment(scale_min=1.0, ratio=(1.0, 1.0), fliplr=0.0, hsv_h=0, hsv_s=0, hsv_v=0)
    plain = train_transform(image, 64, np.random.default_rng(0), hyp)
    assert (plain == image).all()  # the whole image, no flip or colour: unchanged
    hyp.degrees = 90.0
    angles = []
    for seed in range(20):
        out = train_transform(image, 64, np.random.default_rng(seed), hyp)
        ys, xs = np.nonzero(out[..., 0] > 127)
        angle = np.degrees(np.arctan2(-(ys.mean() - 31.5), xs.mean() - 31.5))  # bar at 180
        angles.append((angle - 180 + 180) % 360 - 180)
    assert max(abs(a) for a in angles) <= 91 and np.ptp(angles) > 60  # spread over +/- 90
    mapped = ClassifyAugment.from_train_config(TrainConfig(degrees=7.5, erasing=0.25, scale=0.3))
    assert (mapped.degrees, mapped.erasing, mapped.scale_min) == (7.5, 0.25, 0.7)
    with pytest.raises(
        ConfigError, match=r"erasing=1.5, degrees=-5.0; .*probabilities in \[0, 1\]"
    ):
        ClassifyAugment.from_train_config(TrainConfig(erasing=1.5, degrees=-5.0))


def test_dataset_augmentation_is_seeded_and_unreadable_images_are_skipped(tmp_path):
    folder_set(tmp_path / "train", {"a": 3, "b": 3})
    folder_set(tmp_path / "val", {"a": 1, "b": 1})  # no hold-out carved from train
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
    dataset.set_size(16)  # progressive resizing: smaller training images, same crop draw
    assert dataset.size == 16 and dataset[2]["image"].shape == (3, 16, 16)
    with pytest.raises(ConfigError, match="training side 40 px: use 8 to imgsz"):
        dataset.set_size(40)


def test_ram_cache_serves_the_same_val_samples(tmp_path):
    folder_set(tmp_path / "val", {"a": 2, "b": 1})
    folder_set(tmp_path / "train", {"a": 1, "b": 1})
    data, _ = load_classification(tmp_path, "val")
    plain = ClassificationDataset(data, imgsz=24, augment=False)
    cached = ClassificationDataset(data, imgsz=24, augment=False, cache="ram")
    for i in range(len(data)):
        assert torch.equal(plain[i]["image"], cached[i]["image"])
