"""The data doctor's fix: repairs and drops as stated, every change listed, originals untouched."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from edgevision.core import issues as kinds
from edgevision.core.errors import ConfigError
from edgevision.data.doctor.changes import DROPPED, FIXED, NOT_FIXED
from edgevision.data.doctor.check import check_dataset
from edgevision.data.doctor.fix import fix_dataset
from edgevision.data.formats.voc import parse_voc_xml
from edgevision.data.synth.detect import CLASS_NAMES
from tests.data.doctor.test_check import (
    DEFECTS,
    count_objects,
    hash_tree,
    make_clean_voc,
    make_dirty_coco,
    make_dirty_voc,
    make_dirty_yolo,
    stem,
)

CLASSES = list(CLASS_NAMES)
# What --fix does with each injected defect.
OUTCOME = {
    kinds.FLOAT_SIZE: FIXED,
    kinds.SWAPPED_COORDS: FIXED,
    kinds.BOX_OUTSIDE: FIXED,
    kinds.CLASS_CASE: FIXED,
    kinds.SIZE_MISMATCH: FIXED,
    kinds.MISSING_SIZE: FIXED,
    kinds.ZERO_AREA: DROPPED,
    kinds.DUPLICATE_BOX: DROPPED,
    kinds.UNKNOWN_CLASS: DROPPED,
    kinds.CORRUPT_ANNOTATION: NOT_FIXED,
    kinds.EMPTY_ANNOTATION: NOT_FIXED,
    kinds.MISSING_IMAGE: NOT_FIXED,
    kinds.MISSING_ANNOTATION: NOT_FIXED,
    kinds.UNREADABLE_IMAGE: NOT_FIXED,
    kinds.EXIF_ROTATION: NOT_FIXED,
}
UNFIXABLE = {kind for kind, action in OUTCOME.items() if action == NOT_FIXED} | {kinds.NO_OBJECTS}


@pytest.fixture(scope="module")
def dirty_voc(tmp_path_factory) -> Path:
    clean = make_clean_voc(tmp_path_factory.mktemp("clean") / "voc")
    dirty = make_dirty_voc(clean, tmp_path_factory.mktemp("dirty") / "voc")
    # Fields the fixer does not know must survive a rewrite.
    xml = dirty / "Annotations" / f"{stem(1)}.xml"
    text = xml.read_text().replace("<pose>Unspecified</pose>", "<pose>Left</pose>", 1)
    xml.write_text(text.replace("<segmented>", "<reviewer>ana</reviewer>\n  <segmented>", 1))
    return dirty


@pytest.fixture(scope="module")
def fixed(dirty_voc, tmp_path_factory):
    before = hash_tree(dirty_voc)
    out = tmp_path_factory.mktemp("fixed") / "voc"
    report = fix_dataset(dirty_voc, out=out, deep=True, class_names=CLASSES)
    return report, before


def test_fix_to_out_repairs_and_drops_each_defect_as_stated(fixed):
    report, _ = fixed
    outcomes = {}
    for change in report.changes:
        outcomes.setdefault(change.kind, set()).add(change.action)
    assert outcomes == {kind: {action} for kind, action in OUTCOME.items()}
    by_file = {(c.path.name, c.kind): c for c in report.changes}
    swapped = by_file[(f"{stem(1)}.xml", kinds.SWAPPED_COORDS)]
    assert swapped.object_index == 0 and swapped.before != swapped.after
    float_size = by_file[(f"{stem(0)}.xml", kinds.FLOAT_SIZE)]
    assert float_size.before.endswith(".0") and float_size.after == float_size.before[:-2]
    assert report.summary() == {FIXED: 7, DROPPED: 3, NOT_FIXED: 9}


def test_fixed_values_are_written_into_the_xml(fixed, dirty_voc):
    report, _ = fixed
    out = report.data / "Annotations"
    tree = parse_voc_xml(out / f"{stem(0)}.xml")
    original = parse_voc_xml(dirty_voc / "Annotations" / f"{stem(0)}.xml")
    assert tree.findtext("size/width") == original.findtext("size/width").replace(".0", "")
    box = parse_voc_xml(out / f"{stem(2)}.xml").find("object/bndbox")
    width = parse_voc_xml(out / f"{stem(2)}.xml").findtext("size/width")
    assert box.findtext("xmax") == width  # clipped to the image
    swapped = parse_voc_xml(out / f"{stem(1)}.xml").find("object/bndbox")
    assert float(swapped.findtext("xmin")) <= float(swapped.findtext("xmax"))
    assert parse_voc_xml(out / f"{stem(6)}.xml").findtext("object/name").islower()
    assert parse_voc_xml(out / f"{stem(16)}.xml").find("size/width") is not None
    real = report.check.images[dirty_voc / "JPEGImages" / f"{stem(14)}.jpg"]
    assert parse_voc_xml(out / f"{stem(14)}.xml").findtext("size/width") == str(real.width)


def test_unknown_fields_survive_and_xml_gets_a_declaration(fixed):
    report, _ = fixed
    path = report.data / "Annotations" / f"{stem(1)}.xml"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<?xml version='1.0' encoding='utf-8'?>")
    assert "<reviewer>ana</reviewer>" in text and "<pose>Left</pose>" in text


def test_original_is_untouched_and_unchanged_files_are_identical(fixed, dirty_voc):
    report, before = fixed
    assert hash_tree(dirty_voc) == before
    after = hash_tree(report.data)
    rewritten = {str(p.relative_to(report.data)) for p in report.written}
    assert set(after) == set(before)  # a full copy, no file lost or added
    assert {name for name in before if before[name] != after[name]} == rewritten
    image = f"JPEGImages/{stem(17)}.jpg"
    assert os.path.samefile(dirty_voc / image, report.data / image)  # hard-linked


def test_no_object_is_lost_without_being_listed(fixed, dirty_voc):
    report, _ = fixed
    dropped = sum(change.action == DROPPED for change in report.changes)
    assert dropped == 3
    assert count_objects(dirty_voc) == count_objects(report.data) + dropped
    assert report.objects_in - report.objects_out == dropped


def test_recheck_of_fixed_copy_is_clean_except_unfixable(fixed):
    report, _ = fixed
    again = check_dataset(report.data, deep=True, class_names=CLASSES)
    assert set(again.summary()) == UNFIXABLE
    fixed_files = {stem(i) for i, (kind, _) in DEFECTS.items() if OUTCOME.get(kind) != NOT_FIXED}
    assert not [i for i in again.issues if i.path.stem in fixed_files - {stem(7)}]


def test_fix_report_text_and_json(fixed):
    report, _ = fixed
    text = report.format_text()
    assert f"Annotations/{stem(6)}.xml: object 0: class_case fixed:" in text and " -> " in text
    assert "7 fixed, 3 dropped, 9 not fixed" in text
    data = report.to_json()
    json.dumps(data)
    assert len(data["changes"]) == len(report.changes) and data["summary"][DROPPED] == 3


def test_in_place_fix_backs_up_every_touched_file_and_nothing_else(dirty_voc, tmp_path):
    root = shutil.copytree(dirty_voc, tmp_path / "voc")
    before = hash_tree(root)
    report = fix_dataset(root, in_place=True, class_names=CLASSES)
    after = hash_tree(root)
    touched = {str(p.relative_to(root)) for p in report.written}
    assert touched and len(report.backups) == len(touched)
    for name in touched:
        assert after[name + ".bak"] == before[name]  # the backup holds the original bytes
        assert after[name] != before[name]
    assert set(after) == set(before) | {name + ".bak" for name in touched}
    assert {n for n in before if before[n] != after[n]} == touched
    assert report.data == root and report.in_place
    again = check_dataset(root, class_names=CLASSES)
    assert not {kinds.SWAPPED_COORDS, kinds.FLOAT_SIZE, kinds.DUPLICATE_BOX} & set(again.summary())


def test_clean_dataset_needs_no_changes(tmp_path):
    clean = make_clean_voc(tmp_path / "voc")
    before = hash_tree(clean)
    report = fix_dataset(clean, in_place=True)
    assert report.changes == [] and report.written == [] and report.backups == []
    assert hash_tree(clean) == before


def test_non_utf8_files_are_rewritten_as_utf8(tmp_path):
    # The reader decodes GBK right; the fix writes the normalised form every tool reads.
    clean = make_clean_voc(tmp_path / "voc")
    path = clean / "Annotations" / f"{stem(3)}.xml"
    text = path.read_text().replace("<pose>Unspecified</pose>", "<pose>左侧</pose>")
    text = text.replace("</width>", ".0</width>")
    path.write_bytes(('<?xml version="1.0" encoding="GBK"?>\n' + text).encode("gbk"))
    report = fix_dataset(clean, in_place=True)
    data = path.read_bytes()
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert "<pose>左侧</pose>" in data.decode("utf-8")
    assert parse_voc_xml(path).findtext("size/width").isdigit()
    assert {c.kind for c in report.changes} == {kinds.FLOAT_SIZE, kinds.XML_ENCODING}
    assert kinds.XML_ENCODING not in check_dataset(clean).summary()


def test_bad_targets_are_refused(dirty_voc, tmp_path):
    with pytest.raises(ConfigError, match="exactly one target"):
        fix_dataset(dirty_voc)
    with pytest.raises(ConfigError, match="exactly one target"):
        fix_dataset(dirty_voc, out=tmp_path / "x", in_place=True)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        fix_dataset(dirty_voc, out=tmp_path / "full")
    with pytest.raises(ConfigError, match="overlaps"):
        fix_dataset(dirty_voc, out=dirty_voc / "fixed")


def test_coco_fix_edits_the_json(tmp_path):
    clean = make_clean_voc(tmp_path / "voc")
    json_path, positions = make_dirty_coco(clean, tmp_path / "coco")
    before = json.loads(json_path.read_text())
    report = fix_dataset(json_path, out=tmp_path / "fixed", class_names=CLASSES)
    after = json.loads(report.data.read_text())
    dropped = [c for c in report.changes if c.action == DROPPED]
    assert {c.kind: c.object_index for c in dropped} == {
        kind: positions[kind]
        for kind in (kinds.ZERO_AREA, kinds.DUPLICATE_BOX, kinds.UNKNOWN_CLASS)
    }
    assert len(before["annotations"]) == len(after["annotations"]) + len(dropped)
    assert all(isinstance(i["width"], int) for i in after["images"])
    assert all(a["bbox"][2] > 0 and a["bbox"][3] > 0 for a in after["annotations"])
    assert json.loads(json_path.read_text()) == before  # source untouched
    again = check_dataset(report.data, class_names=CLASSES)
    assert set(again.summary()) <= {kinds.NO_OBJECTS}


def test_yolo_fix_rewrites_label_lines(tmp_path):
    clean = make_clean_voc(tmp_path / "voc")
    yaml_path, positions = make_dirty_yolo(clean, tmp_path / "yolo")
    lines_before = sum(
        bool(line.strip())
        for p in (tmp_path / "yolo" / "labels").rglob("*.txt")
        for line in p.read_text().splitlines()
    )
    report = fix_dataset(yaml_path, out=tmp_path / "fixed")
    assert str(tmp_path / "fixed") in report.data.read_text()  # path: points at the copy
    lines_after = sum(
        bool(line.strip())
        for p in (tmp_path / "fixed" / "labels").rglob("*.txt")
        for line in p.read_text().splitlines()
    )
    dropped = [c for c in report.changes if c.action == DROPPED]
    assert {c.kind for c in dropped} == {kinds.UNKNOWN_CLASS, kinds.ZERO_AREA, kinds.DUPLICATE_BOX}
    assert lines_before == lines_after + len(dropped)
    again = check_dataset(report.data)
    assert set(again.summary()) == {kinds.NO_OBJECTS}
    assert all(r.image_path.is_relative_to(tmp_path / "fixed") for r in again.record_set.records)


def test_annotation_of_the_rotated_view_is_not_clipped_or_resized(tmp_path):
    """EXIF 6 + <size> of the rotated view: the boxes belong to that view, so --fix leaves them."""
    from PIL import Image

    root = make_clean_voc(tmp_path / "voc")
    image_path = root / "JPEGImages" / f"{stem(2)}.jpg"
    xml = root / "Annotations" / f"{stem(2)}.xml"
    image = Image.open(image_path)
    image.load()
    rotated = image.transpose(Image.Transpose.ROTATE_90)  # stored pixels now H x W
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated.save(image_path, exif=exif)
    width, height = image.size
    assert width > height  # so a box reaching the right edge is outside the stored width
    edge = f"<object><name>ring</name><bndbox><xmin>{width - 9}</xmin><ymin>2</ymin>"
    edge += f"<xmax>{width}</xmax><ymax>9</ymax></bndbox></object></annotation>"
    xml.write_text(xml.read_text().replace("</annotation>", edge))
    before = xml.read_bytes()
    report = fix_dataset(root, in_place=True)
    kinds_found = {i.kind for i in report.check.issues}
    assert kinds_found == {kinds.EXIF_ROTATION, kinds.SIZE_MISMATCH}  # no box flagged outside
    (mismatch,) = [c for c in report.changes if c.kind == kinds.SIZE_MISMATCH]
    assert mismatch.action == NOT_FIXED and "rotated" in mismatch.before
    assert xml.read_bytes() == before and report.written == []
