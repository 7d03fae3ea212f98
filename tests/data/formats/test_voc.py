"""Pascal VOC reader and writer: tolerances, defects as issues, safety, exact round trips."""

from __future__ import annotations

import tempfile
import time
import tracemalloc
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from edgevision.core import issues as kinds
from edgevision.core.errors import ConfigError, DataError
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.formats import voc, voc_xml
from edgevision.data.formats.voc import (
    VocImageIndex,
    parse_voc_xml,
    read_voc,
    record_to_xml,
    voc_image_for,
    write_voc,
)

SIZE = "<size><width>640</width><height>480</height><depth>3</depth></size>"


def obj(name: str = "car", box=(1, 1, 10, 20), difficult: str | None = "0") -> str:
    flag = "" if difficult is None else f"<difficult>{difficult}</difficult>"
    coords = "".join(f"<{t}>{v}</{t}>" for t, v in zip(voc_xml._BOX_TAGS, box, strict=True))
    return f"<object><name>{name}</name>{flag}<bndbox>{coords}</bndbox></object>"


def annotation(*objects: str, filename: str | None = "0001.jpg", size: str = SIZE) -> str:
    name = "" if filename is None else f"<filename>{filename}</filename>"
    body = "\n".join(objects)
    return f"<annotation>\n<folder>JPEGImages</folder>\n{name}\n{size}\n{body}\n</annotation>\n"


def make_voc(root: Path, files: dict[str, str | bytes], images: list[str] | None = None) -> Path:
    """VOC tree with the given XMLs; images default to an empty ``<stem>.jpg`` per XML."""
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    for stem, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        (root / "Annotations" / f"{stem}.xml").write_bytes(data)
    for name in [f"{stem}.jpg" for stem in files] if images is None else images:
        (root / "JPEGImages" / name).touch()
    return root


def of_kind(issues, kind):
    return [issue for issue in issues if issue.kind == kind]


def test_one_based_convention_and_record_fields(tmp_path):
    root = make_voc(tmp_path / "voc", {"0001": annotation(obj("car", (1, 1, 10, 20), "1"))})
    records, issues = read_voc(root)
    record = records.records[0]
    assert issues == []
    np.testing.assert_array_equal(record.boxes, [[0, 0, 10, 20]])
    assert record.boxes.dtype == np.float32 and record.labels.tolist() == [0]
    assert record.difficult.tolist() == [True]
    assert (record.width, record.height) == (640, 480) and isinstance(record.width, int)
    assert record.image_path == (root / "JPEGImages" / "0001.jpg").absolute()
    assert record.image_path.is_absolute()
    assert record.annotation_path == root.absolute() / "Annotations" / "0001.xml"
    assert record.image_id == 0 and record.extra == {"folder": "JPEGImages", "filename": "0001.jpg"}
    assert (records.format, records.split, records.class_names) == ("voc", "all", ["car"])


def test_files_read_in_stem_order_with_running_ids(tmp_path):
    files = {stem: annotation(obj(), filename=f"{stem}.jpg") for stem in ("b", "a", "c")}
    records, _ = read_voc(make_voc(tmp_path / "voc", files))
    assert [r.image_path.name for r in records.records] == ["a.jpg", "b.jpg", "c.jpg"]
    assert [r.image_id for r in records.records] == [0, 1, 2]


def _write_then_read(tmp: Path, boxes, labels, difficult, class_names) -> RecordSet:
    source = tmp / "src"
    source.mkdir()
    (source / "img.jpg").touch()
    record = ImageRecord(source / "img.jpg", 20000, 20000, boxes, labels, difficult)
    write_voc(RecordSet([record], class_names, source, "voc"), tmp / "out", split="train")
    return read_voc(tmp / "out", split="train", class_names=class_names)[0]


