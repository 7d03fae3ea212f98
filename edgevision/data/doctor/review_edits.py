"""The per-format editors of :mod:`.apply_review`: one annotation file and its accepted rows in,
its new bytes and the change log out (a :class:`~.changes.FileFix`, as the fixer returns).

- VOC: edit the XML tree (unknown tags survive); an added object is written by the VOC writer
  (:func:`~edgevision.data.formats.voc_write.record_to_xml`) and appended, indented like its
  siblings;
- COCO: edit the JSON dict; an added annotation gets the next free id and the category id of
  its class (a class the file has no category for is refused: the split files of one dataset
  may list different categories); a new box also resets ``area`` unless the annotation has a
  segmentation;
- YOLO: rewrite label lines; an added object is a new line (not for pose labels, which would
  need keypoints), and a polygon line's box cannot be replaced (edit the points instead).

Positions are file positions (VOC ``<object>`` index, COCO ``annotations`` index, YOLO 0-based
line); added objects are reported at their position in the new file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import defusedxml.ElementTree as SafeElementTree
import numpy as np

from edgevision.core.records import ImageRecord
from edgevision.data.doctor.boxes import describe_box
from edgevision.data.doctor.changes import DROPPED, FIXED, NOT_FIXED, Change, FileFix, number_text
from edgevision.data.doctor.fix_formats import remove_element, xml_bytes
from edgevision.data.doctor.review_csv import ReviewRow
from edgevision.data.formats.voc import parse_voc_xml, record_to_xml
from edgevision.ops.boxes import box_area, xyxy_to_cxcywh, xyxy_to_xywh

ADDED = "added"
# What each review kind does to its object.
ACTIONS = {
    "missing": "add",
    "wrong_class": "relabel",
    "loose": "rebox",
    "duplicate": "remove",
    "unsupported": "remove",
}


@dataclass(frozen=True)
class Edit:
    """One accepted row matched to its record; ``position`` is the file position (None: add)."""

    row: ReviewRow
    record: ImageRecord
    position: int | None


def edit_file(path: Path, format: str, edits: list[Edit], class_names: list[str]) -> FileFix:
    """Apply ``edits`` to one annotation file ("voc", "coco" or "yolo")."""
    editor = {"voc": _edit_voc, "coco": _edit_coco, "yolo": _edit_yolo}[format]
    return editor(path, edits, class_names)


def _box(row_box) -> np.ndarray:
    return np.asarray(row_box, dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# VOC


def _edit_voc(path: Path, edits: list[Edit], class_names: list[str]) -> FileFix:
    original = path.read_bytes()
    tree = parse_voc_xml(path)
    objects = tree.findall("object")
    changes, removed, added = [], [], []
    for edit in edits:
        action, row = ACTIONS[edit.row.kind], edit.row
        if action == "add":
            added.append(edit)
            continue
        element = objects[edit.position]
        name = (element.findtext("name") or "").strip()
        if action == "relabel":
            element.find("name").text = row.suggested_class
            changes.append(Change(path, row.kind, FIXED, name, row.suggested_class, edit.position))
        elif action == "rebox":
            before, after = (
                describe_box(_box(row.box), "voc"),
                describe_box(_box(row.suggested_box), "voc"),
            )
            _set_voc_box(element, _box(row.suggested_box))
            changes.append(Change(path, row.kind, FIXED, before, after, edit.position))
        else:
            removed.append(element)
            what = f"{name} {describe_box(_box(row.box), 'voc')}"
            changes.append(Change(path, row.kind, DROPPED, what, "", edit.position))
    for element in removed:
        remove_element(tree, element)
    kept = len(objects) - len(removed)
    for offset, edit in enumerate(added):
        _append_object(tree, _voc_object(edit, class_names))
        what = f"{edit.row.suggested_class} {describe_box(_box(edit.row.suggested_box), 'voc')}"
        changes.append(Change(path, edit.row.kind, ADDED, "", what, kept + offset))
    return FileFix(xml_bytes(tree, original), changes, len(objects), kept + len(added))


def _set_voc_box(element, box: np.ndarray) -> None:
    """Write an xyxy box into ``<bndbox>`` in VOC's 1-based convention (``xmin = x0 + 1``)."""
    bndbox = element.find("bndbox")
    for tag, value in zip(
        ("xmin", "ymin", "xmax", "ymax"), box + np.array([1, 1, 0, 0]), strict=True
    ):
        bndbox.find(tag).text = number_text(value)


def _voc_object(edit: Edit, class_names: list[str]):
    """The ``<object>`` the VOC writer writes for the suggested class and box."""
    record = edit.record
    single = ImageRecord(
        record.image_path, record.width, record.height, [edit.row.suggested_box], [0]
    )
    document = record_to_xml(single, [edit.row.suggested_class])
    return SafeElementTree.fromstring(document).find("object")


def _append_object(tree, element) -> None:
    """Append ``element`` after the last child, indented like the other children."""
    children = list(tree)
    indent = tree.text if tree.text and not tree.text.strip() else "\n  "
    element.tail = children[-1].tail if children else "\n"
    if children:
        children[-1].tail = indent
    tree.append(element)


# ---------------------------------------------------------------------------------------------
# COCO


