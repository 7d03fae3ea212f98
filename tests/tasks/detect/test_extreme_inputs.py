"""Extreme inputs through train, val and predict: a 20x20 image, an 8000x6000 photo-sized JPEG
and an image with 300 objects, next to two ordinary ones; and ``max_det=300`` really keeps 300."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from edgevision import api
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.datasets.detect import load_image
from edgevision.data.formats.voc import write_voc
from edgevision.models.codecs.anchor_free import AnchorFreeCodec
from edgevision.tasks.detect.inference import DetectionPredictor as Predictor
from edgevision.tasks.detect.inference import predict_batch

CLASS_NAMES = ["bright", "dark", "mid"]
CROWD_SIDE, CROWD_GRID = 640, (20, 15)  # 300 boxes of 20x20 on a 32-pixel grid


def _save(path: Path, rgb: np.ndarray, quality: int = 90) -> None:
    cv2.imwrite(str(path), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])


def _rectangles(image: np.ndarray, boxes: list, colour=(255, 255, 255)) -> None:
    for x0, y0, x1, y1 in boxes:
        image[y0:y1, x0:x1] = colour


def _crowd_boxes() -> list[list[int]]:
    columns, rows = CROWD_GRID
    return [
        [32 * c + 6, 32 * r + 6, 32 * c + 26, 32 * r + 26]
        for r in range(rows)
        for c in range(columns)
    ]


def _images(folder: Path) -> list[tuple[Path, list, list]]:
    """(path, boxes, labels) of the five images, written as JPEGs into ``folder``."""
    rng = np.random.default_rng(0)
    tiny = np.full((20, 20, 3), 40, np.uint8)
    _rectangles(tiny, [[4, 4, 16, 16]])
    huge = np.full((6000, 8000, 3), (30, 80, 140), np.uint8)  # flat colour: ~1 MB as JPEG
    huge_boxes = [[800, 600, 2800, 2600], [4000, 3000, 7200, 5600]]
    _rectangles(huge, huge_boxes)
    crowd = np.full((CROWD_SIDE, CROWD_SIDE, 3), 20, np.uint8)
    _rectangles(crowd, _crowd_boxes())
    items = [
        ("tiny", tiny, [[4, 4, 16, 16]]),
        ("huge", huge, huge_boxes),
        ("crowd", crowd, _crowd_boxes()),
    ]
    for name in ("plain_a", "plain_b"):
        image = rng.integers(0, 60, (96, 128, 3), dtype=np.uint8)
        boxes = [[10, 12, 50, 60], [70, 20, 120, 90]]
        _rectangles(image, boxes)
        items.append((name, image, boxes))
    written = []
    for name, image, boxes in items:
        _save(folder / f"{name}.jpg", image, quality=70 if name == "huge" else 90)
        written.append(
            (folder / f"{name}.jpg", boxes, [i % len(CLASS_NAMES) for i in range(len(boxes))])
        )
    return written


@pytest.fixture(scope="module")
def extreme(tmp_path_factory) -> Path:
    """A VOC set whose train and val lists both hold the five images."""
    root = tmp_path_factory.mktemp("extreme") / "voc"
    (root / "JPEGImages").mkdir(parents=True)
    records = []
    for index, (path, boxes, labels) in enumerate(_images(root / "JPEGImages")):
        height, width = cv2.imread(str(path)).shape[:2]
        records.append(ImageRecord(path, width, height, boxes, labels, image_id=index))
    record_set = RecordSet(records, CLASS_NAMES, root, "voc")
    for split in ("train", "val"):
        write_voc(record_set, root, split=split)
    return root


@pytest.fixture(scope="module")
def trained(extreme, tmp_path_factory) -> Path:
    """last.pt after one epoch with mosaic on, so extremes meet inside mosaics too."""
    project = tmp_path_factory.mktemp("runs")
    summary = api.train(
        data=str(extreme),
        model="nano-s",
        epochs=1,
        imgsz=64,
        batch=2,
        workers=0,
        close_mosaic=0,
        verbose=False,
        plots=False,
        project=str(project),
        name="extreme",
        seed=3,
    )
    last = summary["last"]
    assert summary["epochs"] == 1 and {"mAP50-95", "mAP50"} <= set(
        last
    )  # validated on the same five
    assert all(math.isfinite(value) for value in last.values())
    return Path(summary["run_dir"]) / "weights" / "last.pt"


def test_train_then_evaluate_give_finite_metrics(trained, extreme, tmp_path):
    result = api.evaluate(
        str(trained),
        str(extreme),
        imgsz=64,
        batch=2,
        workers=0,
        max_det=300,
        device="cpu",
        project=str(tmp_path),
        name="val",
        plots=False,
        save_json=False,
    )
    metrics = result["metrics"]
    assert {"mAP50-95", "mAP50", "voc_mAP50"} <= set(metrics)
    assert all(math.isfinite(v) for v in metrics.values() if isinstance(v, float))


def test_predict_returns_every_image_in_original_pixels(trained, extreme, tmp_path):
    results = api.predict(
        str(trained),
        str(extreme / "JPEGImages"),
        imgsz=64,
        conf=0.001,
        max_det=300,
        device="cpu",
        project=str(tmp_path),
        name="predict",
    )
    sizes = {p.name: cv2.imread(str(p)).shape[:2] for p in (extreme / "JPEGImages").iterdir()}
    assert sorted(Path(r.image_path).name for r in results) == sorted(sizes)
    assert sorted(p.name for p in (tmp_path / "predict").glob("*.jpg")) == sorted(
        sizes
    )  # drawn copies
    assert sum(len(r) for r in results) > 0
    for result in results:
        height, width = sizes[Path(result.image_path).name]
        assert tuple(result.orig_hw) == (height, width)
        assert len(result) <= 300
        boxes = result.boxes
        assert (boxes[:, [0, 2]] >= 0).all() and (boxes[:, [0, 2]] <= width).all()
        assert (boxes[:, [1, 3]] >= 0).all() and (boxes[:, [1, 3]] <= height).all()


def test_huge_image_is_resized_at_load_without_extra_full_copies(extreme):
    """8000x6000: decoding needs the full image once (plus the decoder's BGR->RGB copy), no more."""
    full_bytes = 8000 * 6000 * 3
    tracemalloc.start()
    try:
        image, orig_hw = load_image(extreme / "JPEGImages" / "huge.jpg", 64)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert image.shape == (48, 64, 3) and orig_hw == (6000, 8000)
    assert peak < 2.2 * full_bytes, f"peak {peak / 2**20:.0f} MiB"


def test_tiny_and_crowded_images_load_whole(extreme):
    """20x20 is scaled up, not lost; all 300 objects of the crowded image reach the sample."""
    from edgevision.data.datasets.detect import DetectionDataset
    from edgevision.data.formats import load_dataset

    record_set, issues = load_dataset(extreme, split="val")
    dataset = DetectionDataset(record_set, imgsz=96, augment=False)
    by_name = {Path(r.image_path).stem: i for i, r in enumerate(dataset.records)}
    tiny = dataset[by_name["tiny"]]
    assert tiny["image"].shape == (3, 96, 96)
    np.testing.assert_allclose(tiny["boxes"].numpy(), [[19.2, 19.2, 76.8, 76.8]], atol=1e-3)
    crowd = dataset[by_name["crowd"]]
    assert len(crowd["boxes"]) == 300 and not issues


class _FixedRaw(nn.Module):
    """A stand-in detector whose raw output is given: 300 separate boxes on a 640x640 input."""

    strides = (8, 16, 32)
    codec = AnchorFreeCodec(strides)

    def __init__(self, raw: torch.Tensor):
        super().__init__()
        self.raw = raw

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.raw.expand(len(images), -1, -1)


def _raw_with_300_boxes() -> tuple[torch.Tensor, np.ndarray]:
    """(1, 8400, 5) raw output: 300 confident 6x6 boxes 16 px apart; and those boxes (300, 4)."""
    raw = torch.full((1, 80 * 80 + 40 * 40 + 20 * 20, 5), -10.0)
    distance = math.log(math.expm1(3 / 8))  # softplus(d) * stride 8 = 3 px to each side
    rows, columns = np.meshgrid(np.arange(0, 30, 2), np.arange(0, 40, 2), indexing="ij")
    index = torch.from_numpy((rows * 80 + columns).ravel())
    raw[0, index, :4] = distance
    raw[0, index, 4] = 5.0 + torch.arange(300) * 1e-3  # distinct scores: a stable order
    centres = np.stack([(columns.ravel() + 0.5) * 8, (rows.ravel() + 0.5) * 8], axis=1)
    return raw, np.concatenate([centres - 3, centres + 3], axis=1).astype(np.float32)


@pytest.mark.parametrize("max_det, expected", [(300, 300), (100, 100), (1000, 300)])
def test_max_det_keeps_as_many_detections_as_asked(max_det, expected):
    raw, boxes = _raw_with_300_boxes()
    model = _FixedRaw(raw)
    kept = predict_batch(model, torch.zeros(1, 3, 640, 640), conf=0.25, iou=0.45, max_det=max_det)[
        0
    ]
    assert len(kept["boxes"]) == expected
    # Through the predictor, on an image twice the input size: boxes come back in its pixels.
    predictor = Predictor(
        model, ["thing"], imgsz=640, device=torch.device("cpu"), conf=0.25, max_det=max_det
    )
    result = predictor.predict_images([np.zeros((1280, 1280, 3), np.uint8)], ["big"])[0]
    assert len(result) == expected and result.orig_hw == (1280, 1280)
    found = {tuple(b) for b in np.round(result.boxes).astype(int).tolist()}
    assert found <= {tuple(b) for b in np.round(boxes * 2).astype(int).tolist()}
