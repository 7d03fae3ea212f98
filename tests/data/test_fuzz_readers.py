"""Fuzzing the VOC and YOLO readers: any input gives records plus Issues, or a DataError.

Nothing else may escape (UnicodeDecodeError, ValueError, RecursionError, ...): a bad file in a
10,000-image dataset must become a report naming the file, not a traceback. Every hypothesis test
is derandomized so CI sees the same examples on every run. The plain tests at the end pin the
minimal inputs of the bugs the fuzzers found.
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import cv2
import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from edgevision.core import issues as kinds
from edgevision.core.errors import DataError
from edgevision.core.issues import Issue
from edgevision.data.formats import load_dataset
from edgevision.data.formats.voc import read_voc
from edgevision.data.formats.yolo import read_yolo

FUZZ = settings(max_examples=60, deadline=None, derandomize=True)
KNOWN_KINDS = {
    value for name, value in vars(kinds).items() if name.isupper() and isinstance(value, str)
}
# Dropping an object is always reported by one of these kinds, with the object's index or line.
DROP_KINDS = {kinds.CORRUPT_ANNOTATION, kinds.UNKNOWN_CLASS}

# Texts that broke, or could break, number and XML parsing; mixed into every strategy below.
NASTY_TEXTS = [
    "nan", "-inf", "inf", "1e309", "-1e309", "1e39", "-1e39", "3.5e38", "-5", "0", "-0",
    "9" * 5000, "0x10", "1_000", "١٢", "²", " ", "", "x" * 3000, "1e-400", "+7", "٣.٥",
]  # fmt: skip
NASTY_BYTES = [
    b"<", b">", b"&", b"&amp;", b"&#0;", b"&#x10FFFF;", b"]]>", b"<!--", b"<?x?>", b"\x00",
    b"\xff\xfe", b"\x80", b"\xc3", b"\xed\xa0\x80", b"<a><b><c>", b"</object>", b"<object>",
    b'<?xml version="1.0" encoding="utf-7"?>', b'<?xml version="1.0" encoding="punycode"?>',
    b'<!DOCTYPE a [<!ENTITY e "x">]>', b"\r\n", b"\t",
] + [text.encode() for text in NASTY_TEXTS]  # fmt: skip
NUMBER_TEXT = st.one_of(
    st.sampled_from(NASTY_TEXTS),
    st.integers().map(str),
    st.floats().map(repr),
    st.integers(-20, 60).map(str),
    st.text(max_size=12),
)
# Mostly plausible numbers, often a nasty one: the shape of a real file with one bad value.
COORD_TEXT = st.one_of(
    st.integers(-5, 40).map(str),
    st.sampled_from(NASTY_TEXTS),
    st.floats().map(repr),
    st.sampled_from([1e39, -1e39, 3.5e38, 1e300, -0.0]).map(repr),
)
# XML text may hold any character but a lone surrogate (not encodable as UTF-8 at all).
XML_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


def _image(path: Path, width: int = 32, height: int = 24) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((height, width, 3), 90, np.uint8))
    return path


def _check_records(record_set, issues: list, allowed_paths: set[Path]) -> None:
    """The reader's promise: well-formed records, and every issue is an Issue naming our file."""
    for record in record_set.records:
        count = len(record.boxes)
        assert record.boxes.dtype == np.float32 and record.boxes.shape == (count, 4)
        assert np.isfinite(record.boxes).all(), record.boxes
        assert record.labels.dtype == np.int64 and record.labels.shape == (count,)
        assert ((record.labels >= 0) & (record.labels < record_set.num_classes)).all()
        if record.keypoints is not None:
            assert record.keypoints.shape[0] == count and np.isfinite(record.keypoints).all()
    for issue in issues:
        assert isinstance(issue, Issue) and issue.kind in KNOWN_KINDS
        assert Path(issue.path).absolute() in allowed_paths, issue


