"""Bad data never stops training: every defect the data doctor knows, in one training set.

The set is the doctor's dirty VOC copy (``tests/data/doctor/test_check.py``: one defect per
image) over 24 training images, plus grey, RGBA and 16-bit PNGs and a CMYK JPEG. Training must
finish, name each unusable image exactly once, and count the objects it used the way the XML files
say.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image

from edgevision import api
from edgevision.core.image import read_image
from edgevision.data.datasets.detect import DetectionDataset
from edgevision.data.formats import load_dataset
from edgevision.data.synth.detect import CLASS_NAMES, synthesize_detection
from tests.data.doctor.test_check import make_dirty_voc, stem

TRUNCATED, EMPTY_FILE, EXIF_TURNED = 12, 13, 15  # images of make_dirty_voc (see DEFECTS)
UNUSABLE_ANNOTATIONS = (8, 9, 10)  # corrupt XML, empty XML, image missing: reader issues
ODD_FORMATS = {17: "grey.png", 18: "rgba.png", 19: "16bit.png", 20: "cmyk.jpg"}
STRAY_CLICK, PNG_AS_JPG = 21, 22  # xmin == xmax on the first object; PNG bytes under .jpg


def _write_odd_format(root: Path, index: int, kind: str) -> Path:
    """Re-encode image ``index`` as ``kind``; the XML names the new file. Returns the file."""
    source = root / "JPEGImages" / f"{stem(index)}.jpg"
    rgb = read_image(source)
    target = source.with_suffix(Path(kind).suffix)
    if kind == "grey.png":
        Image.fromarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)).save(target)
    elif kind == "rgba.png":
        Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 90, np.uint8)]), "RGBA").save(target)
    elif kind == "16bit.png":
        cv2.imwrite(str(target), rgb[..., ::-1].astype(np.uint16) * 257)
    else:
        Image.fromarray(rgb).convert("CMYK").save(target, quality=95)
    if target != source:
        source.unlink()
        xml = root / "Annotations" / f"{stem(index)}.xml"
        xml.write_text(xml.read_text().replace(source.name, target.name))
    return target


@pytest.fixture(scope="module")
def dirty(tmp_path_factory) -> Path:
    """The doctor's dirty set over 24 train / 6 val images, odd formats, and a class list."""
    base = tmp_path_factory.mktemp("bad")
    clean = synthesize_detection(base / "clean", n_train=24, n_val=6, width_range=(64, 96), seed=11)
    root = make_dirty_voc(clean, base / "dirty")
    for index, kind in ODD_FORMATS.items():
        _write_odd_format(root, index, kind)
    xml = root / "Annotations" / f"{stem(STRAY_CLICK)}.xml"
    text = xml.read_text()
    xml.write_text(
        re.sub(r"<xmax>\d+</xmax>", f"<xmax>{_first(text, 'xmin')}</xmax>", text, count=1)
    )
    jpg = root / "JPEGImages" / f"{stem(PNG_AS_JPG)}.jpg"
    jpg.write_bytes(cv2.imencode(".png", cv2.imread(str(jpg)))[1].tobytes())
    # A class list makes "airplane" (image 5) an unknown class rather than a new one.
    (root / "data.yaml").write_text(
        yaml.safe_dump({"format": "voc", "path": ".", "names": list(CLASS_NAMES)})
    )
    return root


def _first(text: str, tag: str) -> str:
    return text.split(f"<{tag}>")[1].split(f"</{tag}>")[0]


def _image_path(root: Path, xml_path: Path) -> Path | None:
    name = ElementTree.parse(xml_path).getroot().findtext("filename")
    path = root / "JPEGImages" / name
    return path if path.is_file() else None