def test_write_read_round_trip_is_exact(tmp_path):
    boxes = np.array(
        [[9.5, 0, 100.25, 50.5], [0, 0, 10, 20], [1234.56, 12345.67, 16000.3, 19999.99]],
        dtype=np.float32,
    )
    back = _write_then_read(tmp_path, boxes, [1, 0, 1], [False, True, False], ["bus", "car"])
    record = back.records[0]
    np.testing.assert_array_equal(record.boxes, boxes)  # bit-exact, float32
    assert record.labels.tolist() == [1, 0, 1] and record.difficult.tolist() == [False, True, False]
    assert back.class_names == ["bus", "car"] and (record.width, record.height) == (20000, 20000)
    text = (tmp_path / "out" / "Annotations" / "img.xml").read_text()
    assert "<xmin>10.5</xmin>" in text and "<xmax>100.25</xmax>" in text
    assert "<xmin>1</xmin>" in text and "<xmax>10</xmax>" in text  # integers stay integers
    assert "<ymin>12346.67</ymin>" in text  # not "12346.7": 5-digit values keep their decimals


# Sub-micro-pixel values are not coordinates; adding VOC's 1 in float64 may round them away.
PIXEL = st.floats(-50, 5000, width=32).filter(lambda value: value == 0 or abs(value) > 1e-6)


