"""What a real dirty VOC set held that the doctor let through: stray-click boxes (xmin == xmax),
tolerances it applied without a word (spaces around a class name, non-UTF-8 XML, a <filename>
that is not the image's), PNG bytes under .jpg, and class spellings folded to whichever file came
first. Each is now reported with file, object and fix; ``--fix`` writes the normalised form."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgevision.core import issues as kinds
from edgevision.core.image import detections_to_original
from edgevision.data.datasets.sanitize import sanitize_records
from edgevision.data.doctor.check import check_dataset
from edgevision.data.doctor.fix import fix_dataset
from edgevision.data.formats import load_dataset
from edgevision.data.formats.class_names import ClassFolder
from tests.data.doctor.test_check import hash_tree, make_clean_voc, stem

CLICK_X, CLICK_Y, SPACED, CP1252, GBK, BOM, RENAMED, PNG_BYTES, OTHER = range(1, 10)
INFO_KINDS = (
    kinds.CLASS_WHITESPACE,
    kinds.XML_ENCODING,
    kinds.FILENAME_MISMATCH,
    kinds.IMAGE_SUFFIX,
)


def _xml(root: Path, index: int) -> Path:
    return root / "Annotations" / f"{stem(index)}.xml"


def _edit_first_object(root: Path, index: int, tag: str, value) -> None:
    path = _xml(root, index)
    text = path.read_text()
    old = re.search(rf"<{tag}>([^<]*)</{tag}>", text)
    path.write_text(text[: old.start(1)] + value(text) + text[old.end(1) :])


def _first(text: str, tag: str) -> str:
    return re.search(rf"<{tag}>([^<]*)</{tag}>", text).group(1)


@pytest.fixture(scope="module")
def odd_voc(tmp_path_factory) -> Path:
    root = make_clean_voc(tmp_path_factory.mktemp("odd") / "voc")
    _edit_first_object(root, CLICK_X, "xmax", lambda text: _first(text, "xmin"))
    _edit_first_object(root, CLICK_Y, "ymax", lambda text: _first(text, "ymin"))
    _edit_first_object(root, SPACED, "name", lambda text: _first(text, "name") + " ")
    for index, encoding, prolog in (
        (CP1252, "cp1252", ""),
        (GBK, "gbk", '<?xml version="1.0" encoding="GBK"?>\n'),
        (BOM, "utf-8", "\ufeff"),
    ):
        path = _xml(root, index)
        text = path.read_text().replace("<folder>", "<folder>Café ").replace("<?xml", "<?xmlx")
        text = re.sub(r"^<\?xmlx[^>]*>\s*", "", text)
        path.write_bytes((prolog + text).encode(encoding))
    _edit_first_object(root, RENAMED, "filename", lambda text: "IMG_0042.JPG")
    _edit_first_object(root, OTHER, "filename", lambda text: f"{stem(OTHER + 1)}.jpg")
    jpg = root / "JPEGImages" / f"{stem(PNG_BYTES)}.jpg"
    jpg.write_bytes(cv2.imencode(".png", cv2.imread(str(jpg)))[1].tobytes())
    # Image 0 is read first and says "Square"; every other file says "square".
    _edit_first_object(root, 0, "name", lambda text: _first(text, "name").capitalize())
    return root


@pytest.fixture(scope="module")
def report(odd_voc):
    return check_dataset(odd_voc)


def _found(report, kind: str) -> list:
    return [issue for issue in report.issues if issue.kind == kind]


def test_stray_click_boxes_are_reported_as_degenerate(report):
    found = _found(report, kinds.DEGENERATE_BOX)
    assert sorted((i.path.name, i.object_index) for i in found) == [
        (f"{stem(CLICK_X)}.xml", 0),
        (f"{stem(CLICK_Y)}.xml", 0),
    ]
    assert all(i.severity == "error" and "click without a drag" in i.reason for i in found)
    assert "1 x " in found[0].reason and " x 1 px" in found[1].reason


def test_silent_tolerances_are_listed_at_info_level(report):
    expected = {
        kinds.CLASS_WHITESPACE: [f"{stem(SPACED)}.xml"],
        kinds.XML_ENCODING: [f"{stem(i)}.xml" for i in (CP1252, GBK, BOM)],
        kinds.FILENAME_MISMATCH: [f"{stem(RENAMED)}.xml"],
        kinds.IMAGE_SUFFIX: [f"{stem(PNG_BYTES)}.jpg"],
    }
    for kind, names in expected.items():
        found = _found(report, kind)
        assert sorted(i.path.name for i in found) == names, kind
        assert all(i.severity == "info" for i in found)
    encodings = {i.path.name: i.reason for i in _found(report, kinds.XML_ENCODING)}
    assert "decoded as latin-1" in encodings[f"{stem(CP1252)}.xml"]
    assert "declares encoding GBK" in encodings[f"{stem(GBK)}.xml"]
    assert "byte-order mark" in encodings[f"{stem(BOM)}.xml"]
    assert _found(report, kinds.FILENAME_MISMATCH)[0].reason.endswith(f"read {stem(RENAMED)}.jpg")
    assert "holds PNG data but is named .jpg" in _found(report, kinds.IMAGE_SUFFIX)[0].reason


def test_filename_naming_another_image_of_the_set_is_a_warning(report):
    # These boxes are read against another picture; the image named like the XML is unused.
    (issue,) = _found(report, kinds.FILENAME_OTHER_IMAGE)
    assert issue.path.name == f"{stem(OTHER)}.xml" and issue.severity == "warning"
    assert f"while {stem(OTHER)}.jpg (named like this annotation) exists" in issue.reason


def test_case_folds_to_the_most_frequent_spelling_and_says_so(report, odd_voc):
    assert "square" in report.record_set.class_names
    assert "Square" not in report.record_set.class_names  # the first file read said "Square"
    (issue,) = _found(report, kinds.CLASS_CASE)
    assert issue.path.name == f"{stem(0)}.xml" and issue.object_index == 0
    assert re.search(
        r'read as "square" \(objects per spelling: square x\d+, Square x1\)', issue.reason
    )
    assert 'class spellings folded: "Square" -> "square"' in report.format_text()
    record_set, issues = load_dataset(odd_voc, split="all")
    assert "square" in record_set.class_names
    assert any('"Square" -> "square"' in line for line in kinds.summarize_issues(issues, "train"))


@pytest.mark.parametrize(
    ("spellings", "expected"),
    [
        (["Digit7", "digit7", "digit7"], "digit7"),
        (["Digit7", "Digit7", "digit7"], "Digit7"),
        (["Car", "CAR"], "car"),  # a tie: lower case
        (["Car", "car"], "car"),
        (["Person"], "Person"),  # one spelling is kept as written
    ],
)
def test_majority_rule(spellings, expected):
    folder = ClassFolder(None)
    for name in spellings:
        folder.add(name)
    assert {folder.canonical(name) for name in spellings} == {expected}
    first = ClassFolder(None, case="first")
    for name in spellings:
        first.add(name)
    assert first.canonical(spellings[-1]) == spellings[0]


def test_training_ignores_stray_clicks_and_counts_them(odd_voc):
    record_set, _ = load_dataset(odd_voc, split="all")
    _, counts = sanitize_records(record_set)
    assert counts["degenerate"] == 2
    assert counts["objects_used"] == record_set.num_objects - 2


def test_fix_drops_stray_clicks_and_writes_the_normal_form(odd_voc, report, tmp_path):
    before = hash_tree(odd_voc)
    fixed = fix_dataset(odd_voc, out=tmp_path / "fixed", report=report)
    assert hash_tree(odd_voc) == before  # the user's files are never edited
    out = tmp_path / "fixed"
    dropped = [c for c in fixed.changes if c.kind == kinds.DEGENERATE_BOX]
    assert len(dropped) == 2 and all(c.action == "dropped" for c in dropped)
    written = _first(_xml(odd_voc, SPACED).read_text(), "name")
    assert (
        written.endswith(" ") and _first(_xml(out, SPACED).read_text(), "name") == written.strip()
    )
    for index in (CP1252, GBK, BOM):
        data = _xml(out, index).read_bytes()
        assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>"), index
        assert "<folder>Café " in data.decode("utf-8")
    assert _first(_xml(out, RENAMED).read_text(), "filename") == f"{stem(RENAMED)}.jpg"
    assert _first(_xml(out, 0).read_text(), "name") == "square"
    again = check_dataset(out)
    left = set(again.summary())
    assert left.isdisjoint({kinds.DEGENERATE_BOX, kinds.CLASS_CASE, *INFO_KINDS[:3]})
    assert kinds.IMAGE_SUFFIX in left  # images are the user's to rename: reported, never changed
    assert sum(r.num_objects for r in again.record_set.records) == report.num_objects - 2


def test_predictions_are_never_degenerate():
    # Input-pixel boxes that clipping to a 100 x 50 image flattens or shrinks below a pixel.
    found = {
        "boxes": np.array(
            [[10, 10, 40, 30], [-20, 5, -2, 20], [5, 5, 5.5, 30], [90, 10, 140, 20]], np.float32
        ),
        "scores": np.array([0.9, 0.8, 0.7, 0.6], np.float32),
        "classes": np.array([0, 1, 2, 3]),
    }
    out = detections_to_original(found, 1.0, (0.0, 0.0), (50, 100))
    np.testing.assert_array_equal(out["boxes"], [[10, 10, 40, 30], [90, 10, 100, 20]])
    np.testing.assert_array_equal(out["scores"], np.array([0.9, 0.6], np.float32))
    assert out["classes"].tolist() == [0, 3]