def _check_data_error(error: DataError, allowed_paths: set[Path]) -> None:
    assert error.path is not None and error.path.absolute() in allowed_paths, error


# ---------------------------------------------------------------------------------------------
# VOC

VALID_XML = (
    b"<annotation>\n  <folder>JPEGImages</folder>\n  <filename>0001.jpg</filename>\n"
    b"  <size><width>32</width><height>24</height><depth>3</depth></size>\n"
    b"  <object><name>car</name><difficult>0</difficult>\n"
    b"    <bndbox><xmin>2</xmin><ymin>3</ymin><xmax>20</xmax><ymax>18</ymax></bndbox></object>\n"
    b"  <object><name>Person</name><difficult>1</difficult>\n"
    b"    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>32</xmax><ymax>24</ymax></bndbox></object>\n"
    b"</annotation>\n"
)


def _read_voc_tree(root: Path, xml: bytes, class_names=None):
    """A valid VOC tree around ``xml``; (records, issues, xml path) or (None, error, xml path)."""
    xml_path = root / "Annotations" / "0001.xml"
    xml_path.parent.mkdir(parents=True)
    xml_path.write_bytes(xml)
    image = _image(root / "JPEGImages" / "0001.jpg")
    list_path = root / "ImageSets" / "Main" / "train.txt"
    list_path.parent.mkdir(parents=True)
    list_path.write_text("0001\n")
    allowed = {xml_path.absolute(), image.absolute(), list_path.absolute()}
    try:
        record_set, issues = read_voc(root, split="train", class_names=class_names)
    except DataError as error:
        _check_data_error(error, allowed)
        return None, [error], xml_path
    _check_records(record_set, issues, allowed)
    if len(record_set) == 0:  # the file was refused: that must be said, about this file
        assert any(issue.severity == "error" for issue in issues), issues
    return record_set, issues, xml_path


@FUZZ
@given(st.binary(max_size=400))
def test_voc_arbitrary_bytes(data):
    with tempfile.TemporaryDirectory() as tmp:
        _read_voc_tree(Path(tmp), data)


MUTATION = st.tuples(
    st.sampled_from(["delete", "replace", "insert", "value"]),
    st.floats(0, 1),
    st.integers(0, 40),
    st.one_of(st.sampled_from(NASTY_BYTES), st.binary(max_size=6)),
)


def _mutate(data: bytes, mutation) -> bytes:
    """One edit at a relative position; "value" replaces the text of the k-th element."""
    kind, where, length, payload = mutation
    if kind == "value":
        values = list(re.finditer(rb">([^<]*)<", data))
        if values:
            match = values[int(where * (len(values) - 1))]
            return data[: match.start(1)] + payload + data[match.end(1) :]
    position = int(where * len(data))
    end = position + (length if kind != "insert" else 0)
    return data[:position] + (b"" if kind == "delete" else payload) + data[end:]


@settings(FUZZ, max_examples=150)
@given(
    st.lists(MUTATION, min_size=1, max_size=4),
    st.sampled_from([None, ["car", "person"]]),
)
def test_voc_mutated_valid_annotation(mutations, class_names):
    data = VALID_XML
    for mutation in mutations:
        data = _mutate(data, mutation)
    with tempfile.TemporaryDirectory() as tmp:
        _read_voc_tree(Path(tmp), data, class_names)


def _element(tag: str, body: str) -> str:
    return f"<{tag}>{body}</{tag}>"


JUNK = st.recursive(
    XML_TEXT.map(escape),
    lambda inner: st.tuples(st.sampled_from(["name", "size", "object", "x", "bndbox"]), inner).map(
        lambda pair: _element(*pair)
    ),
    max_leaves=8,
)
BOX_TEXTS = st.lists(st.one_of(COORD_TEXT, NUMBER_TEXT), min_size=3, max_size=4)
BOX_TAGS = ("xmin", "ymin", "xmax", "ymax")
SIZE_TAGS = ("width", "height")
OBJECT = st.tuples(XML_TEXT, BOX_TEXTS, st.one_of(st.none(), XML_TEXT), JUNK)