@settings(max_examples=25, deadline=None)
@given(st.lists(PIXEL, min_size=4, max_size=4))
def test_round_trip_random_float32_coordinates(coords):
    boxes = np.array([coords], dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        back = _write_then_read(Path(tmp), boxes, [0], [False], ["car"])
    np.testing.assert_array_equal(back.records[0].boxes, boxes)


def test_write_voc_refuses_duplicate_stems_before_writing(tmp_path):
    records = [
        ImageRecord(tmp_path / "a" / "x.jpg", 4, 4),
        ImageRecord(tmp_path / "b" / "x.png", 4, 4),
    ]
    with pytest.raises(DataError, match="unique image stems"):
        write_voc(RecordSet(records, [], tmp_path, "voc"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_float_size_read_as_int_with_issue_and_line(tmp_path):
    size = "<size>\n<width>1920.0</width>\n<height>1080</height>\n</size>"
    root = make_voc(tmp_path / "voc", {"0001": annotation(obj(), size=size)})
    records, issues = read_voc(root)
    assert (records.records[0].width, records.records[0].height) == (1920, 1080)
    [issue] = issues
    assert issue.kind == kinds.FLOAT_SIZE and '"1920.0" is not an integer' in issue.reason
    assert issue.line == 5  # <annotation>, <folder>, <filename>, <size>, <width>


def test_float_box_coordinates_are_kept(tmp_path):
    root = make_voc(tmp_path / "voc", {"0001": annotation(obj(box=("10.5", "1.25", "20.75", 30)))})
    records, issues = read_voc(root)
    np.testing.assert_array_equal(records.records[0].boxes, [[9.5, 0.25, 20.75, 30]])
    assert issues == []


def test_single_object_and_missing_optional_fields(tmp_path):
    coords = "<xmin>5</xmin><ymin>6</ymin><xmax>7</xmax><ymax>8</ymax>"
    bare = f"<object><name>car</name><bndbox>{coords}</bndbox></object>"  # no pose/flags
    root = make_voc(tmp_path / "voc", {"0001": annotation(bare)})
    records, issues = read_voc(root)
    np.testing.assert_array_equal(records.records[0].boxes, [[4, 5, 7, 8]])
    assert records.records[0].difficult.tolist() == [False] and issues == []


def test_zero_objects_kept_as_negative_image(tmp_path):
    root = make_voc(tmp_path / "voc", {"0001": annotation()})
    records, issues = read_voc(root)
    assert records.records[0].boxes.shape == (0, 4) and records.records[0].labels.shape == (0,)
    assert [issue.kind for issue in issues] == [kinds.NO_OBJECTS]
    assert issues[0].severity == "info" and records.class_names == []


@pytest.mark.parametrize(
    "size",
    [
        "",
        "<size><width>0</width><height>0</height></size>",
        "<size><width> </width><height>17</height></size>",
    ],
)
def test_missing_or_zero_size_read_from_image_header(tmp_path, size):
    root = make_voc(tmp_path / "voc", {"0001": annotation(obj(), size=size)}, images=[])
    Image.new("RGB", (33, 17)).save(root / "JPEGImages" / "0001.jpg")
    records, issues = read_voc(root)
    assert (records.records[0].width, records.records[0].height) == (33, 17)
    [issue] = issues
    assert issue.kind == kinds.MISSING_SIZE and "33x17" in issue.reason


def test_missing_size_with_unreadable_image_gives_issue_and_no_record(tmp_path):
    root = make_voc(tmp_path / "voc", {"0001": annotation(obj(), size="")})  # 0-byte image
    records, issues = read_voc(root)
    assert len(records) == 0
    assert [issue.kind for issue in issues] == [kinds.UNREADABLE_IMAGE]
    assert issues[0].path == root.absolute() / "JPEGImages" / "0001.jpg"


@pytest.mark.parametrize(
    ("filename", "on_disk"),
    [
        ("JPEGImages/0001.jpg", "0001.jpg"),  # a relative path: its base name
        ("images\\train\\0001.jpg", "0001.jpg"),  # Windows separators
        ("0001", "0001.png"),  # no extension
        ("0001.jpg", "0001.JPG"),  # extension case differs
        (None, "0001.jpg"),  # no <filename>: the XML stem
        ("renamed.jpg", "0001.jpg"),  # wrong <filename>: the XML stem
        ("  0001.jpg\n ", "0001.jpg"),  # whitespace
    ],
)
def test_filename_resolution(tmp_path, filename, on_disk):
    root = make_voc(
        tmp_path / "voc", {"0001": annotation(obj(), filename=filename)}, images=[on_disk]
    )
    records, issues = read_voc(root)
    assert records.records[0].image_path == root.absolute() / "JPEGImages" / on_disk
    # Read either way; listed (info) when <filename> does not name the file, since tools that
    # trust <filename> would not find the image.
    named = filename is not None and filename.strip().replace("\\", "/").split("/")[-1] == on_disk
    expected = [] if named else [(kinds.FILENAME_MISMATCH, "info")]
    assert [(i.kind, i.severity) for i in issues] == expected
    if not named:
        assert issues[0].reason.endswith(f"read {on_disk}") and on_disk in issues[0].hint


def test_voc_image_for_matches_the_reader(tmp_path):
    root = make_voc(tmp_path / "voc", {"0001": annotation(obj(), filename="x/0001")})
    xml_path = root / "Annotations" / "0001.xml"
    path, issue = voc_image_for(root, parse_voc_xml(xml_path), xml_path)
    assert issue is None and path == read_voc(root)[0].records[0].image_path


def test_missing_image_is_an_issue_and_no_record(tmp_path):
    files = {"0001": annotation(obj()), "0002": annotation(obj(), filename="0002.jpg")}
    root = make_voc(tmp_path / "voc", files, images=["0002.jpg"])
    records, issues = read_voc(root)
    assert [r.image_path.name for r in records.records] == ["0002.jpg"]
    assert [(i.kind, i.path.name) for i in issues] == [(kinds.MISSING_IMAGE, "0001.xml")]


def test_whitespace_around_values_and_names(tmp_path):
    size = "<size>\n  <width> 640 </width>\n  <height>\t480\n</height></size>"
    spaced = obj("\n   car  \t", box=(" 1 ", "\n2", "3 ", " 4"), difficult=" 1 ")
    records, issues = read_voc(make_voc(tmp_path / "voc", {"0001": annotation(spaced, size=size)}))
    record = records.records[0]
    assert records.class_names == ["car"] and (record.width, record.height) == (640, 480)
    # Read as "car", and listed (info): other tools keep the spaces and see another class.
    assert [(i.kind, i.severity, i.object_index) for i in issues] == [
        (kinds.CLASS_WHITESPACE, "info", 0)
    ]
    assert 'read as "car"' in issues[0].reason and "'\\n   car  \\t'" in issues[0].reason
    np.testing.assert_array_equal(record.boxes, [[0, 1, 3, 4]])
    assert record.difficult.tolist() == [True]


def test_discovered_classes_sorted_alphabetically(tmp_path):
    files = {
        "1": annotation(obj("zebra"), obj("mango"), filename="1.jpg"),
        "2": annotation(obj("Apple"), filename="2.jpg"),
    }
    records, _ = read_voc(make_voc(tmp_path / "voc", files))
    assert records.class_names == ["Apple", "mango", "zebra"]
    assert records.records[0].labels.tolist() == [2, 1] and records.records[1].labels.tolist() == [
        0
    ]


@pytest.mark.parametrize(
    ("case", "expected", "folded"), [("first", "Car", "2.xml"), ("lower", "car", "1.xml")]
)
def test_class_case_folding(tmp_path, case, expected, folded):
    files = {
        "1": annotation(obj("Car"), filename="1.jpg"),
        "2": annotation(obj("bus"), obj("car"), filename="2.jpg"),
    }
    records, issues = read_voc(make_voc(tmp_path / "voc", files), case=case)
    assert records.class_names == sorted(["bus", expected], key=str.lower)
    car = records.class_names.index(expected)
    assert records.records[0].labels.tolist() == [car] and records.records[1].labels[1] == car
    [issue] = issues
    assert issue.kind == kinds.CLASS_CASE and issue.path.name == folded
    assert issue.object_index == (0 if folded == "1.xml" else 1) and f'"{expected}"' in issue.reason


def test_invalid_case_and_class_names_are_config_errors(tmp_path):
    root = make_voc(tmp_path / "voc", {"0001": annotation(obj())})
    with pytest.raises(ConfigError, match="first"):
        read_voc(root, case="upper")
    with pytest.raises(ConfigError, match="more than once"):
        read_voc(root, class_names=["car", "car"])


def test_given_class_list_folds_case_and_reports_unknown(tmp_path):
    xml = annotation(obj("Car"), obj("truck", box=(2, 2, 5, 5)), obj("person"))
    records, issues = read_voc(
        make_voc(tmp_path / "voc", {"0001": xml}), class_names=["person", "car"]
    )
    record = records.records[0]
    assert records.class_names == ["person", "car"] and record.labels.tolist() == [1, 0]
    assert [(i.kind, i.object_index) for i in issues] == [
        (kinds.CLASS_CASE, 0),
        (kinds.UNKNOWN_CLASS, 1),
    ]
    assert '"truck"' in issues[1].reason and issues[1].line == 6  # objects start on line 5


def test_split_file_order_and_missing_annotation(tmp_path):
    files = {stem: annotation(obj(), filename=f"{stem}.jpg") for stem in ("0001", "0002", "0003")}
    root = make_voc(tmp_path / "voc", files)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("0003\n0001\n\n0009  1\n")
    records, issues = read_voc(root, split="train")
    assert [r.image_path.stem for r in records.records] == [
        "0003",
        "0001",
    ] and records.split == "train"
    [issue] = issues
    assert (issue.kind, issue.path.name, issue.line) == (kinds.MISSING_ANNOTATION, "train.txt", 4)
    with pytest.raises(DataError, match="available splits: train"):
        read_voc(root, split="val")
    with pytest.raises(ConfigError):
        read_voc(root, split="../train")


def test_missing_folders_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="no Annotations/ folder"):
        read_voc(tmp_path)
    (tmp_path / "Annotations").mkdir()
    with pytest.raises(DataError, match="no JPEGImages/ folder"):
        read_voc(tmp_path)
    (tmp_path / "JPEGImages").mkdir()
    with pytest.raises(DataError, match="no .xml annotation files"):
        read_voc(tmp_path)
    (tmp_path / "Annotations" / "0001.xml").write_text(annotation(obj()))
    with pytest.raises(DataError, match="split=None"):
        read_voc(tmp_path, split="train")


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">\n'
        for i in range(1, 10)
    )
    + "]>\n<annotation><filename>&lol9;</filename></annotation>\n"
)


