"""Reading a whole dataset for the doctor: each annotation file once, each object's file position.

Object positions are the user's: the ``<object>`` index in a VOC file, the index in a COCO file's
``annotations`` list, the 0-based line of a YOLO label file (``line`` holds the 1-based number).
Readers leave out objects they cannot use, so positions are stored per record as
``extra["object_indices"]`` (:func:`object_indices` reads them back).
"""

from __future__ import annotations

from pathlib import Path

from edgevision.core import issues as kinds
from edgevision.core.issues import Issue
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.formats import detect_format, list_splits, load_dataset, remap_classes
from edgevision.data.formats.common import read_json_file
from edgevision.data.formats.yolo import find_data_yaml, load_yaml

# Issue kinds with which a reader reports an object it left out of the record.
_SKIPPING_KINDS = (kinds.CORRUPT_ANNOTATION, kinds.UNKNOWN_CLASS, kinds.BAD_KEYPOINTS)


def object_indices(record: ImageRecord) -> list[int]:
    """Position in the annotation file of each object in ``record``.

    Readers leave out objects they cannot use (reporting each), so record object ``k`` is not
    always the ``k``-th object of the file; :func:`read_whole_dataset` stores the true positions
    as ``extra["object_indices"]``.
    """
    indices = record.extra.get("object_indices")
    return list(range(record.num_objects)) if indices is None else [int(i) for i in indices]


def read_whole_dataset(
    data: str | Path, class_names: list[str] | None = None, case: str = "majority"
) -> tuple[RecordSet, list[Issue]]:
    """All records of a dataset, each annotation file read once, plus the readers' issues.

    VOC reads every file in ``Annotations/`` and YOLO merges its splits (``load_dataset``'s "all");
    COCO reads each split's JSON. Every record gets ``extra["object_indices"]``: the position of
    each object in its file (VOC ``<object>`` index, COCO ``annotations`` index, YOLO 0-based line),
    so reports and fixes point at the object the user wrote.
    """

    if _inner_format(data) != "coco":
        record_set, found = load_dataset(data, "all", class_names=class_names, case=case)
        if record_set.format == "yolo":
            found = _yolo_positions(record_set, found)
        else:
            _voc_positions(record_set, found)
        return record_set, found
    record_set, found = _read_coco_splits(data, case)
    found += _coco_positions(record_set, found)
    if class_names is not None:
        record_set, dropped = _remap_with_positions(record_set, class_names, case)
        found += dropped
    return record_set, found


def _inner_format(data: str | Path) -> str:
    """The format of ``data``, looking inside an edgevision data YAML."""

    kind = detect_format(data)
    if kind != "edgevision":
        return kind
    path = Path(data)
    return str(load_yaml(find_data_yaml(path) if path.is_dir() else path).get("format"))


def _read_coco_splits(data: str | Path, case: str) -> tuple[RecordSet, list[Issue]]:
    """Every COCO split file, merged onto one class list (the union, in first-seen order)."""

    parts = [load_dataset(data, split, case=case) for split in list_splits(data)]
    names = list(dict.fromkeys(name for part, _ in parts for name in part.class_names))
    records, found, seen = [], [], set()
    for part, part_issues in parts:
        part, _ = remap_classes(part, names, "first")  # exact names: drops nothing
        found += part_issues
        for record in part.records:
            if (record.image_path, record.annotation_path) not in seen:
                seen.add((record.image_path, record.annotation_path))
                records.append(record)
    merged = parts[0][0].with_records(records, "all")
    merged.class_names = names
    return merged, found


def _skipped(found: list[Issue], position: str = "object_index") -> dict[Path, set[int]]:
    """Per file, positions of the objects a reader reported and left out of the record."""
    skipped: dict[Path, set[int]] = {}
    for issue in found:
        if issue.kind in _SKIPPING_KINDS and getattr(issue, position) is not None:
            skipped.setdefault(issue.path, set()).add(getattr(issue, position))
    return skipped


def _set_positions(record: ImageRecord, positions: list[int]) -> None:
    if len(positions) == record.num_objects:  # otherwise the reader changed; keep 0..N-1
        record.extra["object_indices"] = positions


