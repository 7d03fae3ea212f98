"""Odd files users' folders hold, through predict, val and training, with ``.pt`` and ``.onnx``:
PNG, BMP and WebP bytes named ``.jpg`` (decoded by content: they are images), and a truncated
JPEG, a 0-byte file and a text file named ``.jpg`` (named once, skipped, listed in
``skipped.json``; the rest predicted; exit 0; ``--strict`` stops at the first)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgevision import api, cli
from edgevision.core.errors import DataError
from edgevision.core.image import read_image
from edgevision.data.datasets.detect import DetectionDataset
from edgevision.data.formats import load_dataset
from tests.detector import CLASS_NAMES

RENAMED = {"png_bytes.jpg": ".png", "bmp_bytes.jpg": ".bmp", "webp_bytes.jpg": ".webp"}
BROKEN = ("truncated.jpg", "empty.jpg", "notes.jpg")


def _write_broken(folder: Path, jpeg: bytes) -> None:
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("not an image, despite the name")


def _encode(image_rgb: np.ndarray, suffix: str) -> bytes:
    ok, data = cv2.imencode(suffix, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


@pytest.fixture(scope="module")
def odd_folder(task_data, tmp_path_factory) -> Path:
    """Two plain JPEGs, three other formats named .jpg, and three unreadable .jpg files."""
    folder = tmp_path_factory.mktemp("odd")
    images = sorted((Path(task_data["detect"]) / "JPEGImages").glob("*.jpg"))
    for path in images[:2]:
        shutil.copy(path, folder / path.name)
    rgb = read_image(images[2])
    for name, suffix in RENAMED.items():
        (folder / name).write_bytes(_encode(rgb, suffix))
    _write_broken(folder, images[3].read_bytes())
    return folder


def test_other_formats_named_jpg_decode_like_their_real_format(odd_folder):
    png = read_image(odd_folder / "png_bytes.jpg")
    for name in RENAMED:
        assert read_image(odd_folder / name).shape == png.shape
    np.testing.assert_array_equal(read_image(odd_folder / "bmp_bytes.jpg"), png)  # both lossless
    for name in BROKEN:
        with pytest.raises(DataError, match=name):
            read_image(odd_folder / name)
    with pytest.raises(DataError, match="JPEG is truncated"):
        read_image(odd_folder / "truncated.jpg")


@pytest.mark.parametrize("task", ["detect", "classify"])
@pytest.mark.parametrize("engine", ["pt", "onnx"])
def test_predict_a_folder_with_odd_files(
    task, engine, odd_folder, release_checkpoints, exported, tmp_path, capsys
):
    weights = str(release_checkpoints[task] if engine == "pt" else exported[task])
    argv = ["predict", "--weights", weights, "--source", str(odd_folder), "--save-json"]
    argv += ["--project", str(tmp_path), "--name", "p", "--conf", "0.01"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    for name in BROKEN:
        assert out.count(name) == 1, (name, out)  # named once, in the "skipped:" line
    assert "3 of 8 files skipped" in out
    skipped = json.loads((tmp_path / "p" / "skipped.json").read_text())
    assert sorted(Path(row["file"]).name for row in skipped) == sorted(BROKEN)
    assert all(row["reason"] for row in skipped)
    rows = json.loads((tmp_path / "p" / "predictions.json").read_text())
    predicted = {Path(row.get("file_name") or row["path"]).name for row in rows}
    assert set(RENAMED) <= predicted and not predicted & set(BROKEN)
    annotated = {path.name for path in (tmp_path / "p").glob("*.jpg")}
    assert {"png_bytes.jpg", "webp_bytes.jpg"} <= annotated


def test_strict_stops_at_the_first_unreadable_file(odd_folder, release_checkpoints, tmp_path):
    with pytest.raises(DataError, match="empty.jpg"):  # the first of the sorted bad files
        api.predict(str(release_checkpoints["detect"]), str(odd_folder), save=False, strict=True)
    argv = ["predict", "--weights", str(release_checkpoints["detect"]), "--source"]
    argv += [str(odd_folder), "--strict", "--no-save", "--project", str(tmp_path)]
    assert cli.main(argv) == 1


@pytest.fixture(scope="module")
def odd_voc(task_data, tmp_path_factory) -> Path:
    """The task's VOC set with val images re-encoded as PNG/BMP/WebP under their .jpg names and
    one val image truncated."""
    root = tmp_path_factory.mktemp("odd_voc") / "voc"
    shutil.copytree(task_data["detect"], root)
    val = (root / "ImageSets" / "Main" / "val.txt").read_text().split()
    images = [root / "JPEGImages" / f"{stem}.jpg" for stem in val]
    for path, suffix in zip(images, RENAMED.values(), strict=False):
        path.write_bytes(_encode(read_image(path), suffix))
    images[-1].write_bytes(images[-1].read_bytes()[:300])
    return root


@pytest.mark.parametrize("engine", ["pt", "onnx"])
def test_val_scores_every_readable_image(
    engine, odd_voc, release_checkpoints, exported, tmp_path, capsys
):
    weights = str(release_checkpoints["detect"] if engine == "pt" else exported["detect"])
    result = api.evaluate(weights, str(odd_voc), project=str(tmp_path), name="v", imgsz=128)
    out = capsys.readouterr().out
    truncated = (odd_voc / "ImageSets" / "Main" / "val.txt").read_text().split()[-1]
    assert out.count(f"{truncated}.jpg") == 1 and "truncated" in out.lower()
    evaluated = json.loads((tmp_path / "v" / "per_class.json").read_text())
    assert sum(row["num_gt"] for row in evaluated) == _objects(odd_voc, exclude=truncated)
    assert np.isfinite(result["metrics"]["mAP50"])


def _objects(root: Path, exclude: str) -> int:
    record_set, _ = load_dataset(str(root), split="val", class_names=CLASS_NAMES)  # the model's
    return sum(r.num_objects for r in record_set.records if r.image_path.stem != exclude)


def test_training_uses_images_whose_bytes_are_another_format(odd_voc):
    record_set, _ = load_dataset(str(odd_voc), split="val")
    dataset = DetectionDataset(record_set, imgsz=128, augment=False, cache="none", seed=0)
    for index in range(len(dataset)):
        dataset[index]
    usage = dataset.usage()
    # Only the truncated JPEG is lost; the PNG, BMP and WebP bytes named .jpg all train.
    assert usage["images_used"] == len(record_set) - 1
    assert [path.name for path, _ in dataset.take_unreported_skips()] == [
        record_set.records[-1].image_path.name
    ]