@pytest.mark.parametrize("entity", ["billion_laughs", "external"])
def test_entity_declarations_refused_fast_with_bounded_memory(tmp_path, entity):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    external = (
        f'<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY e SYSTEM "file://{secret}">]>\n'
        "<annotation><filename>&e;</filename></annotation>"
    )
    root = make_voc(
        tmp_path / "voc", {"0001": BILLION_LAUGHS if entity == "billion_laughs" else external}
    )
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(DataError, match="XML entity declarations are not allowed") as error:
        parse_voc_xml(root / "Annotations" / "0001.xml")
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 5_000_000
    assert "0001.xml" in str(error.value)
    records, issues = read_voc(root)
    assert len(records) == 0 and [i.kind for i in issues] == [kinds.CORRUPT_ANNOTATION]
    assert "entity declarations are not allowed" in issues[0].reason


ESCAPES = ["../../secret.jpg", "JPEGImages/../../../secret.jpg", "absolute", "C:\\x\\0001.jpg"]


@pytest.mark.parametrize("escape", [*ESCAPES, "absolute_inside_root"])
def test_path_escape_refused_without_reading(tmp_path, monkeypatch, escape):
    secret = tmp_path / "secret.jpg"
    Image.new("RGB", (8, 8)).save(secret)
    root = tmp_path / "voc"
    absolute = {"absolute": str(secret), "absolute_inside_root": str(root / "JPEGImages/0001.jpg")}
    filename = absolute.get(escape, escape)  # absolute names are refused even inside the root
    make_voc(root, {"0001": annotation(obj(), filename=filename, size="")})
    opened = []
    monkeypatch.setattr(voc, "read_image_size", lambda path: opened.append(path) or (8, 8))
    records, issues = read_voc(root)
    assert len(records) == 0 and opened == []
    assert [i.kind for i in issues] == [kinds.PATH_ESCAPE] and filename in issues[0].reason


