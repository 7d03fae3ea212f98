"""Fuzzing the COCO JSON reader and the doctor's check and fix paths (derandomized, seconds).

Invariant, as for the readers in ``test_fuzz_readers.py``: whatever the file holds, ``load_dataset``,
``check_dataset`` and ``fix_dataset`` return records / a report, or raise ``DataError`` naming the
file. Never another exception (a ``RecursionError`` from a deep JSON, a ``KeyError`` from a
category without a name), never a change to the user's files when a copy was asked for.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgevision.core.errors import DataError
from edgevision.data.doctor.check import check_dataset
from edgevision.data.doctor.fix import fix_dataset
from edgevision.data.formats import load_dataset
from tests.data.doctor.test_check import hash_tree
from tests.data.test_fuzz_readers import VALID_XML, _check_records

FUZZ = settings(max_examples=100, deadline=None, derandomize=True)
# Any JSON value, nested a few levels: what a broken exporter or a hostile file may hold.
JSON_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
VALID_COCO = {
    "images": [{"id": 1, "file_name": "0001.jpg", "width": 32, "height": 24}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 3, 18, 15], "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [1, 1, 31, 23], "iscrowd": 0},
    ],
    "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}],
}


def _coco_tree(root: Path, data: bytes) -> Path:
    (root / "annotations").mkdir(parents=True)
    (root / "images" / "train").mkdir(parents=True)
    cv2.imwrite(str(root / "images" / "train" / "0001.jpg"), np.full((24, 32, 3), 90, np.uint8))
    json_path = root / "annotations" / "instances_train.json"
    json_path.write_bytes(data)
    return json_path


def _read_check_fix(root: Path, json_path: Path) -> None:
    """Read, check and fix-to-a-copy; each either works or says DataError about this file."""
    allowed = {json_path.absolute(), *(p.absolute() for p in root.rglob("*.jpg"))}
    before = hash_tree(root)
    try:
        record_set, issues = load_dataset(root, "train")
        _check_records(record_set, issues, allowed | {root.absolute()})
    except DataError as error:
        assert error.path is not None
    for run in (
        lambda: check_dataset(root),
        lambda: fix_dataset(root, out=root.parent / "fixed"),
    ):
        try:
            run()
        except DataError as error:
            assert error.path is not None
    assert hash_tree(root) == before  # a copy was asked for: the user's files are untouched


@FUZZ
@given(key=st.sampled_from(["images", "annotations", "categories"]), value=JSON_VALUE)
def test_coco_with_any_value_in_a_top_level_key(key, value):
    data = dict(VALID_COCO, **{key: value})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "coco"
        _read_check_fix(root, _coco_tree(root, json.dumps(data).encode()))


@FUZZ
@given(
    where=st.sampled_from(["images", "annotations", "categories"]),
    field=st.sampled_from(["id", "file_name", "width", "bbox", "image_id", "category_id", "name"]),
    value=JSON_VALUE,
)
def test_coco_with_any_value_in_one_field(where, field, value):
    data = json.loads(json.dumps(VALID_COCO))
    data[where][0][field] = value
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "coco"
        _read_check_fix(root, _coco_tree(root, json.dumps(data).encode()))


@FUZZ
@given(st.binary(max_size=300))
def test_coco_arbitrary_bytes(data):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "coco"
        _read_check_fix(root, _coco_tree(root, data))


@pytest.mark.parametrize("key", ["images", "annotations", "categories"])
def test_coco_nested_100000_levels_is_a_data_error_naming_the_file(tmp_path, key):
    # Was RecursionError: maximum recursion depth exceeded while decoding a JSON array.
    deep = "[" * 100_000 + "]" * 100_000
    text = json.dumps(VALID_COCO).replace(f'"{key}": ', f'"{key}": {deep}, "_{key}": ', 1)
    json_path = _coco_tree(tmp_path / "coco", text.encode())
    for run in (
        lambda: load_dataset(tmp_path / "coco", "train"),
        lambda: check_dataset(tmp_path / "coco"),
        lambda: fix_dataset(tmp_path / "coco", out=tmp_path / "fixed"),
    ):
        with pytest.raises(DataError, match="nested too deeply") as caught:
            run()
        assert caught.value.path == json_path


@FUZZ
@given(
    position=st.integers(0, len(VALID_XML) - 1),
    insert=st.sampled_from([b"<", b"&", b"\x80", b"0", b"9" * 40, b" ", b"</object>", b"-"]),
)
def test_voc_check_and_fix_on_mutated_annotations(position, insert):
    xml = VALID_XML[:position] + insert + VALID_XML[position:]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "voc"
        (root / "Annotations").mkdir(parents=True)
        (root / "JPEGImages").mkdir()
        (root / "Annotations" / "0001.xml").write_bytes(xml)
        cv2.imwrite(str(root / "JPEGImages" / "0001.jpg"), np.full((24, 32, 3), 90, np.uint8))
        _read_check_fix(root, root / "Annotations" / "0001.xml")
