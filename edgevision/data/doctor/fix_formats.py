"""The per-format fixers: each turns one annotation file and its issues into a :class:`FileFix`.

- VOC: edit the XML tree, so fields the fixer does not know (pose, custom tags) survive;
- COCO: edit the JSON dict (unknown keys survive), drop annotations from the list;
- YOLO: rewrite the label lines.

Boxes are repaired with :func:`~.changes.repair_steps`, in the order
``boxes.judge_boxes`` judges them, so check and fix never disagree.
"""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from edgevision.core import issues as kinds
from edgevision.core.issues import Issue
from edgevision.data.doctor.boxes import describe_box
from edgevision.data.doctor.changes import (
    DROP_KINDS,
    DROPPED,
    FIXED,
    NOT_FIXED,
    Change,
    FileFix,
    FixContext,
    not_fixed,
    number_text,
    repair_steps,
    size_repair,
)
from edgevision.data.formats.common import read_json_file
from edgevision.data.formats.voc import parse_voc_xml
from edgevision.ops.boxes import cxcywh_to_xyxy, xywh_to_xyxy, xyxy_to_cxcywh, xyxy_to_xywh


def _edited(changes: list[Change]) -> bool:
    """Whether a file needs rewriting: refusals alone leave it byte-identical."""
    return any(change.action != NOT_FIXED for change in changes)


def _by_object(file_issues: list[Issue]) -> dict[int, list[Issue]]:
    grouped: dict[int, list[Issue]] = {}
    for issue in file_issues:
        if issue.object_index is not None:
            grouped.setdefault(issue.object_index, []).append(issue)
    return grouped


# ---------------------------------------------------------------------------------------------
# VOC: edit the XML tree, so tags the fixer does not know survive


def fix_voc(path: Path, file_issues: list[Issue], records: list, context: FixContext) -> FileFix:

    original = path.read_bytes()
    tree = parse_voc_xml(path)
    record = records[0] if records else None
    changes = _fix_voc_size(tree, path, file_issues, record, context)
    objects = tree.findall("object")
    size = context.size_for(record) if record is not None else None
    dropped = []
    for index, found in sorted(_by_object(file_issues).items()):
        if index >= len(objects):
            changes += [not_fixed(issue, "object not found in the file") for issue in found]
            continue
        object_changes = _fix_voc_object(objects[index], path, index, found, size, context)
        changes += object_changes
        if any(change.action == DROPPED for change in object_changes):
            dropped.append(objects[index])
    for element in dropped:
        remove_element(tree, element)
    changes += _fix_voc_file_notes(tree, path, file_issues, record)
    utf8 = any(issue.kind == kinds.XML_ENCODING for issue in file_issues)
    data = xml_bytes(tree, original, utf8) if _edited(changes) else None
    return FileFix(data, changes, len(objects), len(objects) - len(dropped))


def _fix_voc_file_notes(tree, path: Path, file_issues: list[Issue], record) -> list[Change]:
    """``<filename>`` set to the image file read; a non-UTF-8 file marked for UTF-8 output."""
    changes = []
    for issue in file_issues:
        if issue.kind == kinds.XML_ENCODING:
            changes.append(Change(path, issue.kind, FIXED, issue.reason.split(";")[0], "UTF-8"))
        elif issue.kind == kinds.FILENAME_MISMATCH and record is not None:
            element = _child(tree, "filename")
            before = f"<filename>{element.text or ''}"
            element.text = record.image_path.name
            changes.append(Change(path, issue.kind, FIXED, before, f"<filename>{element.text}"))
    return changes


def _fix_voc_size(tree, path, file_issues, record, context) -> list[Change]:
    size_kinds = (kinds.FLOAT_SIZE, kinds.MISSING_SIZE, kinds.SIZE_MISMATCH)
    found = sorted(
        (i for i in file_issues if i.kind in size_kinds), key=lambda i: size_kinds.index(i.kind)
    )
    changes = []
    for issue in found:
        if issue.kind == kinds.FLOAT_SIZE:
            changes += _integer_sizes(tree.find("size"), path)
            continue
        target = size_repair(record, context.info(record), issue.kind) if record else "no record"
        if isinstance(target, str):
            changes.append(not_fixed(issue, target))
            continue
        size = tree.find("size")
        before = (
            "no <size>"
            if size is None
            else "x".join(_text(size, tag) or "?" for tag in ("width", "height"))
        )
        _write_size(tree, *target)
        changes.append(Change(path, issue.kind, FIXED, before, f"{target[0]}x{target[1]}"))
    return changes