def _decodes(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.load()
    except OSError:  # UnidentifiedImageError too
        return False
    return True


def _header_size(path: Path) -> tuple[int, int] | None:
    try:
        with Image.open(path) as image:
            return image.size
    except OSError:
        return None


def expected_objects(root: Path, usable=_header_size) -> tuple[int, int]:
    """(used, annotated) objects of the train list, read from the XML files with the stdlib alone.

    Annotated: objects in the XML files that parse and whose image file exists. Used: those of a
    known class (any case), with area left after ordering the corners and clipping to the real
    image, in images ``usable`` accepts (it returns the stored (width, height) or None).
    """
    known = {name.lower() for name in CLASS_NAMES}
    used = annotated = 0
    for name in (root / "ImageSets" / "Main" / "train.txt").read_text().split():
        xml_path = root / "Annotations" / f"{name}.xml"
        try:
            objects = ElementTree.parse(xml_path).getroot().findall("object")
            image_path = _image_path(root, xml_path)
        except (OSError, ElementTree.ParseError):
            continue  # missing, empty or corrupt annotation file
        if image_path is None:
            continue
        annotated += len(objects)
        size = usable(image_path)
        for obj in objects if size is not None else []:
            box = [float(obj.find("bndbox").findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax")]
            x0, x1 = sorted((min(max(box[0] - 1, 0), size[0]), min(max(box[2], 0), size[0])))
            y0, y1 = sorted((min(max(box[1] - 1, 0), size[1]), min(max(box[3], 0), size[1])))
            # More than a pixel each way: a 1-px box is a click without a drag, never trained.
            used += obj.findtext("name").lower() in known and x1 - x0 > 1 and y1 - y0 > 1
    return used, annotated


def _printed_objects(out: str) -> tuple[int, int]:
    found = re.search(r"^train: \d+ images.*?, (\d+)/(\d+) objects used", out, re.MULTILINE)
    assert found, out
    return int(found.group(1)), int(found.group(2))


def test_odd_formats_decode_to_rgb(dirty):
    """Grey, RGBA, 16-bit PNG and CMYK JPEG all decode to the (H, W, 3) uint8 RGB they encode."""
    clean = dirty.parent / "clean"  # make_dirty_voc copied it; the originals are still there
    for index, kind in ODD_FORMATS.items():
        image = read_image(dirty / "JPEGImages" / f"{stem(index)}{Path(kind).suffix}")
        reference = read_image(clean / "JPEGImages" / f"{stem(index)}.jpg")
        assert image.shape == reference.shape and image.dtype == np.uint8, kind
        if kind == "grey.png":
            reference = np.repeat(cv2.cvtColor(reference, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
        difference = np.abs(image.astype(int) - reference).mean()
        assert difference < (3 if kind == "cmyk.jpg" else 0.01), kind  # CMYK is re-encoded (lossy)


def test_ram_cache_lists_every_unusable_image_up_front(dirty):
    train, _ = load_dataset(dirty / "data.yaml", split="train")
    dataset = DetectionDataset(train, imgsz=64, augment=False, cache="ram")
    skipped = dict(dataset.take_unreported_skips())
    images = dirty / "JPEGImages"
    assert set(skipped) == {images / f"{stem(TRUNCATED)}.jpg", images / f"{stem(EMPTY_FILE)}.jpg"}
    assert skipped[images / f"{stem(EMPTY_FILE)}.jpg"] == "image file is empty (0 bytes)"
    assert "truncated" in skipped[images / f"{stem(TRUNCATED)}.jpg"]
    assert dataset.take_unreported_skips() == []  # handed out once
    # The RAM cache decoded everything, so the count is exact before the first batch.
    assert dataset.usage()["objects_used"] == expected_objects(dirty, usable=_decodes_size)[0]
    assert dataset.exif_rotated == [images / f"{stem(EXIF_TURNED)}.jpg"]
    record = next(r for r in dataset.records if r.image_path.stem == stem(EXIF_TURNED))
    stored_size = Image.open(record.image_path).size  # Pillow applies no EXIF rotation on open
    assert (record.width, record.height) == stored_size and stored_size[0] != stored_size[1]
    assert read_image(record.image_path).shape[:2] == (record.height, record.width)


def _decodes_size(path: Path) -> tuple[int, int] | None:
    return _header_size(path) if _decodes(path) else None


def test_probe_decodes_no_pixels(dirty, monkeypatch):
    """Only headers are read at construction (decoding waits for the first batch)."""
    from PIL import ImageFile

    from edgevision.data.datasets import detect as dataset_module

    def refuse(*args, **kwargs):
        raise AssertionError("pixels decoded while probing")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    monkeypatch.setattr(dataset_module, "read_image", refuse)
    train, _ = load_dataset(dirty / "data.yaml", split="train")
    dataset = DetectionDataset(train, imgsz=64, augment=False)
    assert [path.stem for path, _ in dataset.take_unreported_skips()] == [stem(EMPTY_FILE)]
    assert dataset.num_unreadable == 1


def test_training_on_every_defect_completes_and_reports_once(dirty, tmp_path, capsys):
    summary = api.train(
        data=str(dirty / "data.yaml"),
        model="nano-s",
        epochs=2,
        imgsz=64,
        batch=4,
        workers=0,
        verbose=False,
        plots=False,
        project=str(tmp_path),
        name="bad",
        seed=1,
        cache="none",  # decode lazily: the truncated JPEG is found by epoch 1 (the RAM cache,
        # the default when it fits, finds it up front: test_ram_cache_lists_every_...)
    )
    out = capsys.readouterr().out
    assert summary["epochs"] == 2 and (Path(summary["run_dir"]) / "weights" / "last.pt").is_file()
    images, annotations = dirty / "JPEGImages", dirty / "Annotations"
    for index in (TRUNCATED, EMPTY_FILE):
        assert out.count(str(images / f"{stem(index)}.jpg")) == 1, out
    for index in UNUSABLE_ANNOTATIONS:
        assert out.count(str(annotations / f"{stem(index)}.xml")) == 1, out
    # Header problems are named up front; the truncated JPEG when epoch 1 decodes it, once.
    start = out.index("train: 1 image skipped:")
    assert out.index(f"{stem(EMPTY_FILE)}.jpg") > start
    truncated = images / f"{stem(TRUNCATED)}.jpg"
    assert out.index(f"train epoch 1: 1 image skipped:\n  {truncated}: JPEG is truncated") > start
    # Before any decode the truncated JPEG still counts: the probe reads headers only.
    assert _printed_objects(out) == expected_objects(dirty)
    assert "EXIF orientation ignored for 1 image(s)" in out
    for index, kind in ODD_FORMATS.items():
        assert f"{stem(index)}{Path(kind).suffix}" not in out  # decoded fine: never listed
    assert f"{stem(PNG_AS_JPG)}.jpg" not in out  # PNG bytes named .jpg: an image, not skipped
    assert re.search(r"objects used \(not used: [^)]*\b1 1 px wide or high\b", out), out
