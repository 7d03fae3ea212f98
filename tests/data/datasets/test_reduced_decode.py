"""Reduced JPEG decode (1/2, 1/4, 1/8) in the detection loader, and the automatic RAM cache."""

from __future__ import annotations

import math
import warnings

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from edgevision.core.errors import DataError
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.datasets import detect as dataset_module
from edgevision.data.datasets.detect import DetectionDataset, load_image
from edgevision.data.datasets.reduced_decode import (
    decode_reduced_jpeg,
    load_reduced,
    reduced_size,
    reduction_for,
    resize_reduced,
    target_size,
)

GIB = 2**30


def smooth_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(h, w, 3) uint8 of low-frequency waves: JPEG keeps it well, so decodes can be compared."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(0.005, 0.03, 2).tolist() + [float(rng.uniform(0, 6))]
        channels.append(128 + 90 * np.sin(xx * fx + phase) * np.cos(yy * fy))
    return np.stack(channels, axis=-1).clip(0, 255).astype(np.uint8)


def write_jpeg(path, image: np.ndarray) -> None:
    cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95])


def photo_records(tmp_path, sizes, suffix=".jpg") -> RecordSet:
    """One smooth image per (h, w) with one box labelled 0 (coordinates chosen off the grid)."""
    records = []
    for index, (height, width) in enumerate(sizes):
        path = tmp_path / f"{index:03d}{suffix}"
        cv2.imwrite(str(path), smooth_image(height, width, seed=index))
        box = [0.13 * width, 0.21 * height, 0.77 * width, 0.69 * height]
        records.append(ImageRecord(path, width, height, [box], [0]))
    return RecordSet(records, ["thing"], tmp_path, "voc")


@pytest.mark.parametrize(
    ("orig_hw", "imgsz", "expected"),
    [
        ((600, 800), 320, 2),  # ratio 0.4
        ((600, 800), 160, 4),  # ratio 0.2
        ((600, 640), 320, 2),  # ratio exactly 1/2
        ((600, 639), 320, 1),  # just above 1/2: decoded 320 would already be padded
        ((4000, 3000), 320, 8),  # the long side may be the height
        ((3024, 4032), 640, 4),
        ((200, 300), 320, 1),  # an upsample never uses a reduction
    ],
)
def test_reduction_for_given_sizes(orig_hw, imgsz, expected):
    assert reduction_for(orig_hw, imgsz) == expected