def _write_size(tree, width: int, height: int) -> None:
    """Set ``<size>``, creating it after ``<filename>`` (indented like its siblings) if missing."""
    size = tree.find("size")
    if size is None:
        indent = tree.text if tree.text and not tree.text.strip() else "\n  "
        size = ElementTree.Element("size")
        size.text, size.tail = indent + "  ", indent
        for tag, tail in (("width", "  "), ("height", "  "), ("depth", "")):
            ElementTree.SubElement(size, tag).tail = indent + tail
        anchor = tree.find("filename")
        tree.insert(0 if anchor is None else list(tree).index(anchor) + 1, size)
    _child(size, "width").text, _child(size, "height").text = str(width), str(height)
    if not _text(size, "depth"):
        _child(size, "depth").text = "3"


def _integer_sizes(size_element, path: Path) -> list[Change]:
    changes = []
    if size_element is None:
        return changes
    for tag in ("width", "height", "depth"):
        text = _text(size_element, tag)
        try:
            value = float(text)
        except (TypeError, ValueError):
            continue
        if text != str(int(round(value))):
            size_element.find(tag).text = str(int(round(value)))
            changes.append(
                Change(path, kinds.FLOAT_SIZE, FIXED, f"<{tag}>{text}", f"<{tag}>{round(value)}")
            )
    return changes


def _fix_voc_object(element, path, index, found, size, context) -> list[Change]:
    name = _text(element, "name") or ""
    drop = next((issue for issue in found if issue.kind in DROP_KINDS), None)
    if drop is not None:
        box = _voc_box(element)
        what = f"{name} {describe_box(box, 'voc') if box is not None else ''}".strip()
        return [Change(path, drop.kind, DROPPED, what, "", index)]
    changes = []
    present = {issue.kind: issue for issue in found}
    if kinds.CLASS_WHITESPACE in present and kinds.CLASS_CASE not in present:
        element.find("name").text = name.strip()
        changes.append(Change(path, kinds.CLASS_WHITESPACE, FIXED, repr(name), name.strip(), index))
    if kinds.CLASS_CASE in present:
        canonical = context.canonical.get(name.strip().casefold())
        if canonical is None:
            changes.append(
                not_fixed(present[kinds.CLASS_CASE], f"no canonical spelling of {name!r}")
            )
        else:
            element.find("name").text = canonical
            changes.append(Change(path, kinds.CLASS_CASE, FIXED, name, canonical, index))
    if kinds.SWAPPED_COORDS in present or kinds.BOX_OUTSIDE in present:
        changes += _fix_voc_box(element, path, index, present, size)
    return changes


def _fix_voc_box(element, path, index, present, size) -> list[Change]:
    box = _voc_box(element)
    if box is None:
        return [not_fixed(issue, "bndbox is not four numbers") for issue in present.values()]
    changes = []
    for kind, repaired in repair_steps(box, size):
        if kind in present:
            changes.append(
                Change(
                    path,
                    kind,
                    FIXED,
                    describe_box(box, "voc"),
                    describe_box(repaired, "voc"),
                    index,
                )
            )
            box = repaired
    bndbox = element.find("bndbox")
    for tag, value in zip(
        ("xmin", "ymin", "xmax", "ymax"), box + np.array([1, 1, 0, 0]), strict=True
    ):
        if float(bndbox.find(tag).text) != value:
            bndbox.find(tag).text = number_text(value)
    return changes