def _edit_coco(path: Path, edits: list[Edit], class_names: list[str]) -> FileFix:
    data = json.loads(path.read_text(encoding="utf-8"))
    annotations = data.get("annotations", [])
    category_of = {c["name"]: c["id"] for c in data.get("categories", []) if isinstance(c, dict)}
    changes, removed, added = [], set(), []
    for edit in edits:
        action, row = ACTIONS[edit.row.kind], edit.row
        if action in ("add", "relabel") and row.suggested_class not in category_of:
            reason = f"no category {row.suggested_class!r} in this file: add it to categories"
            changes.append(Change(path, row.kind, NOT_FIXED, reason, "", edit.position))
            continue
        if action == "add":
            added.append(edit)
            continue
        annotation = annotations[edit.position]
        if action == "relabel":
            annotation["category_id"] = category_of[row.suggested_class]
            changes.append(
                Change(path, row.kind, FIXED, row.class_name, row.suggested_class, edit.position)
            )
        elif action == "rebox":
            before = f"bbox={annotation.get('bbox')}"
            annotation["bbox"] = _xywh(row.suggested_box)
            if not annotation.get("segmentation"):
                annotation["area"] = round(float(box_area(_box(row.suggested_box))), 4)
            changes.append(
                Change(path, row.kind, FIXED, before, f"bbox={annotation['bbox']}", edit.position)
            )
        else:
            removed.add(edit.position)
            what = f"{row.class_name} bbox={annotation.get('bbox')}"
            changes.append(Change(path, row.kind, DROPPED, what, "", edit.position))
    kept = [a for i, a in enumerate(annotations) if i not in removed]
    next_id = max(
        (a["id"] for a in kept if isinstance(a, dict) and isinstance(a.get("id"), int)), default=0
    )
    for offset, edit in enumerate(added):
        kept.append(_coco_annotation(edit, next_id + offset + 1, category_of))
        what = f"{edit.row.suggested_class} bbox={kept[-1]['bbox']}"
        changes.append(Change(path, edit.row.kind, ADDED, "", what, len(kept) - 1))
    if all(change.action == NOT_FIXED for change in changes):
        return FileFix(None, changes, len(annotations), len(annotations))
    data["annotations"] = kept
    encoded = json.dumps(data, ensure_ascii=False).encode("utf-8")
    return FileFix(encoded, changes, len(annotations), len(kept))


def _xywh(box) -> list[float]:
    return [round(float(v), 4) for v in xyxy_to_xywh(_box(box))]


def _coco_annotation(edit: Edit, annotation_id: int, category_of: dict) -> dict:
    box = _box(edit.row.suggested_box)
    return {
        "id": annotation_id,
        "image_id": edit.record.image_id,
        "category_id": category_of[edit.row.suggested_class],
        "bbox": _xywh(box),
        "area": round(float(box_area(box)), 4),
        "iscrowd": 0,
    }


# ---------------------------------------------------------------------------------------------
# YOLO


def _edit_yolo(path: Path, edits: list[Edit], class_names: list[str]) -> FileFix:
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    changes, removed, added = [], set(), []
    for edit in edits:
        action, row, number = ACTIONS[edit.row.kind], edit.row, edit.position
        if action == "add":
            refusal = _yolo_add_refusal(edit)
            if refusal is None:
                added.append(edit)
            else:
                changes.append(Change(path, row.kind, NOT_FIXED, refusal))
            continue
        values = lines[number].split()
        if action == "relabel":
            values[0] = str(class_names.index(row.suggested_class))
            lines[number] = " ".join(values)
            changes.append(
                Change(path, row.kind, FIXED, row.class_name, row.suggested_class, number)
            )
        elif action == "rebox" and len(values) > 5 and edit.record.keypoints is None:
            reason = f"line {number + 1} is a polygon: edit its points in an annotation tool"
            changes.append(Change(path, row.kind, NOT_FIXED, reason, "", number))
        elif action == "rebox":
            values[1:5] = _yolo_box(row.suggested_box, edit.record)
            lines[number] = " ".join(values)
            before, after = (
                describe_box(_box(row.box), "yolo"),
                describe_box(_box(row.suggested_box), "yolo"),
            )
            changes.append(Change(path, row.kind, FIXED, before, after, number))
        else:
            removed.add(number)
            changes.append(Change(path, row.kind, DROPPED, lines[number].strip(), "", number))
    kept = [text for number, text in enumerate(lines) if number not in removed]
    count_in = sum(bool(text.strip()) for text in lines)
    for edit in added:
        label = class_names.index(edit.row.suggested_class)
        kept.append(" ".join([str(label), *_yolo_box(edit.row.suggested_box, edit.record)]))
        what = f"{edit.row.suggested_class} {describe_box(_box(edit.row.suggested_box), 'yolo')}"
        changes.append(Change(path, edit.row.kind, ADDED, "", what, len(kept) - 1))
    if not any(change.action != NOT_FIXED for change in changes):
        return FileFix(None, changes, count_in, count_in)
    data = "".join(f"{text}\n" for text in kept).encode("utf-8")
    return FileFix(data, changes, count_in, count_in - len(removed) + len(added))


def _yolo_add_refusal(edit: Edit) -> str | None:
    if edit.record.keypoints is not None:
        return "pose labels need keypoints: add the object in an annotation tool"
    if min(edit.record.width, edit.record.height) <= 0:
        return "image size unknown; YOLO boxes are normalised by it"
    return None


def _yolo_box(box, record: ImageRecord) -> list[str]:
    scale = np.array([record.width, record.height, record.width, record.height], dtype=np.float64)
    return [f"{v:.6f}" for v in xyxy_to_cxcywh(_box(box)) / scale]