def _object_xml(name: str, box_texts: list[str], difficult: str | None, junk: str) -> str:
    box = "".join(
        _element(tag, escape(text))
        for tag, text in zip(BOX_TAGS, box_texts, strict=False)  # 3 texts: one tag missing
    )
    flag = "" if difficult is None else _element("difficult", escape(difficult))
    return _element(
        "object", _element("name", escape(name)) + flag + _element("bndbox", box) + junk
    )


@FUZZ
@given(
    st.one_of(st.just("0001.jpg"), XML_TEXT),
    st.tuples(COORD_TEXT, COORD_TEXT),
    st.lists(OBJECT, max_size=4),
    JUNK,
)
def test_voc_structured_random_annotation(filename, size, objects, junk):
    body = _element("filename", escape(filename)) + junk  # junk first: it may shadow <size>
    width, height = (_element(tag, escape(text)) for tag, text in zip(SIZE_TAGS, size, strict=True))
    body += _element("size", width + height) + "".join(_object_xml(*obj) for obj in objects)
    document = _element("annotation", body)
    with tempfile.TemporaryDirectory() as tmp:
        record_set, issues, xml_path = _read_voc_tree(Path(tmp), document.encode())
    if record_set is None or len(record_set) == 0:
        return
    # Every <object> (ours, or one the junk put at the top) is kept or reported by index.
    written = len(ElementTree.fromstring(document).findall("object"))
    dropped = {
        i.object_index for i in issues if i.kind in DROP_KINDS and i.object_index is not None
    }
    assert record_set.records[0].num_objects + len(dropped) == written
    assert all(i.path == xml_path.absolute() for i in issues if i.object_index is not None)


# ---------------------------------------------------------------------------------------------
# YOLO

BASE_YAML = "path: .\ntrain: images/train\nnames: [cat, dog]\n"
POSE_YAML = BASE_YAML + "kpt_shape: [2, 3]\nflip_idx: [1, 0]\n"


def _yolo_tree(root: Path, labels: bytes, data_yaml: str | bytes = BASE_YAML) -> tuple[Path, set]:
    image = _image(root / "images" / "train" / "a.jpg", 64, 48)
    label = root / "labels" / "train" / "a.txt"
    label.parent.mkdir(parents=True)
    label.write_bytes(labels)
    yaml_path = root / "data.yaml"
    yaml_path.write_bytes(data_yaml if isinstance(data_yaml, bytes) else data_yaml.encode())
    return yaml_path, {image.absolute(), label.absolute(), yaml_path.absolute()}


def _read_yolo_tree(yaml_path: Path, allowed: set):
    try:
        record_set, issues = read_yolo(yaml_path)
    except DataError as error:
        _check_data_error(error, allowed)
        return None, [error]
    _check_records(record_set, issues, allowed)
    return record_set, issues


@FUZZ
@given(st.binary(max_size=300))
def test_yolo_label_arbitrary_bytes(data):
    with tempfile.TemporaryDirectory() as tmp:
        _read_yolo_tree(*_yolo_tree(Path(tmp), data))


CLASS_TEXT = st.one_of(
    st.integers(-3, 4).map(str), st.sampled_from(NASTY_TEXTS), st.integers().map(str)
)
UNIT = st.one_of(st.floats(-0.5, 1.5).map(repr), COORD_TEXT)
# Right column counts (box, polygon, pose with 2 keypoints) with plausible or nasty values.
WELL_FORMED_ROW = st.sampled_from([4, 6, 10]).flatmap(
    lambda count: st.tuples(
        st.sampled_from(["0", "1"]), st.lists(UNIT, min_size=count, max_size=count)
    )
)
ROW = st.one_of(
    WELL_FORMED_ROW.map(lambda row: [row[0], *row[1]]),
    st.tuples(CLASS_TEXT, st.lists(NUMBER_TEXT, max_size=10)).map(lambda row: [row[0], *row[1]]),
    st.just([]),
)