def _voc_box(element) -> np.ndarray | None:
    """The object's box in the 0-based xyxy frame (VOC ``xmin - 1``), or None when unreadable."""
    try:
        values = [
            float(element.find(f"bndbox/{tag}").text) for tag in ("xmin", "ymin", "xmax", "ymax")
        ]
    except (AttributeError, TypeError, ValueError):
        return None
    return np.array(values, dtype=np.float64) - np.array([1, 1, 0, 0])


def _child(parent, tag: str):
    found = parent.find(tag)
    return found if found is not None else ElementTree.SubElement(parent, tag)


def _text(parent, tag: str) -> str | None:
    found = parent.find(tag)
    return None if found is None or found.text is None else found.text.strip()


def remove_element(parent, element) -> None:
    """Remove ``element``; the last child hands its tail on, so the closing tag stays indented."""
    children = list(parent)
    position = children.index(element)
    if position == len(children) - 1 and position > 0:
        children[position - 1].tail = element.tail
    parent.remove(element)


def xml_bytes(tree, original: bytes, utf8: bool = False) -> bytes:
    """Serialise with the file's declared encoding (UTF-8 when none, or when ``utf8``: a file the
    doctor found not plain UTF-8), always with a declaration."""
    match = re.match(
        rb"\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)[\"']", original.lstrip(b"\xef\xbb\xbf")
    )
    encoding = match.group(1).decode("ascii") if match and not utf8 else "utf-8"
    try:
        codecs.lookup(encoding)
    except LookupError:
        encoding = "utf-8"
    data = ElementTree.tostring(tree, encoding=encoding, xml_declaration=True)
    return data if data.endswith(b"\n") else data + b"\n"


# ---------------------------------------------------------------------------------------------
# COCO: edit the JSON dict (unknown keys survive), drop annotations from the list


def fix_coco(path: Path, file_issues: list[Issue], records: list, context: FixContext) -> FileFix:
    data = read_json_file(path, "COCO JSON")
    annotations = data.get("annotations", [])
    changes = _fix_coco_sizes(data, path, file_issues, records, context)
    by_id = {record.image_id: record for record in records}
    object_issues = [issue for issue in file_issues if issue.path == path]
    dropped = set()
    for index, found in sorted(_by_object(object_issues).items()):
        annotation = annotations[index] if index < len(annotations) else None
        if not isinstance(annotation, dict):
            changes += [not_fixed(issue, "annotation not found in the file") for issue in found]
            continue
        record = by_id.get(annotation.get("image_id"))
        size = context.size_for(record) if record is not None else None
        object_changes = _fix_coco_object(annotation, path, index, found, size)
        changes += object_changes
        if any(change.action == DROPPED for change in object_changes):
            dropped.add(index)
    data["annotations"] = [a for i, a in enumerate(annotations) if i not in dropped]
    encoded = json.dumps(data, ensure_ascii=False).encode("utf-8") if _edited(changes) else None
    return FileFix(encoded, changes, len(annotations), len(annotations) - len(dropped))


def _fix_coco_sizes(data, path, file_issues, records, context) -> list[Change]:
    changes = []
    if any(issue.kind == kinds.FLOAT_SIZE for issue in file_issues):
        for j, entry in enumerate(data["images"]):
            for key in ("width", "height"):
                value = entry.get(key) if isinstance(entry, dict) else None
                if isinstance(value, float) and value > 0:
                    entry[key] = int(round(value))
                    changes.append(
                        Change(
                            path,
                            kinds.FLOAT_SIZE,
                            FIXED,
                            f"images[{j}].{key} {value}",
                            str(entry[key]),
                        )
                    )
    entries = {entry.get("id"): entry for entry in data["images"] if isinstance(entry, dict)}
    by_image = {record.image_path: record for record in records}
    for issue in file_issues:
        record = by_image.get(issue.path)
        if issue.kind not in (kinds.MISSING_SIZE, kinds.SIZE_MISMATCH) or record is None:
            continue
        target = size_repair(record, context.info(record), issue.kind)
        entry = entries.get(record.image_id)
        if isinstance(target, str) or entry is None:
            changes.append(
                not_fixed(issue, target if isinstance(target, str) else "image entry not found")
            )
            continue
        before = f"{entry.get('width')}x{entry.get('height')}"
        entry["width"], entry["height"] = target
        changes.append(Change(issue.path, issue.kind, FIXED, before, f"{target[0]}x{target[1]}"))
    return changes


