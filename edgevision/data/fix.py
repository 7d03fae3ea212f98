"""The data doctor's treatment: repair what can be repaired, drop what cannot, list every change.

``fix_dataset`` runs :func:`~edgevision.data.check.check_dataset` and edits the annotation files
the issues point at, so check and fix never disagree (both use ``check.judge_boxes``):

- repaired: float sizes -> integers, missing or wrong ``<size>`` -> the real image size (boxes
  kept), swapped corners -> swapped back, boxes outside the image -> clipped, class-name case ->
  the canonical spelling;
- dropped (and listed): zero-area boxes, duplicates, objects of unknown classes;
- not fixed (and listed): corrupt or empty annotations, missing or unreadable images, images
  without an annotation, EXIF rotation.

Nothing is edited in place unless asked: ``out=DIR`` writes a full copy (images hard-linked when
the file system allows, unchanged annotation files copied byte for byte), ``in_place=True`` keeps a
``.bak`` copy of every file it rewrites. Every write is atomic.

Formats: VOC XML is edited as a tree, so fields the fixer does not know (pose, custom tags) stay;
COCO JSON is edited as a dict; YOLO label lines are rewritten.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from ..errors import ConfigError
from ..fileio import atomic_write_bytes, backup_file
from ..ops.boxes import (
    clip_boxes,
    cxcywh_to_xyxy,
    order_corners,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_xywh,
)
from . import issues as kinds
from .check import (
    CheckReport,
    ImageInfo,
    check_dataset,
    describe_box,
    effective_size,
    rotated_view,
)
from .imageio import IMAGE_SUFFIXES
from .issues import Issue
from .records import ImageRecord

DROP_KINDS = (kinds.UNKNOWN_CLASS, kinds.ZERO_AREA, kinds.DUPLICATE_BOX)
REPAIR_KINDS = (
    kinds.FLOAT_SIZE,
    kinds.MISSING_SIZE,
    kinds.SIZE_MISMATCH,
    kinds.SWAPPED_COORDS,
    kinds.BOX_OUTSIDE,
    kinds.CLASS_CASE,
)
FIXED, DROPPED, NOT_FIXED = "fixed", "dropped", "not fixed"


@dataclass(frozen=True)
class Change:
    """One edit (or refusal): which file and object, what defect, what it was and what it became."""

    path: Path
    kind: str
    action: str  # FIXED, DROPPED or NOT_FIXED
    before: str = ""
    after: str = ""
    object_index: int | None = None

    def __str__(self) -> str:
        obj = "" if self.object_index is None else f" object {self.object_index}:"
        edit = f"{self.before} -> {self.after}" if self.action == FIXED else self.before
        return f"{self.path}:{obj} {self.kind} {self.action}: {edit}"

    def to_dict(self) -> dict:
        return {**asdict(self), "path": str(self.path)}


@dataclass
class FixReport:
    """What ``fix_dataset`` did.

    Attributes:
        changes: every repair, drop and refusal, by file then object.
        source: the dataset that was checked.
        data: the fixed dataset to use from now on (the copy under ``out``, or ``source``).
        in_place: whether the source files were rewritten (each with a backup).
        written: annotation files rewritten (in the copy, or in place).
        backups: backup files made by an in-place fix.
        objects_in, objects_out: objects in the rewritten files before and after; the difference is
            exactly the number of DROPPED changes.
        check: the report the fix worked from.
    """

    changes: list[Change]
    source: Path
    data: Path
    in_place: bool
    written: list[Path] = field(default_factory=list)
    backups: list[Path] = field(default_factory=list)
    objects_in: int = 0
    objects_out: int = 0
    check: CheckReport | None = field(default=None, repr=False)

    def summary(self) -> dict[str, int]:
        """Action ("fixed", "dropped", "not fixed") -> count."""
        counts = {FIXED: 0, DROPPED: 0, NOT_FIXED: 0}
        for change in self.changes:
            counts[change.action] += 1
        return counts

    def format_text(self) -> str:
        """One line per change, then the totals and where the fixed data is."""
        root = self.check.root if self.check is not None else self.source
        lines = [str(_relative(change, root)) for change in self.changes]
        counts = self.summary()
        where = f"in place ({len(self.backups)} backups)" if self.in_place else f"to {self.data}"
        lines += [
            "",
            f"{counts[FIXED]} fixed, {counts[DROPPED]} dropped, {counts[NOT_FIXED]} not fixed; "
            f"{len(self.written)} annotation files rewritten {where}",
            f"objects in rewritten files: {self.objects_in} before, {self.objects_out} after "
            f"({self.objects_in - self.objects_out} dropped, each listed above)",
        ]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "source": str(self.source),
            "data": str(self.data),
            "in_place": self.in_place,
            "summary": self.summary(),
            "objects_in": self.objects_in,
            "objects_out": self.objects_out,
            "written": [str(p) for p in self.written],
            "backups": [str(p) for p in self.backups],
            "changes": [change.to_dict() for change in self.changes],
        }


def _relative(change: Change, root: Path) -> Change:
    try:
        path = change.path.relative_to(root)
    except ValueError:
        return change
    return Change(
        path, change.kind, change.action, change.before, change.after, change.object_index
    )


@dataclass
class FileFix:
    """The new bytes of one annotation file (None: unchanged), its changes and object counts."""

    data: bytes | None
    changes: list[Change]
    objects_in: int = 0
    objects_out: int = 0


@dataclass(frozen=True)
class FixContext:
    """What every format fixer needs from the check: records, image facts, class spellings."""

    report: CheckReport
    records: dict[Path, list[ImageRecord]]  # annotation file -> its records
    canonical: dict[str, str]  # casefolded class name -> the spelling to keep

    def size_for(self, record: ImageRecord) -> tuple[int, int] | None:
        return effective_size(record, self.report.images.get(record.image_path))

    def info(self, record: ImageRecord) -> ImageInfo | None:
        return self.report.images.get(record.image_path)


def size_repair(record: ImageRecord, info: ImageInfo | None, kind: str) -> tuple[int, int] | str:
    """The (width, height) to write for a size issue, or why it cannot be repaired."""
    if info is None or not info.readable:
        return "the image is missing or unreadable, so its size is unknown"
    if kind == kinds.SIZE_MISMATCH and rotated_view((record.width, record.height), info):
        return "the annotation describes the EXIF-rotated view; bake the rotation in instead"
    return info.width, info.height


def number_text(value: float) -> str:
    """Integers as integers (what VOC tools expect), other values with up to 4 decimals."""
    value = round(float(value), 4)
    return str(int(value)) if value == int(value) else repr(value)


# ---------------------------------------------------------------------------------------------
# The whole dataset


def fix_dataset(
    data: str | Path,
    out: str | Path | None = None,
    in_place: bool = False,
    deep: bool = False,
    workers: int = 2,
    class_names: list[str] | None = None,
    case: str = "first",
    report: CheckReport | None = None,
) -> FixReport:
    """Check ``data``, then write a repaired copy to ``out`` or repair it in place with backups.

    Args:
        data: VOC root, COCO JSON, or data YAML.
        out: folder for the fixed copy (must be empty or new, and outside the dataset).
        in_place: rewrite the dataset's own files instead, each after a ``.bak`` backup.
        deep, workers, class_names, case: as in :func:`check_dataset`.
        report: a check already made of ``data`` with the same options (saves re-checking).

    Raises:
        ConfigError: neither or both of ``out`` and ``in_place``, or an unusable ``out`` folder.
    """
    if (out is None) == (not in_place):
        raise ConfigError(
            "fix needs exactly one target: out=DIR (--fix --out DIR) writes a fixed copy, "
            "in_place=True (--fix --in-place) rewrites the files after backing them up"
        )
    report = report or check_dataset(data, deep, workers, class_names, case)
    home = dataset_home(data, report)
    if out is not None:
        _check_out_folder(Path(out), home)
    fixes, changes = plan_fixes(report)
    edits = {path: fix.data for path, fix in fixes.items() if fix.data is not None}
    result = FixReport(
        changes=sorted(changes, key=_change_order),
        source=Path(data),
        data=Path(data) if in_place else Path(out) / _relative_to(Path(data), home),
        in_place=in_place,
        objects_in=sum(fix.objects_in for fix in fixes.values()),
        objects_out=sum(fix.objects_out for fix in fixes.values()),
        check=report,
    )
    if in_place:
        result.written, result.backups = _write_in_place(edits)
    else:
        result.written = _write_copy(home, Path(out), edits)
        result.written += _retarget_yaml(Path(data), home, Path(out))
    return result


def _change_order(change: Change) -> tuple:
    return (str(change.path), -1 if change.object_index is None else change.object_index)


def _relative_to(path: Path, home: Path) -> Path:
    return path.resolve().relative_to(home)


def dataset_home(data: str | Path, report: CheckReport) -> Path:
    """The folder holding the whole dataset (annotations and images): what ``out`` copies."""
    data = Path(data).resolve()
    start = data if data.is_dir() else data.parent
    return Path(os.path.commonpath([start, Path(report.root).resolve()]))


def _check_out_folder(out: Path, home: Path) -> None:
    out = out.resolve()
    if out == home or home in out.parents or out in home.parents:
        raise ConfigError(f"--out {out} overlaps the dataset {home}; choose a separate folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out} exists and is not empty; choose a new or empty folder")


def plan_fixes(report: CheckReport) -> tuple[dict[Path, FileFix], list[Change]]:
    """New contents of every annotation file to rewrite, and every change (incl. refusals)."""
    context = _context(report)
    grouped, changes = _group_by_file(report, context)
    fix_file = {"voc": _fix_voc, "coco": _fix_coco, "yolo": _fix_yolo}[report.format]
    fixes = {}
    for path, file_issues in grouped.items():
        fixes[path] = fix_file(path, file_issues, context.records.get(path, []), context)
        changes += fixes[path].changes
    return fixes, changes


def _context(report: CheckReport) -> FixContext:
    records: dict[Path, list[ImageRecord]] = {}
    for record in report.record_set.records if report.record_set else []:
        records.setdefault(record.annotation_path, []).append(record)
    names = report.record_set.class_names if report.record_set else []
    canonical = {name.casefold(): name for name in reversed(names)}
    return FixContext(report, records, canonical)


def _group_by_file(report: CheckReport, context: FixContext) -> tuple[dict, list[Change]]:
    """Fixable issues by the annotation file to edit; a NOT_FIXED change for every other defect."""
    owner_of_image = {
        record.image_path: path for path, records in context.records.items() for record in records
    }
    grouped: dict[Path, list[Issue]] = {}
    refused = []
    for issue in report.issues:
        if issue.kind == kinds.NO_OBJECTS:
            continue
        owner = issue.path if issue.path in context.records else owner_of_image.get(issue.path)
        if issue.kind in REPAIR_KINDS + DROP_KINDS and owner is not None:
            grouped.setdefault(owner, []).append(issue)
        else:
            refused.append(not_fixed(issue))
    return grouped, refused


def _edited(changes: list[Change]) -> bool:
    """Whether a file needs rewriting: refusals alone leave it byte-identical."""
    return any(change.action != NOT_FIXED for change in changes)


def not_fixed(issue: Issue, reason: str | None = None) -> Change:
    text = reason or f"{issue.reason}{f'; {issue.hint}' if issue.hint else ''}"
    return Change(issue.path, issue.kind, NOT_FIXED, text, "", issue.object_index)


def _write_in_place(edits: dict[Path, bytes]) -> tuple[list[Path], list[Path]]:
    written, backups = [], []
    for path, data in sorted(edits.items()):
        backups.append(backup_file(path))
        written.append(atomic_write_bytes(path, data))
    return written, backups


def _write_copy(home: Path, out: Path, edits: dict[Path, bytes]) -> list[Path]:
    """Copy the dataset tree to ``out``: images hard-linked, edited files written, rest copied."""
    edits = {Path(path).resolve(): data for path, data in edits.items()}
    written = []
    for folder, _, names in os.walk(home):
        (out / Path(folder).relative_to(home)).mkdir(parents=True, exist_ok=True)
        for name in sorted(names):
            source = Path(folder, name)
            target = out / source.relative_to(home)
            if source in edits:
                written.append(atomic_write_bytes(target, edits[source]))
            elif source.suffix.lower() in IMAGE_SUFFIXES:
                _link_or_copy(source, target)
            else:
                shutil.copy2(source, target)
    return written


def _retarget_yaml(data: Path, home: Path, out: Path) -> list[Path]:
    """Point a copied data YAML's absolute ``path:`` at the copy, not at the source dataset."""
    from .formats.yolo import find_data_yaml

    source = data if data.is_file() else find_data_yaml(data)
    if source is None or source.suffix.lower() not in (".yaml", ".yml"):
        return []
    target = out / _relative_to(source, home)
    text = target.read_text(encoding="utf-8")
    match = re.search(r"^path:[ \t]*(.+?)[ \t]*$", text, re.MULTILINE)
    value = match.group(1).strip("'\"") if match else ""
    if not os.path.isabs(value) or home not in [
        Path(value).resolve(),
        *Path(value).resolve().parents,
    ]:
        return []
    moved = out / Path(value).resolve().relative_to(home)
    # json.dumps writes a double-quoted string YAML reads back unchanged.
    text = text[: match.start(1)] + json.dumps(str(moved)) + text[match.end(1) :]
    return [atomic_write_bytes(target, text.encode("utf-8"))]


