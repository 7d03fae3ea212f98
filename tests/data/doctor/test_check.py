"""The data doctor's check: every defect kind found in the right file and object.

``make_clean_voc`` / ``make_dirty_voc`` are shared with ``test_fix.py``: a small synthetic VOC set,
then a copy with one defect per image (``DEFECTS`` says which image holds which).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgevision.core import issues as kinds
from edgevision.data.doctor.boxes import judge_boxes
from edgevision.data.doctor.check import CheckReport, check_dataset
from edgevision.data.doctor.images import inspect_images
from edgevision.data.synth.detect import CLASS_NAMES, synthesize_detection

NUM_IMAGES = 20


def stem(index: int) -> str:
    return f"synth_{index:06d}"


def make_clean_voc(root: Path) -> Path:
    """20 small synthetic images (64-96 px wide) with their VOC annotations and split lists."""
    return synthesize_detection(root, n_train=16, n_val=4, width_range=(64, 96), seed=3)


def _edit_xml(root: Path, index: int, edit) -> None:
    path = root / "Annotations" / f"{stem(index)}.xml"
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")


def _object_block(text: str, nth: int) -> str:
    start = -1
    for _ in range(nth + 1):
        start = text.index("<object>", start + 1)
    return text[start : text.index("</object>", start) + len("</object>")]


def _replace_in_object(text: str, nth: int, old: str, new: str) -> str:
    block = _object_block(text, nth)
    return text.replace(block, block.replace(old, new, 1), 1)


def _tag(block: str, tag: str) -> str:
    return block.split(f"<{tag}>")[1].split(f"</{tag}>")[0]


def _swap_x(text: str) -> str:
    block = _object_block(text, 0)
    xmin, xmax = _tag(block, "xmin"), _tag(block, "xmax")
    swapped = block.replace(f"<xmin>{xmin}<", f"<xmin>{xmax}<").replace(
        f"<xmax>{xmax}<", f"<xmax>{xmin}<"
    )
    return text.replace(block, swapped, 1)


def _set_box_value(tag: str, value) -> Callable[[str], str]:
    """An edit setting ``<tag>`` of the first object to ``value`` (or ``value(text, block)``)."""

    def edit(text: str) -> str:
        block = _object_block(text, 0)
        new_value = value(text, block) if callable(value) else value
        return _replace_in_object(text, 0, f"<{tag}>{_tag(block, tag)}<", f"<{tag}>{new_value}<")

    return edit


def _duplicate_first(text: str) -> str:
    """Append a copy of the first object: a duplicate at the last object index."""
    return text.replace("</annotation>", "  " + _object_block(text, 0) + "\n</annotation>")


def _drop_objects(text: str) -> str:
    while "<object>" in text:
        text = text.replace(_object_block(text, 0), "", 1)
    return text


def _drop_size(text: str) -> str:
    return text[: text.index("<size>")] + text[text.index("</size>") + len("</size>") :]


def _exif_rotate(path: Path) -> None:
    image = Image.open(path)
    image.load()
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(path, exif=exif, quality=90)


# image index -> (defect kind injected there, object index it is reported at, or None)
DEFECTS = {
    0: (kinds.FLOAT_SIZE, None),
    1: (kinds.SWAPPED_COORDS, 0),
    2: (kinds.BOX_OUTSIDE, 0),
    3: (kinds.ZERO_AREA, 0),
    4: (kinds.DUPLICATE_BOX, "last"),
    5: (kinds.UNKNOWN_CLASS, 0),
    6: (kinds.CLASS_CASE, 0),
    7: (kinds.NO_OBJECTS, None),
    8: (kinds.CORRUPT_ANNOTATION, None),
    9: (kinds.EMPTY_ANNOTATION, None),
    10: (kinds.MISSING_IMAGE, None),
    11: (kinds.MISSING_ANNOTATION, None),
    12: (kinds.UNREADABLE_IMAGE, None),  # truncated JPEG: found by --deep only
    13: (kinds.UNREADABLE_IMAGE, None),  # zero bytes
    14: (kinds.SIZE_MISMATCH, None),
    15: (kinds.EXIF_ROTATION, None),
    16: (kinds.MISSING_SIZE, None),
}
CLEAN = (17, 18, 19)


def make_dirty_voc(clean: Path, root: Path) -> Path:
    """A copy of ``clean`` with the defect of ``DEFECTS[i]`` injected into image ``i``."""
    shutil.copytree(clean, root)
    images = root / "JPEGImages"
    _edit_xml(
        root, 0, lambda t: t.replace("</width>", ".0</width>").replace("</height>", ".0</height>")
    )
    _edit_xml(root, 1, _swap_x)
    _edit_xml(root, 2, _set_box_value("xmax", lambda t, b: int(_tag(t, "width")) + 20))
    _edit_xml(root, 3, _set_box_value("xmax", lambda t, b: int(_tag(b, "xmin")) - 1))
    _edit_xml(root, 4, _duplicate_first)
    _edit_xml(root, 5, _set_box_value("name", "airplane"))
    _edit_xml(root, 6, _set_box_value("name", lambda t, block: _tag(block, "name").upper()))
    _edit_xml(root, 7, _drop_objects)
    _edit_xml(root, 8, lambda t: t[: len(t) // 2])
    (root / "Annotations" / f"{stem(9)}.xml").write_bytes(b"")
    (images / f"{stem(10)}.jpg").unlink()
    (root / "Annotations" / f"{stem(11)}.xml").unlink()
    data = (images / f"{stem(12)}.jpg").read_bytes()
    (images / f"{stem(12)}.jpg").write_bytes(data[: len(data) // 2])
    (images / f"{stem(13)}.jpg").write_bytes(b"")
    _edit_xml(
        root,
        14,
        lambda t: t.replace(f"<width>{_tag(t, 'width')}<", f"<width>{int(_tag(t, 'width')) + 10}<"),
    )
    _exif_rotate(images / f"{stem(15)}.jpg")
    _edit_xml(root, 16, _drop_size)
    return root


def count_objects(root: Path) -> int:
    """<object> elements in every annotation file (corrupt or empty ones included as text)."""
    return sum(p.read_bytes().count(b"<object>") for p in (root / "Annotations").glob("*.xml"))


def hash_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def clean_voc(tmp_path_factory) -> Path:
    return make_clean_voc(tmp_path_factory.mktemp("clean") / "voc")


@pytest.fixture(scope="module")
def dirty_voc(clean_voc, tmp_path_factory) -> Path:
    return make_dirty_voc(clean_voc, tmp_path_factory.mktemp("dirty") / "voc")


@pytest.fixture(scope="module")
def deep_report(dirty_voc) -> CheckReport:
    return check_dataset(dirty_voc, deep=True, class_names=list(CLASS_NAMES))


def _find(report: CheckReport, kind: str, name: str) -> list:
    return [i for i in report.issues if i.kind == kind and i.path.name.startswith(name)]


def _expected_issues(dirty: Path) -> set[tuple[str, str, int | None]]:
    """(kind, file name, object index) for every injected defect, as the check should report it."""
    last_object = (dirty / "Annotations" / f"{stem(4)}.xml").read_bytes().count(b"<object>") - 1
    on_image = {kinds.UNREADABLE_IMAGE, kinds.EXIF_ROTATION, kinds.MISSING_ANNOTATION}
    expected = set()
    for index, (kind, obj) in DEFECTS.items():
        name = f"{stem(index)}.jpg" if kind in on_image else f"{stem(index)}.xml"
        expected.add((kind, name, last_object if obj == "last" else obj))
    # The float size is reported once per tag; the lost XML is also missing from two split lists.
    expected |= {
        (kinds.MISSING_ANNOTATION, "train.txt", None),
        (kinds.MISSING_ANNOTATION, "trainval.txt", None),
    }
    return expected


def test_clean_dataset_has_no_issues(clean_voc):
    report = check_dataset(clean_voc, class_names=list(CLASS_NAMES))
    assert report.issues == []
    assert report.exit_code == 0
    assert report.num_images == NUM_IMAGES
    assert report.num_objects == count_objects(clean_voc)
    assert "no defects found" in report.format_text()


def test_every_defect_is_found_in_its_file_and_object(deep_report, dirty_voc):
    found = {(i.kind, i.path.name, i.object_index) for i in deep_report.issues}
    assert found == _expected_issues(dirty_voc)
    assert not [i for i in deep_report.issues if any(stem(c) in str(i.path) for c in CLEAN)]
    assert deep_report.summary()[kinds.FLOAT_SIZE] == 2  # width and height, each with its line
    assert {i.line for i in _find(deep_report, kinds.FLOAT_SIZE, stem(0))} == {5, 6}


def test_issue_paths_point_at_the_file_to_edit(deep_report, dirty_voc):
    (missing,) = _find(deep_report, kinds.MISSING_IMAGE, stem(10))
    assert missing.path == dirty_voc / "Annotations" / f"{stem(10)}.xml"
    (zero_bytes,) = _find(deep_report, kinds.UNREADABLE_IMAGE, stem(13))
    assert zero_bytes.path == dirty_voc / "JPEGImages" / f"{stem(13)}.jpg"
    assert "0 bytes" in zero_bytes.reason
    (mismatch,) = _find(deep_report, kinds.SIZE_MISMATCH, stem(14))
    assert mismatch.path.parent.name == "Annotations" and "!=" in mismatch.reason
    (exif,) = _find(deep_report, kinds.EXIF_ROTATION, stem(15))
    assert "orientation 6" in exif.reason and "exif_transpose" in exif.hint


def test_header_mode_misses_the_truncated_jpeg_that_deep_mode_catches(dirty_voc, deep_report):
    header = check_dataset(dirty_voc, deep=False, class_names=list(CLASS_NAMES))
    assert not _find(header, kinds.UNREADABLE_IMAGE, stem(12))
    assert _find(header, kinds.UNREADABLE_IMAGE, stem(13))  # zero bytes fails even the header
    assert _find(deep_report, kinds.UNREADABLE_IMAGE, stem(12))
    assert len(header.issues) == len(deep_report.issues) - 1


def test_unknown_class_needs_a_class_list(dirty_voc):
    discovered = check_dataset(dirty_voc, class_names=None)
    assert not _find(discovered, kinds.UNKNOWN_CLASS, stem(5))
    assert "airplane" in discovered.record_set.class_names


def test_exit_code_ignores_negative_images(clean_voc, tmp_path):
    root = shutil.copytree(clean_voc, tmp_path / "voc")
    _edit_xml(root, 2, _drop_objects)
    report = check_dataset(root)
    assert report.summary() == {kinds.NO_OBJECTS: 1}
    assert report.exit_code == 0


def test_report_text_and_json(deep_report):
    text = deep_report.format_text()
    assert f"Annotations/{stem(1)}.xml: object 0: corners swapped" in text
    assert "--fix swaps them" in text
    table = [line for line in text.splitlines() if line.startswith(kinds.BOX_OUTSIDE)]
    assert table and table[0].split()[1] == "1" and "clip" in table[0]
    data = deep_report.to_json()
    assert data["exit_code"] == 1 and data["deep"] is True
    assert len(data["issues"]) == len(deep_report.issues)
    assert data["summary"] == deep_report.summary()
    assert {"kind", "path", "reason", "hint", "object_index", "line", "severity"} <= set(
        data["issues"][0]
    )
    import json

    json.dumps(data)  # serialisable as is


def test_judge_boxes_classifies_like_the_fixer_repairs():
    boxes = np.array(
        [
            [10, 10, 20, 20],  # fine
            [25, 10, 15, 20],  # swapped x
            [-5, 10, 20, 120],  # outside (left and bottom) -> clipped
            [10, 10, 10, 30],  # zero width
            [150, 10, 170, 20],  # wholly outside -> zero area after clip
            [10, 10, 20, 20.05],  # duplicate of box 0 (IoU 0.995)
            [10, 10, 20, 20],  # same place, other class: not a duplicate
            [np.nan, 0, 5, 5],  # not finite
        ],
        dtype=np.float32,
    )
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 0])
    verdict = judge_boxes(boxes, labels, (100, 100))
    assert verdict.swapped.tolist() == [0, 1, 0, 0, 0, 0, 0, 0]
    assert verdict.outside.tolist() == [0, 0, 1, 0, 1, 0, 0, 0]
    assert verdict.zero_area.tolist() == [0, 0, 0, 1, 1, 0, 0, 1]
    assert verdict.duplicate.tolist() == [0, 0, 0, 0, 0, 1, 0, 0]
    np.testing.assert_allclose(verdict.repaired[1], [15, 10, 25, 20])
    np.testing.assert_allclose(verdict.repaired[2], [0, 10, 20, 100])
    unknown_size = judge_boxes(np.array([[10, 10, 20, 500], [-1, 10, 20, 20]]), [0, 0], None)
    assert unknown_size.outside.tolist() == [False, True]  # only negative coordinates clip
    grouped = judge_boxes(boxes[[0, 5, 0]], [0, 0, 0], (100, 100), groups=[0, 0, 1])
    assert grouped.duplicate.tolist() == [False, True, False]  # duplicates within an image only


def test_image_pool_gives_the_same_answers_as_inline(tmp_path):
    import cv2

    paths = []
    for index in range(140):
        path = tmp_path / f"{index:03d}.png"
        cv2.imwrite(str(path), np.full((4 + index % 5, 6, 3), index, dtype=np.uint8))
        paths.append(path)
    paths[7].write_bytes(b"not an image")
    inline = inspect_images(paths, deep=True, workers=1)
    pooled = inspect_images(paths, deep=True, workers=2)
    assert pooled == inline
    assert (inline[paths[3]].width, inline[paths[3]].height) == (6, 7)
    assert not inline[paths[7]].readable and not inline[paths[7]].missing
    assert inspect_images([tmp_path / "gone.png"])[tmp_path / "gone.png"].missing


# ---------------------------------------------------------------------------------------------
# COCO and YOLO: the same checks, positions in their own terms


def make_dirty_coco(clean: Path, root: Path) -> tuple[Path, dict]:
    """A COCO copy of ``clean`` with defects; returns the JSON and kind -> annotation index."""
    import json

    from edgevision.data.formats.coco import write_coco
    from edgevision.data.formats.voc import read_voc

    records, _ = read_voc(clean)
    json_path = write_coco(records.with_records(records.records[:8]), root / "annotations.json")
    data = json.loads(json_path.read_text())
    first = {}
    for index, annotation in enumerate(data["annotations"]):
        first.setdefault(annotation["image_id"], index)
    ids = [image["id"] for image in data["images"]]
    data["images"][0]["width"] = float(data["images"][0]["width"])  # float size
    data["images"][5]["width"] += 10  # size mismatch
    x, y, w, h = data["annotations"][first[ids[1]]]["bbox"]
    data["annotations"][first[ids[1]]]["bbox"] = [x + w, y, -w, h]  # swapped
    data["annotations"][first[ids[2]]]["bbox"][2] = data["images"][2]["width"]  # outside
    data["annotations"][first[ids[3]]]["bbox"][3] = 0  # zero area
    data["annotations"].append(dict(data["annotations"][first[ids[4]]], id=10_000))  # duplicate
    data["categories"].append({"id": 99, "name": "airplane", "supercategory": ""})
    data["annotations"][first[ids[6]]]["category_id"] = 99  # unknown with a class list
    json_path.write_text(json.dumps(data))
    positions = {
        kinds.SWAPPED_COORDS: first[ids[1]],
        kinds.BOX_OUTSIDE: first[ids[2]],
        kinds.ZERO_AREA: first[ids[3]],
        kinds.DUPLICATE_BOX: len(data["annotations"]) - 1,
        kinds.UNKNOWN_CLASS: first[ids[6]],
    }
    return json_path, positions


def make_dirty_yolo(clean: Path, root: Path) -> tuple[Path, dict]:
    """A YOLO copy of ``clean`` with defects; returns the YAML and kind -> (label file, line)."""
    from edgevision.data.formats.voc import read_voc
    from edgevision.data.formats.yolo import write_yolo

    records, _ = read_voc(clean)
    yaml_path = write_yolo(records.with_records(records.records[:8]), root, split="train")
    labels = sorted((root / "labels" / "train").glob("*.txt"))

    def edit(index: int, change) -> None:
        lines = labels[index].read_text().splitlines()
        labels[index].write_text("".join(f"{line}\n" for line in change(lines)))

    def set_field(field: int, value):
        def change(lines):
            values = lines[1].split()
            values[field] = value(values) if callable(value) else value
            return [lines[0], " ".join(values), *lines[2:]]

        return change

    edit(0, set_field(0, "99"))  # class id outside the names: unknown
    edit(1, set_field(3, lambda v: f"-{v[3]}"))  # negative width: swapped
    edit(2, set_field(1, "0.98"))  # centre near the right edge: outside
    edit(3, set_field(4, "0"))  # zero height
    edit(4, lambda lines: [*lines, lines[0]])  # duplicate of line 1
    edit(5, lambda lines: ["", *lines[:1], "1 0.5 0.5 2.0 0.3", *lines[1:]])  # blank line shifts
    labels[6].write_text("")  # no objects
    positions = {
        kinds.UNKNOWN_CLASS: (labels[0], 2),
        kinds.SWAPPED_COORDS: (labels[1], 2),
        kinds.BOX_OUTSIDE: (labels[2], 2),
        kinds.ZERO_AREA: (labels[3], 2),
        kinds.DUPLICATE_BOX: (labels[4], len(labels[4].read_text().splitlines())),
    }
    return yaml_path, positions


def test_coco_defects_point_at_annotation_indices(clean_voc, tmp_path):
    json_path, positions = make_dirty_coco(clean_voc, tmp_path / "coco")
    report = check_dataset(json_path, deep=True, class_names=list(CLASS_NAMES))
    per_object = {i.kind: i.object_index for i in report.issues if i.object_index is not None}
    assert per_object == positions
    assert all(i.path == json_path for i in report.issues if i.object_index is not None)
    (float_size,) = [i for i in report.issues if i.kind == kinds.FLOAT_SIZE]
    (mismatch,) = [i for i in report.issues if i.kind == kinds.SIZE_MISMATCH]
    assert float_size.path == json_path and mismatch.path.suffix == ".jpg"
    assert report.format == "coco" and report.num_images == 8


def test_yolo_defects_point_at_label_lines(clean_voc, tmp_path):
    yaml_path, positions = make_dirty_yolo(clean_voc, tmp_path / "yolo")
    report = check_dataset(yaml_path)
    per_line = {i.kind: (i.path, i.line) for i in report.issues if i.line is not None}
    outside_shifted = [i for i in report.issues if i.kind == kinds.BOX_OUTSIDE and i.line == 3]
    assert len(outside_shifted) == 1 and outside_shifted[0].object_index == 2  # after a blank line
    per_line.pop(kinds.BOX_OUTSIDE)
    positions.pop(kinds.BOX_OUTSIDE)
    assert per_line == positions
    assert [i.kind for i in report.issues if i.line is None] == [kinds.NO_OBJECTS]


def test_converted_coco_tree_is_checked_as_coco_not_as_class_folders(clean_voc, tmp_path, capsys):
    """`data convert --to coco` writes annotations/ + images/: folders a classification layout
    would take for two classes. The doctor must read the tree as COCO."""
    from edgevision.cli import main
    from edgevision.data.convert import convert_dataset
    from edgevision.data.formats.imagefolder import is_classification_data

    coco = convert_dataset(clean_voc, "coco", tmp_path / "coco")
    assert not is_classification_data(coco)
    report = check_dataset(coco)
    assert report.format == "coco"
    image_files = sum(
        1 for p in (coco / "images").rglob("*") if p.is_file()
    )  # one copy per split file
    assert report.num_images == image_files
    assert main(["data", "check", str(coco)]) == 0
    assert "classification" not in capsys.readouterr().out