def _fix_coco_object(annotation, path, index, found, size) -> list[Change]:
    drop = next((issue for issue in found if issue.kind in DROP_KINDS), None)
    if drop is not None:
        what = f"category {annotation.get('category_id')} bbox {annotation.get('bbox')}"
        return [Change(path, drop.kind, DROPPED, what, "", index)]
    present = {issue.kind: issue for issue in found}
    changes = []
    if kinds.CLASS_CASE in present:  # COCO names live once, in "categories": the user's call
        changes.append(not_fixed(present[kinds.CLASS_CASE], "rename the category in the JSON"))
    if kinds.SWAPPED_COORDS in present or kinds.BOX_OUTSIDE in present:
        box = xywh_to_xyxy(np.asarray(annotation["bbox"], dtype=np.float64))
        for kind, repaired in repair_steps(box, size):
            if kind in present:
                before, after = _bbox_text(box), _bbox_text(repaired)
                changes.append(Change(path, kind, FIXED, before, after, index))
                box = repaired
        annotation["bbox"] = [round(float(v), 4) for v in xyxy_to_xywh(box)]
    return changes


def _bbox_text(box: np.ndarray) -> str:
    return "bbox=[" + ", ".join(number_text(v) for v in xyxy_to_xywh(box)) + "]"


# ---------------------------------------------------------------------------------------------
# YOLO: rewrite the label lines


def fix_yolo(path: Path, file_issues: list[Issue], records: list, context: FixContext) -> FileFix:
    lines = path.read_text(encoding="utf-8").splitlines()
    record = records[0] if records else None
    size = context.size_for(record) if record is not None else None
    has_keypoints = record is not None and record.keypoints is not None
    by_line: dict[int, list[Issue]] = {}
    for issue in file_issues:
        by_line.setdefault(issue.line, []).append(issue)
    changes, dropped = [], set()
    for number, found in sorted(by_line.items(), key=lambda item: item[0] or 0):
        if number is None or not 0 < number <= len(lines) or record is None:
            changes += [not_fixed(issue, "line not found in the file") for issue in found]
            continue
        line_changes, lines[number - 1] = _fix_yolo_line(
            lines[number - 1], path, number, found, size, has_keypoints
        )
        changes += line_changes
        if any(change.action == DROPPED for change in line_changes):
            dropped.add(number)
    kept = [text for number, text in enumerate(lines, 1) if number not in dropped]
    data = "".join(f"{text}\n" for text in kept).encode("utf-8") if _edited(changes) else None
    count = sum(bool(text.strip()) for text in lines)
    return FileFix(data, changes, count, count - len(dropped))


def _fix_yolo_line(text, path, number, found, size, has_keypoints) -> tuple[list[Change], str]:
    """Changes for one label line and its new text (box fields rewritten, the rest kept)."""
    index = number - 1
    drop = next((issue for issue in found if issue.kind in DROP_KINDS), None)
    if drop is not None:
        return [Change(path, drop.kind, DROPPED, text.strip(), "", index)], text
    present = {issue.kind: issue for issue in found}
    values = text.split()
    if len(values) > 5 and not has_keypoints:
        return [not_fixed(issue, "polygon label: edit the points") for issue in found], text
    if size is None:
        return [not_fixed(issue, "image size unknown") for issue in found], text
    scale = np.array([size[0], size[1], size[0], size[1]], dtype=np.float64)
    box = cxcywh_to_xyxy(np.array(values[1:5], dtype=np.float64) * scale)
    changes = []
    for kind, repaired in repair_steps(box, size):
        if kind in present:
            before, after = describe_box(box, "yolo"), describe_box(repaired, "yolo")
            changes.append(Change(path, kind, FIXED, before, after, index))
            box = repaired
    values[1:5] = [f"{v:.6f}" for v in xyxy_to_cxcywh(box) / scale]
    return changes, " ".join(values)