def _link_or_copy(source: Path, target: Path) -> None:
    # Images are never edited, so sharing the bytes is safe and saves gigabytes.
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


# ---------------------------------------------------------------------------------------------
# VOC: edit the XML tree, so tags the fixer does not know survive


def _by_object(file_issues: list[Issue]) -> dict[int, list[Issue]]:
    grouped: dict[int, list[Issue]] = {}
    for issue in file_issues:
        if issue.object_index is not None:
            grouped.setdefault(issue.object_index, []).append(issue)
    return grouped


def _fix_voc(path: Path, file_issues: list[Issue], records: list, context: FixContext) -> FileFix:
    from .formats.voc import parse_voc_xml

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
        _remove(tree, element)
    data = _xml_bytes(tree, original) if _edited(changes) else None
    return FileFix(data, changes, len(objects), len(objects) - len(dropped))


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


def repair_steps(box: np.ndarray, size: tuple[int, int] | None) -> list[tuple[str, np.ndarray]]:
    """(kind, box after the step) for swapping then clipping one (4,) xyxy box, as check judges.

    An unknown size clips only negative coordinates, like ``check.judge_boxes``.
    """
    width, height = (np.inf, np.inf) if size is None else size
    ordered = order_corners(box)
    return [
        (kinds.SWAPPED_COORDS, ordered),
        (kinds.BOX_OUTSIDE, clip_boxes(ordered, width, height)),
    ]


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


def _remove(parent, element) -> None:
    """Remove ``element``; the last child hands its tail on, so the closing tag stays indented."""
    children = list(parent)
    position = children.index(element)
    if position == len(children) - 1 and position > 0:
        children[position - 1].tail = element.tail
    parent.remove(element)


def _xml_bytes(tree, original: bytes) -> bytes:
    """Serialise with the file's declared encoding (UTF-8 when none), always with a declaration."""
    match = re.match(
        rb"\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)[\"']", original.lstrip(b"\xef\xbb\xbf")
    )
    encoding = match.group(1).decode("ascii") if match else "utf-8"
    try:
        codecs.lookup(encoding)
    except LookupError:
        encoding = "utf-8"
    data = ElementTree.tostring(tree, encoding=encoding, xml_declaration=True)
    return data if data.endswith(b"\n") else data + b"\n"


# ---------------------------------------------------------------------------------------------
# COCO: edit the JSON dict (unknown keys survive), drop annotations from the list


def _fix_coco(path: Path, file_issues: list[Issue], records: list, context: FixContext) -> FileFix:
    data = json.loads(path.read_text(encoding="utf-8"))
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


def _fix_yolo(path: Path, file_issues: list[Issue], records: list, context: FixContext) -> FileFix:
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