@pytest.mark.parametrize("inside", ["../JPEGImages/0001.jpg", "a/../0001.jpg", "x..y/0001.jpg"])
def test_relative_paths_that_stay_inside_the_root_are_accepted(tmp_path, inside):
    root = (tmp_path / "voc").absolute()
    records, issues = read_voc(make_voc(root, {"0001": annotation(obj(), filename=inside)}))
    assert issues == [] and records.records[0].image_path == root / "JPEGImages" / "0001.jpg"


@pytest.mark.parametrize(
    ("prolog", "encoding", "note"),
    [
        ('<?xml version="1.0" encoding="GBK"?>\n', "gbk", "declares encoding GBK"),
        ("", "gbk", "is not UTF-8 and declares no encoding; decoded as gb18030"),
        (
            '<?xml version="1.0" encoding="utf-8"?>\n',
            "gbk",
            "declares UTF-8 but is not; decoded as gb18030",
        ),  # mislabelled
        (
            '<?xml version="1.0" encoding="ISO-8859-1"?>\n',
            "latin-1",
            "declares encoding ISO-8859-1",
        ),
        ("", "cp1252", "is not UTF-8 and declares no encoding; decoded as latin-1"),
        ("\ufeff", "utf-8", "starts with a UTF-8 byte-order mark"),  # BOM
        ("\ufeff<?xml version='1.0' encoding='UTF-8'?>", "utf-8", "byte-order mark"),
        ('<?xml version="1.0" encoding="UTF-8"?>\n', "utf-8", None),
    ],
)
def test_encodings(tmp_path, prolog, encoding, note):
    name = "汽车" if encoding == "gbk" else "café"
    data = (prolog + annotation(obj(name))).encode(encoding)
    records, issues = read_voc(make_voc(tmp_path / "voc", {"0001": data}))
    assert records.class_names == [name]
    # Read right, and named (info) so the user knows which files other tools may misread.
    assert [(i.kind, i.severity) for i in issues] == (
        [] if note is None else [(kinds.XML_ENCODING, "info")]
    )
    assert note is None or note in issues[0].reason
    assert (
        parse_voc_xml(tmp_path / "voc" / "Annotations" / "0001.xml").findtext("object/name") == name
    )