def test_reduction_is_the_largest_that_never_upsamples():
    """Brute force over long sides: the decode stays >= the target, and 2n would not."""
    for imgsz in (64, 160, 320):
        for long_side in range(imgsz // 2, 9 * imgsz, 7):
            n = reduction_for((long_side // 2 + 1, long_side), imgsz)
            assert long_side / n >= imgsz or n == 1
            assert n == 8 or long_side / (2 * n) < imgsz


def test_reduced_size_is_what_opencv_decodes(tmp_path):
    """libjpeg rounds up (a partial 8x8 block gives a pixel), for every reduction."""
    for height, width in [(37, 53), (75, 101), (64, 48)]:
        path = tmp_path / f"{height}x{width}.jpg"
        write_jpeg(path, smooth_image(height, width))
        for n in (2, 4, 8):
            assert decode_reduced_jpeg(path, n).shape == (*reduced_size((height, width), n), 3)
            assert reduced_size((height, width), n) == (math.ceil(height / n), math.ceil(width / n))


@pytest.mark.parametrize(("height", "width", "imgsz"), [(600, 800, 160), (533, 801, 320)])
def test_reduced_decode_is_close_to_the_full_decode(tmp_path, height, width, imgsz):
    """800x600 at 160 (1/4, whole blocks) and 801x533 at 320 (1/2, a partial last block)."""
    path = tmp_path / "photo.jpg"
    write_jpeg(path, smooth_image(height, width))
    full, full_hw = load_image(path, imgsz)
    fast, fast_hw = load_reduced(path, imgsz, (height, width))
    assert fast_hw == full_hw == (height, width) and fast.shape == full.shape
    assert np.abs(fast.astype(int) - full).mean() < 3
    # Without the size the header is read, never a full decode.
    assert np.array_equal(load_reduced(path, imgsz)[0], fast)


@pytest.mark.parametrize(("height", "width", "imgsz"), [(1001, 2569, 320), (600, 800, 320)])
def test_resize_reduced_maps_points_like_the_full_resize(height, width, imgsz):
    """A linear ramp decoded ideally (pixel j holds the ramp at original n j + n/2) must land
    where the full resize puts it: output pixel k at original (k + 0.5) w / size_w.

    2569 = 8 * 321 + 1: the last reduced pixel is mostly padding, and a plain resize would be off
    by up to 0.87 px at the far edge."""
    n = reduction_for((height, width), imgsz)
    decoded_h, decoded_w = reduced_size((height, width), n)
    xs = n * (np.arange(decoded_w, dtype=np.float32) + 0.5)
    ys = n * (np.arange(decoded_h, dtype=np.float32) + 0.5)
    ramp = np.zeros((decoded_h, decoded_w, 3), np.float32)
    ramp[..., 0], ramp[..., 1] = xs[None, :], ys[:, None]
    size_w, size_h = target_size((height, width), imgsz)
    out = resize_reduced(ramp, n, (height, width), (size_w, size_h))
    assert out.shape == (size_h, size_w, 3)
    expect_x = (np.arange(size_w) + 0.5) * width / size_w
    expect_y = (np.arange(size_h) + 0.5) * height / size_h
    np.testing.assert_allclose(out[size_h // 2, :, 0], expect_x, atol=0.02)
    np.testing.assert_allclose(out[:, size_w // 2, 1], expect_y, atol=0.02)


def test_dataset_boxes_and_sizes_equal_the_full_decode_path(tmp_path, monkeypatch):
    record_set = photo_records(tmp_path, [(600, 800), (533, 801), (300, 400)])
    full = DetectionDataset(record_set, imgsz=160, augment=False)
    assert not full.reduced_decode and full.cache == "none"  # val defaults: exact, no cache
    references = [full[index] for index in range(3)]
    fast = DetectionDataset(record_set, imgsz=160, augment=False, reduced_decode=True)

    def refuse(path):
        raise AssertionError(f"full decode of {path}")

    monkeypatch.setattr(dataset_module, "read_image", refuse)  # all are >= 2x the target
    for index, reference in enumerate(references):
        item = fast[index]
        assert torch.equal(item["boxes"], reference["boxes"])
        for key in ("orig_hw", "ratio", "pad"):
            assert item["meta"][key] == reference["meta"][key]
        assert (item["image"].int() - reference["image"]).abs().float().mean() < 3
    assert item["meta"]["orig_hw"] == (300, 400)


def test_training_defaults_use_reduced_decode_and_the_cache(tmp_path, monkeypatch):
    record_set = photo_records(tmp_path, [(600, 800), (450, 600)])
    monkeypatch.setattr(dataset_module, "available_memory_bytes", lambda: 8 * GIB)
    dataset = DetectionDataset(record_set, imgsz=160)
    assert dataset.reduced_decode and dataset.cache == "ram"
    image, orig_hw = dataset._cache[0]
    assert orig_hw == (600, 800)
    assert np.array_equal(image, load_reduced(record_set.records[0].image_path, 160)[0])


def test_png_and_renamed_png_take_the_full_decode(tmp_path):
    image = smooth_image(600, 800)
    png, renamed = tmp_path / "a.png", tmp_path / "b.jpg"
    cv2.imwrite(str(png), image)
    renamed.write_bytes(png.read_bytes())  # PNG bytes behind a .jpg name: content decides
    for path in (png, renamed):
        assert decode_reduced_jpeg(path, 2) is None and load_reduced(path, 160) is None
        fast, fast_hw = load_image(path, 160, (600, 800), reduced=True)
        full, full_hw = load_image(path, 160)
        assert np.array_equal(fast, full) and fast_hw == full_hw == (600, 800)


def test_wrong_size_falls_back_and_truncated_jpeg_still_raises(tmp_path):
    path = tmp_path / "photo.jpg"
    write_jpeg(path, smooth_image(600, 800))
    assert load_reduced(path, 160, (600, 808)) is None  # a stale size: decoded 150x200, not 202
    assert load_image(path, 160, (600, 808), reduced=True)[1] == (600, 800)
    path.write_bytes(path.read_bytes()[:-5000])
    assert load_reduced(path, 160, (600, 800)) is None
    with pytest.raises(DataError, match="truncated"):
        load_image(path, 160, (600, 800), reduced=True)


def test_reduced_decode_ignores_exif_orientation(tmp_path):
    """Orientation 6 (turn 90 degrees) is ignored: the stored 800 x 600 grid, as read_image."""
    path = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(smooth_image(600, 800)).save(path, exif=exif, quality=95)
    assert Image.open(path).getexif()[0x0112] == 6
    assert decode_reduced_jpeg(path, 4).shape == (150, 200, 3)
    image, orig_hw = load_image(path, 160, reduced=True)
    assert image.shape == (120, 160, 3) and orig_hw == (600, 800)


# ----------------------------------------------------------------------------- cache "auto"


def test_auto_cache_fills_when_it_fits_and_says_so(tmp_path, monkeypatch):
    record_set = photo_records(tmp_path, [(600, 800), (450, 600), (300, 400)])
    monkeypatch.setattr(dataset_module, "available_memory_bytes", lambda: 8 * GIB)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset = DetectionDataset(record_set, imgsz=160, cache="auto")
    assert dataset.cache == "ram" and all(entry is not None for entry in dataset._cache)
    needed = 3 * 160 * 120 * 3  # all three are 4:3
    assert dataset.cache_message == (
        f"cache: 3 images at 160 px in RAM ({needed / 2**20:.1f} MiB of 8.0 GiB available)"
    )
    uncached = DetectionDataset(record_set, imgsz=160, cache="none", seed=0)
    assert uncached.cache_message == 'cache: off (cache="none")'
    for index in range(3):
        assert torch.equal(dataset[index]["image"], uncached[index]["image"])


def test_auto_cache_stays_off_when_memory_is_short(tmp_path, monkeypatch):
    record_set = photo_records(tmp_path, [(600, 800), (450, 600)])
    monkeypatch.setattr(dataset_module, "available_memory_bytes", lambda: 2**20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "auto" chose; no warning, only the line
        dataset = DetectionDataset(record_set, imgsz=640)
    assert dataset.cache == "none" and dataset._cache is None
    # 2 x 640 x 480 x 3 bytes = 1.76 MiB, over half of 1 MiB.
    assert dataset.cache_message == (
        "cache: not used: needs 1.8 MiB, 1.0 MiB available (at most 50% may be used)"
    )
    with pytest.warns(UserWarning, match="RAM cache needs"):  # asked for "ram": a warning too
        assert DetectionDataset(record_set, imgsz=640, cache="ram").cache == "none"


def test_unknown_memory_auto_skips_and_ram_caches(tmp_path, monkeypatch):
    record_set = photo_records(tmp_path, [(450, 600)])
    monkeypatch.setattr(dataset_module, "available_memory_bytes", lambda: None)
    auto = DetectionDataset(record_set, imgsz=160, cache="auto")
    assert auto.cache == "none" and "available memory unknown" in auto.cache_message
    ram = DetectionDataset(record_set, imgsz=160, cache="ram")
    assert ram.cache == "ram" and ram.cache_message.endswith("; available memory unknown)")