@settings(FUZZ, max_examples=100)
@given(
    st.lists(st.tuples(ROW, st.sampled_from([" ", "\t", "  ", "\u3000"])), max_size=8),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.sampled_from([BASE_YAML, POSE_YAML]),
)
def test_yolo_label_random_rows(rows, newline, data_yaml):
    text = newline.join(separator.join(row) for row, separator in rows)
    with tempfile.TemporaryDirectory() as tmp:
        yaml_path, allowed = _yolo_tree(Path(tmp), text.encode("utf-8", "surrogatepass"), data_yaml)
        record_set, issues = _read_yolo_tree(yaml_path, allowed)
    assert record_set is not None  # a valid data YAML: label defects are issues, never errors
    # Every non-blank line is either an object or an issue carrying its line number.
    lines = [n for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    reported = {issue.line for issue in issues if issue.line is not None}
    kept = sum(record.num_objects for record in record_set.records)
    if any(issue.kind == kinds.CORRUPT_ANNOTATION and issue.line is None for issue in issues):
        return  # the whole file was refused (not UTF-8), and said so
    assert kept + len(reported) == len(lines) and reported <= set(lines)


@FUZZ
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_yolo_data_yaml_arbitrary_text(text):
    with tempfile.TemporaryDirectory() as tmp:
        _read_yolo_tree(
            *_yolo_tree(Path(tmp), b"0 0.5 0.5 0.2 0.2\n", text.encode("utf-8", "replace"))
        )


# No "/", "\\" or "..": a path: or train: entry naming "/" would make the reader walk the whole disk.
LOCAL_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\\."), max_size=20
)
YAML_SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), LOCAL_TEXT,
    st.sampled_from(["images/train", ".", "x" * 300, "images/train/a.jpg", "0x" + "f" * 4000]),
)  # fmt: skip
YAML_VALUE = st.recursive(
    YAML_SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.integers(-1, 3), LOCAL_TEXT), inner, max_size=4),
    ),
    max_leaves=10,
)


# Scalars PyYAML's safe constructors choke on, and structures only aliases can build.
TAGGED = st.sampled_from(
    ["!!float abc", "!!int ''", "!!int 0x", "!!timestamp abc", "!!timestamp 2020-13-45",
     "&a [*a]", "!!binary '@@'", "!!set {a, b}", "!!python/name:os.system", "[" * 1500]
)  # fmt: skip
YAML_KEYS = ["path", "train", "names", "nc", "kpt_shape", "flip_idx", "val"]


@settings(FUZZ, max_examples=120)
@given(
    st.dictionaries(st.sampled_from(YAML_KEYS), YAML_VALUE, max_size=5),
    st.dictionaries(st.sampled_from(YAML_KEYS), TAGGED, max_size=2),
    st.booleans(),
)
def test_yolo_data_yaml_structured(values, tagged, keep_base):
    config = (yaml.safe_load(BASE_YAML) if keep_base else {}) | values
    config |= {key: f"RAW_{key}" for key in tagged}  # placeholders, swapped for the raw text
    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    for key, raw in tagged.items():
        text = text.replace(f"{key}: RAW_{key}", f"{key}: {raw}")
    with tempfile.TemporaryDirectory() as tmp:
        _read_yolo_tree(*_yolo_tree(Path(tmp), b"1 0.5 0.5 0.2 0.2\n", text))


# ---------------------------------------------------------------------------------------------
# Regressions: the minimal input of each bug found, as a plain test.


def _voc_with(tmp_path: Path, xml: bytes):
    record_set, issues, _ = _read_voc_tree(tmp_path / "voc", xml)
    assert record_set is not None
    return record_set, issues