def _voc_positions(record_set: RecordSet, found: list[Issue]) -> None:
    skipped_by_file = _skipped(found)
    for record in record_set.records:
        skipped = skipped_by_file.get(record.annotation_path, set())
        positions = [i for i in range(record.num_objects + len(skipped)) if i not in skipped]
        _set_positions(record, positions[: record.num_objects])


def _coco_positions(record_set: RecordSet, found: list[Issue]) -> list[Issue]:
    """Index into the JSON's ``annotations`` list of every object (one JSON load per file).

    Also returns a FLOAT_SIZE issue per file whose image sizes are JSON floats (``1920.0``): the
    reader accepts integral floats, but other tools reading the file may not.
    """
    by_file: dict[Path, list[ImageRecord]] = {}
    for record in record_set.records:
        by_file.setdefault(record.annotation_path, []).append(record)
    extra_issues = []
    for json_path, records in by_file.items():
        data = read_json_file(json_path, "COCO JSON")
        skipped = {
            issue.object_index
            for issue in found
            if issue.path == json_path and issue.reason.startswith("annotations[")
        }
        by_image: dict = {}
        for index, annotation in enumerate(data.get("annotations", [])):
            if isinstance(annotation, dict) and index not in skipped:
                by_image.setdefault(annotation.get("image_id"), []).append(index)
        for record in records:
            _set_positions(record, by_image.get(record.image_id, []))
        extra_issues += _coco_float_sizes(data.get("images", []), json_path)
    return extra_issues


def _coco_float_sizes(images: list, json_path: Path) -> list[Issue]:
    floats = [
        index
        for index, entry in enumerate(images)
        if isinstance(entry, dict)
        and any(isinstance(entry.get(key), float) for key in ("width", "height"))
    ]
    if not floats:
        return []
    entry = images[floats[0]]
    reason = (
        f"{len(floats)} images have width/height written as floats "
        f"(images[{floats[0]}]: {entry.get('width')} x {entry.get('height')})"
    )
    return [Issue(kinds.FLOAT_SIZE, json_path, reason, "--fix writes them as integers")]


def _remap_with_positions(
    record_set: RecordSet, class_names: list[str], case: str
) -> tuple[RecordSet, list[Issue]]:
    """``remap_classes`` one record at a time, so each UNKNOWN_CLASS names its file position."""

    records, found = [], []
    for record in record_set.records:
        positions = object_indices(record)
        remapped, dropped = remap_classes(record_set.with_records([record]), class_names, case)
        kept = [p for k, p in enumerate(positions) if k not in {i.object_index for i in dropped}]
        found += [
            Issue(i.kind, i.path, i.reason, i.hint, positions[i.object_index], i.line)
            for i in dropped
        ]
        records.append(remapped.records[0])
        _set_positions(records[-1], kept)
    result = record_set.with_records(records)
    result.class_names = list(class_names)
    return result, found


def _yolo_positions(record_set: RecordSet, found: list[Issue]) -> list[Issue]:
    """0-based line of every object; reader issues that counted objects get their line too."""
    skipped_by_file = _skipped(found, "line")
    usable_lines: dict[Path, list[int]] = {}
    for record in record_set.records:
        if record.annotation_path.is_file():
            lines = record.annotation_path.read_text(encoding="utf-8").splitlines()
            skipped = skipped_by_file.get(record.annotation_path, set())
            usable_lines[record.annotation_path] = [
                n for n, text in enumerate(lines, 1) if text.strip() and n not in skipped
            ]
    out = []
    for issue in found:
        usable = usable_lines.get(issue.path, [])
        if (
            issue.line is None
            and issue.object_index is not None
            and issue.object_index < len(usable)
        ):
            line = usable[issue.object_index]  # remap_classes counted the record's objects
            issue = Issue(issue.kind, issue.path, issue.reason, issue.hint, line - 1, line)
        out.append(issue)
    dropped_by_file = _skipped(out, "line")
    for record in record_set.records:
        usable = usable_lines.get(record.annotation_path, [])
        dropped = dropped_by_file.get(record.annotation_path, set())
        _set_positions(record, [n - 1 for n in usable if n not in dropped])
    return out