def test_corrupt_and_empty_files_become_issues_and_reading_goes_on(tmp_path):
    files = {
        "0001": "<annotation>\n<filename>0001.jpg</filename>\n<size>\n</annotation>",
        "0002": "  \n",
        "0003": "<annotation></annotation>",
        "0004": "<voc><filename>0004.jpg</filename></voc>",
        "0005": annotation(obj(), filename="0005.jpg"),
    }
    records, issues = read_voc(make_voc(tmp_path / "voc", files))
    assert [r.image_path.name for r in records.records] == ["0005.jpg"]
    kinds_by_file = [(i.path.name, i.kind) for i in issues]
    assert kinds_by_file == [
        ("0001.xml", kinds.CORRUPT_ANNOTATION),
        ("0002.xml", kinds.EMPTY_ANNOTATION),
        ("0003.xml", kinds.EMPTY_ANNOTATION),
        ("0004.xml", kinds.CORRUPT_ANNOTATION),
    ]
    assert issues[0].line == 4 and "mismatched tag" in issues[0].reason
    with pytest.raises(DataError, match=r"0001\.xml:4: not well-formed XML"):
        parse_voc_xml(tmp_path / "voc" / "Annotations" / "0001.xml")


def test_bad_bndbox_skips_only_that_object(tmp_path):
    bad_objects = [
        obj(box=(1, 1, 5, "abc")),
        "<object><name>car</name></object>",
        "<object><name>car</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax></bndbox>"
        "</object>",
        obj(box=(1, 1, "nan", 5)),
        obj(name=" "),
    ]
    root = make_voc(tmp_path / "voc", {"0001": annotation(obj(box=(3, 3, 9, 9)), *bad_objects)})
    records, issues = read_voc(root)
    np.testing.assert_array_equal(records.records[0].boxes, [[2, 2, 9, 9]])
    assert [(i.kind, i.object_index, i.line) for i in issues] == [
        (kinds.CORRUPT_ANNOTATION, index, index + 5) for index in range(1, 6)
    ]


def test_swapped_and_outside_boxes_kept_as_written(tmp_path):
    root = make_voc(
        tmp_path / "voc",
        {"0001": annotation(obj(box=(50, 60, 10, 20)), obj(box=(-5, 1, 700, 500)))},
    )
    records, issues = read_voc(root)
    np.testing.assert_array_equal(records.records[0].boxes, [[49, 59, 10, 20], [-6, 0, 700, 500]])
    assert issues == []


def test_image_index_prefers_jpg_for_a_shared_stem(tmp_path):
    root = make_voc(
        tmp_path / "voc",
        {"0001": annotation(obj(), filename=None)},
        images=["0001.png", "0001.jpg"],
    )
    xml_path = root / "Annotations" / "0001.xml"
    path, issue = VocImageIndex(root).resolve(parse_voc_xml(xml_path), xml_path)
    assert issue is None and path.name == "0001.jpg"
    assert "<filename>0001.jpg</filename>" in record_to_xml(ImageRecord(path, 4, 4), [])


@pytest.mark.parametrize(
    "document",
    [
        '<annotation a="1" b="2"><x c="3">t<y/>tail</x><!-- c --><?pi x?></annotation>',
        '<annotation xmlns:v="urn:v"><v:filename v:k="1">a.jpg</v:filename></annotation>',
        '<annotation xml:lang="en"><filename>a.jpg</filename></annotation>',
        '<annotation xmlns="urn:d"><filename>a.jpg</filename></annotation>',
    ],
)
def test_parse_gives_the_same_tree_as_elementtree(tmp_path, document):
    """The reader's direct-to-builder parse must not change names, attributes or text."""
    (tmp_path / "a.xml").write_text(document)
    expected = ElementTree.tostring(ElementTree.fromstring(document))
    assert ElementTree.tostring(parse_voc_xml(tmp_path / "a.xml")) == expected


def test_header_of_a_decompression_bomb_is_a_data_error(tmp_path, monkeypatch):
    """A header claiming more pixels than Pillow's bomb limit is a DataError, not a deep traceback."""
    from PIL import Image

    from edgevision.core.image import read_image_size

    path = tmp_path / "huge.png"
    cv2.imwrite(str(path), np.zeros((40, 40, 3), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1,600 pixels > 2 x 100: Pillow refuses
    with pytest.raises(DataError, match="huge.png.*too large to decode safely.*downscale"):
        read_image_size(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1,600 > 1,000: only a warning, size read
    assert read_image_size(path) == (40, 40)