@pytest.mark.parametrize(
    "prolog",
    [
        b'<?xml version="1.0" encoding="punycode"?>',  # was UnicodeError from bytes.decode
        b'<?xml version="1.0" encoding="utf-7"?>',  # was UnicodeEncodeError (lone surrogate)
    ],
)
def test_voc_codec_that_fails_or_yields_surrogates_falls_back_to_utf8(tmp_path, prolog):
    xml = VALID_XML.replace(b"<name>car</name>", b"<name>+2AA-</name>")  # UTF-7 for U+D800
    record_set, issues = _voc_with(tmp_path, prolog + xml)
    assert record_set.class_names == ["+2AA-", "Person"]
    # The codec the file names could not read it: said, with the one that did.
    assert [i.kind for i in issues] == [kinds.XML_ENCODING]
    assert "which does not decode it; decoded as utf-8" in issues[0].reason


def test_voc_width_with_thousands_of_digits_reads_the_image_header(tmp_path):
    # Was ValueError: Exceeds the limit (4300 digits) for integer string conversion.
    record_set, issues = _voc_with(
        tmp_path, VALID_XML.replace(b"<width>32<", b"<width>" + b"9" * 5000 + b"<")
    )
    assert (record_set.records[0].width, record_set.records[0].height) == (32, 24)
    assert [issue.kind for issue in issues] == [kinds.MISSING_SIZE]
    assert issues[0].path.name == "0001.xml" and issues[0].line == 4


@pytest.mark.parametrize("value", [b"1e39", b"-3.5e38", b"1e309", b"nan"])
def test_voc_coordinate_beyond_float32_drops_the_object(tmp_path, value):
    # 1e39 is finite as a float64 but was stored as inf in the float32 record.
    record_set, issues = _voc_with(
        tmp_path, VALID_XML.replace(b"<xmax>20<", b"<xmax>" + value + b"<")
    )
    np.testing.assert_array_equal(record_set.records[0].boxes, [[0, 0, 32, 24]])
    [issue] = issues
    assert (issue.kind, issue.object_index, issue.path.name) == (
        kinds.CORRUPT_ANNOTATION,
        0,
        "0001.xml",
    )
    assert "beyond +-3.4e38" in issue.reason


GOOD_POSE_LINE = "1 0.5 0.5 0.5 0.5 0.1 0.1 2 0.2 0.2 2"


@pytest.mark.parametrize(
    "line",
    [
        "0 0.5 0.5 1e39 0.1",  # was an inf box
        "0 0.1 0.1 0.9 0.1 1e300 0.9",  # polygon
        "0 0.5 0.5 0.2 0.2 0.5 1e39 2 0 0 0",  # keypoint
    ],
)
def test_yolo_value_beyond_float32_skips_the_line(tmp_path, line):
    pose = len(line.split()) == 11
    good = GOOD_POSE_LINE if pose else "1 0.5 0.5 0.5 0.5"
    labels = f"{good}\n{line}\n".encode()
    yaml_path, allowed = _yolo_tree(tmp_path, labels, POSE_YAML if pose else BASE_YAML)
    record_set, issues = _read_yolo_tree(yaml_path, allowed)
    assert record_set.records[0].labels.tolist() == [1]
    [issue] = issues
    assert (issue.kind, issue.line, issue.path.name) == (kinds.CORRUPT_ANNOTATION, 2, "a.txt")
    assert "too large" in issue.reason


def _yaml_error(tmp_path: Path, data_yaml: str) -> DataError:
    yaml_path, allowed = _yolo_tree(tmp_path, b"0 0.5 0.5 0.2 0.2\n", data_yaml)
    start = time.perf_counter()
    record_set, [error] = _read_yolo_tree(yaml_path, allowed)
    assert record_set is None and time.perf_counter() - start < 2.0
    assert isinstance(error, DataError) and error.path == yaml_path
    return error


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!!float abc", "ValueError"),
        ("!!int ''", "IndexError"),
        ("!!int 0x", "ValueError"),
        ("!!timestamp abc", "AttributeError"),
        ("!!timestamp 2020-13-45", "month must be in 1..12"),
        ("[" * 1500 + "]" * 1500, "RecursionError"),
        ("1" * 5000, "4300 digits"),
    ],
)
def test_yolo_yaml_values_pyyaml_cannot_construct_are_data_errors(tmp_path, value, message):
    error = _yaml_error(tmp_path, f"path: .\ntrain: images/train\nnames: {value}\n")
    assert "invalid YAML value" in error.reason and message in error.reason


ALIAS_BOMB = "".join(
    f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 10)}]\n" for level in range(1, 10)
)


@pytest.mark.parametrize(
    ("data_yaml", "message"),
    [
        ("l0: &l0 [lol]\n" + ALIAS_BOMB + "names: *l9\n", "through aliases"),  # 10**9 names
        ("names: &a [*a]\n", "through aliases"),  # a self-referencing list: the walk must stop
        ("nc: 1000000000000\n", "nc: is more than"),  # range(10**12) placeholders
        ("nc: 0x" + "f" * 4000 + "\n", "thousands of digits"),  # cannot even be printed
        ('names: {"\u00b2": a}\n', "are not 0..0"),  # "²".isdigit(), int("²") raised
        ("names: {0: a, '0': b}\n", "are not 0..1"),
    ],
)
def test_yolo_yaml_bombs_and_bad_class_counts_are_data_errors(tmp_path, data_yaml, message):
    error = _yaml_error(tmp_path, "path: .\ntrain: images/train\n" + data_yaml)
    assert message in error.reason


@pytest.mark.parametrize(("key", "message"), [("path", "not a folder"), ("train", "neither")])
def test_yolo_yaml_entry_longer_than_a_file_name_is_a_data_error(tmp_path, key, message):
    # Path.is_dir() raised OSError (ENAMETOOLONG) instead of answering False.
    config = {"path": ".", "train": "images/train", "names": ["cat"], key: "x" * 300}
    assert message in _yaml_error(tmp_path, yaml.safe_dump(config)).reason


def test_yolo_list_file_not_utf8_is_a_data_error_and_long_entries_are_issues(tmp_path):
    yaml_path, allowed = _yolo_tree(tmp_path, b"0 0.5 0.5 0.2 0.2\n", BASE_YAML)
    list_path = tmp_path / "train.txt"
    list_path.write_text("images/train/a.jpg\n" + "x" * 300 + "\n")
    yaml_path.write_text("train: train.txt\nnames: [cat, dog]\n")
    record_set, issues = read_yolo(yaml_path)
    assert len(record_set) == 1
    assert [(i.kind, i.line) for i in issues] == [(kinds.MISSING_IMAGE, 2)]
    list_path.write_bytes(b"images/train/\xff.jpg\n")  # was UnicodeDecodeError
    with pytest.raises(DataError, match="cannot read the image list") as error:
        read_yolo(yaml_path)
    assert error.value.path == list_path


@pytest.mark.parametrize("where", ["document", "names", "edgevision"])
def test_yaml_python_tags_are_refused_and_never_run(tmp_path, where):
    marker = tmp_path / "pwned"
    tag = f'!!python/object/apply:os.system ["touch {marker}"]'
    text = {
        "document": tag + "\n",
        "names": f"path: .\ntrain: images/train\nnames: {tag}\n",
        "edgevision": f"format: yolo\npath: .\ntrain: images/train\nnames: {tag}\n",
    }[where]
    yaml_path, _ = _yolo_tree(tmp_path, b"0 0.5 0.5 0.2 0.2\n", text)
    with pytest.raises(DataError, match="could not determine a constructor") as error:
        load_dataset(yaml_path) if where == "edgevision" else read_yolo(yaml_path)
    assert (
        error.value.path == yaml_path
        and error.value.line == text.count("\n", 0, text.index("!!")) + 1
    )
    assert not marker.exists()
