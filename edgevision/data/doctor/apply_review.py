"""Applying an accepted label-review list: the rows a user marked ``accept=yes``, and only those.

``label_review.csv`` (schema: :mod:`.review_csv`) lists suspected label problems; the user
writes yes/y/true/1 in ``accept`` for the ones to apply. :func:`apply_review` then edits the
annotation files the way ``--fix`` does (same targets, same writers, same change log):

- ``missing`` -> add an object with the suggested class and box;
- ``wrong_class`` -> set the object's class to the suggested one;
- ``loose`` -> replace the object's box with the suggested one;
- ``duplicate``, ``unsupported`` -> remove the object.

A row is applied only while it still describes the file: its image must be found (by its path
relative to the dataset root, matched on the trailing path parts), its object must still have the
class and box written in the row (within 0.02 px), a suggested class must be one of the
dataset's classes, and a missing object must not be annotated already (same class, IoU >= 0.9)
nor added by an earlier row. Every other row is reported as "not fixed", with the CSV line and
the reason, and changes nothing. When rows disagree about one object, removal wins and the first row of each kind of
edit wins; the others are reported. Positions in the change log are file positions (VOC
``<object>`` index, COCO ``annotations`` index, YOLO 0-based line), as in the fix report.

Targets, as for ``fix_dataset``: ``out=DIR`` writes a full copy (images hard-linked, unchanged
files copied byte for byte), ``in_place=True`` rewrites the touched files after a ``.bak`` backup.
Run ``--fix`` first, not in the same pass: the fix drops objects, which moves the object
indices the review list names. The per-format editors live in :mod:`.review_edits`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from edgevision.core.errors import ConfigError
from edgevision.core.fileio import atomic_write_bytes
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.doctor.changes import DROPPED, FIXED, NOT_FIXED, Change, FileFix
from edgevision.data.doctor.check import CheckReport, check_dataset
from edgevision.data.doctor.fix import (
    check_out_folder,
    dataset_home,
    retarget_yaml,
    write_copy,
    write_in_place,
)
from edgevision.data.doctor.read_all import object_indices
from edgevision.data.doctor.review_csv import ReviewRow, format_box, read_review_rows
from edgevision.data.doctor.review_edits import ADDED, Edit, edit_file
from edgevision.ops.boxes import box_iou_numpy, order_corners

BOX_TOLERANCE = 0.02  # px: the CSV keeps two decimals, so a larger difference is an edit
ALREADY_ANNOTATED_IOU = 0.9  # a missing object this close to a same-class one is already there
_REMOVING = ("duplicate", "unsupported")


@dataclass
class ReviewReport:
    """What ``apply_review`` did, shaped like the fix report.

    Attributes:
        changes: one per applied row ("added", "fixed", "dropped") and per refused row
            ("not fixed", with the CSV line and why), by file then object.
        source: the dataset the review list describes.
        data: the dataset to use from now on (the copy under ``out``, or ``source``).
        in_place: whether the source files were rewritten (each with a backup).
        review_csv: the list applied.
        rows, accepted: rows read, and rows marked accepted.
        written, backups: annotation files written, and backups made in place.
        objects_in, objects_out: objects in the rewritten files before and after.
        check: the check of ``source`` the rows were matched against.
    """

    changes: list[Change]
    source: Path
    data: Path
    in_place: bool
    review_csv: Path
    rows: int = 0
    accepted: int = 0
    written: list[Path] = field(default_factory=list)
    backups: list[Path] = field(default_factory=list)
    objects_in: int = 0
    objects_out: int = 0
    check: CheckReport | None = field(default=None, repr=False)

    def summary(self) -> dict[str, int]:
        """Action ("added", "fixed", "dropped", "not fixed") -> count."""
        counts = {ADDED: 0, FIXED: 0, DROPPED: 0, NOT_FIXED: 0}
        for change in self.changes:
            counts[change.action] += 1
        return counts

    def format_text(self) -> str:
        """One line per change, then the totals and where the edited data is."""
        root = self.check.root if self.check is not None else self.source
        lines = [_line(_relative(change, root)) for change in self.changes]
        counts = self.summary()
        where = f"in place ({len(self.backups)} backups)" if self.in_place else f"to {self.data}"
        lines += [
            "",
            f"{self.review_csv.name}: {self.rows} rows, {self.accepted} accepted; "
            f"{counts[ADDED]} added, {counts[FIXED]} fixed, {counts[DROPPED]} removed, "
            f"{counts[NOT_FIXED]} not applied",
            f"{len(self.written)} annotation files written {where}; objects in them: "
            f"{self.objects_in} before, {self.objects_out} after",
        ]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "source": str(self.source),
            "data": str(self.data),
            "in_place": self.in_place,
            "review_csv": str(self.review_csv),
            "rows": self.rows,
            "accepted": self.accepted,
            "summary": self.summary(),
            "objects_in": self.objects_in,
            "objects_out": self.objects_out,
            "written": [str(p) for p in self.written],
            "backups": [str(p) for p in self.backups],
            "changes": [change.to_dict() for change in self.changes],
        }


def _line(change: Change) -> str:
    """``Change``'s own text, except that an added object shows what was added."""
    if change.action != ADDED:
        return str(change)
    return f"{change.path}: object {change.object_index}: {change.kind} added: {change.after}"


def _relative(change: Change, root: Path) -> Change:
    try:
        path = change.path.relative_to(root)
    except ValueError:
        return change
    return Change(
        path, change.kind, change.action, change.before, change.after, change.object_index
    )


def apply_review(
    data: str | Path,
    review_csv: str | Path,
    out: str | Path | None = None,
    in_place: bool = False,
    workers: int = 2,
) -> ReviewReport:
    """Apply the accepted rows of ``review_csv`` to ``data`` (rules: module docstring).

    Args:
        data: VOC root, COCO JSON, or data YAML: the dataset the review list was made on.
        review_csv: ``label_review.csv`` with the ``accept`` column filled in.
        out: folder for the edited copy (must be empty or new, and outside the dataset).
        in_place: rewrite the dataset's own files instead, each after a ``.bak`` backup.
        workers: processes for the image checks of the dataset check.

    Raises:
        ConfigError: neither or both of ``out`` and ``in_place``, or an unusable ``out``.
        DataError: a malformed review CSV (naming ``file:line``) or an unreadable dataset.
    """
    if (out is None) == (not in_place):
        raise ConfigError(
            "applying a review list needs exactly one target: out=DIR (--out DIR) writes an "
            "edited copy, in_place=True (--in-place) rewrites the files after backing them up"
        )
    review_csv = Path(review_csv)
    rows = read_review_rows(review_csv)
    report = check_dataset(data, workers=workers)
    home = dataset_home(data, report)
    if out is not None:
        check_out_folder(Path(out), home)
    edits, refused = _plan(rows, report.record_set, review_csv)
    fixes = {
        path: edit_file(path, report.format, items, report.record_set.class_names)
        for path, items in sorted(edits.items())
    }
    result = ReviewReport(
        changes=sorted(refused + [c for f in fixes.values() for c in f.changes], key=_order),
        source=Path(data),
        data=Path(data) if in_place else Path(out) / Path(data).resolve().relative_to(home),
        in_place=in_place,
        review_csv=review_csv,
        rows=len(rows),
        accepted=sum(row.accept for row in rows),
        objects_in=sum(fix.objects_in for fix in fixes.values()),
        objects_out=sum(fix.objects_out for fix in fixes.values()),
        check=report,
    )
    result.written, result.backups = _write(fixes, Path(data), home, out, in_place)
    return result


def _order(change: Change) -> tuple:
    return (str(change.path), -1 if change.object_index is None else change.object_index)


def _write(fixes: dict[Path, FileFix], data: Path, home: Path, out, in_place: bool):
    """Write the edited files like ``fix_dataset``; label files that did not exist are created."""
    edits = {path: fix.data for path, fix in fixes.items() if fix.data is not None}
    existing = {path: content for path, content in edits.items() if path.exists()}
    created = {path: content for path, content in edits.items() if not path.exists()}
    if in_place:
        written, backups = write_in_place(existing)
        return written + [atomic_write_bytes(p, c) for p, c in sorted(created.items())], backups
    written = write_copy(home, Path(out), existing)
    for path, content in sorted(created.items()):
        written.append(atomic_write_bytes(Path(out) / path.resolve().relative_to(home), content))
    return written + retarget_yaml(data, home, Path(out)), []


# ---------------------------------------------------------------------------------------------
# Matching rows to the annotation files as they are now


def _plan(
    rows: list[ReviewRow], record_set: RecordSet, review_csv: Path
) -> tuple[dict[Path, list[Edit]], list[Change]]:
    """The edits per annotation file, and a NOT_FIXED change for every accepted row refused."""
    find = _image_finder(record_set)
    edits: dict[Path, list[Edit]] = {}
    refused = []
    accepted = [row for row in rows if row.accept]
    # Removals first, so that an edit of a removed object is refused rather than wasted.
    for row in sorted(accepted, key=lambda r: (r.kind not in _REMOVING, r.line)):
        record, reason = find(row.file)
        position = None
        if record is not None:
            position, reason = _locate(row, record, record_set.class_names)
        if reason is None:
            reason = _conflict(row, record, position, edits.get(record.annotation_path, []))
        if reason is not None:
            where = record.annotation_path if record is not None else review_csv
            before = f"{review_csv.name}:{row.line} ({row.file}): {reason}"
            refused.append(Change(where, row.kind, NOT_FIXED, before, "", position))
            continue
        edits.setdefault(record.annotation_path, []).append(Edit(row, record, position))
    return edits, refused


def _image_finder(record_set: RecordSet):
    """``file -> (record, None) or (None, why)``: by absolute path, else trailing path parts."""
    by_name: dict[str, list[ImageRecord]] = {}
    for record in record_set.records:
        by_name.setdefault(record.image_path.name, []).append(record)

    def find(file: str) -> tuple[ImageRecord | None, str | None]:
        parts = PurePosixPath(file.replace("\\", "/")).parts
        candidates = by_name.get(parts[-1], []) if parts else []
        if PurePosixPath(file).is_absolute():
            matches = [r for r in candidates if r.image_path.resolve() == Path(file).resolve()]
        else:
            matches = [r for r in candidates if r.image_path.parts[-len(parts) :] == parts]
        if len(matches) == 1:
            return matches[0], None
        if not matches:
            return None, "no such image in the dataset (renamed or removed since the review)"
        return None, f"{len(matches)} images match this path; give a longer path"

    return find


def _locate(row: ReviewRow, record: ImageRecord, names: list[str]) -> tuple[int | None, str | None]:
    """(file position of the row's object, or None for missing; why the row is stale, or None)."""
    if (
        row.suggested_class
        and row.kind in ("missing", "wrong_class")
        and row.suggested_class not in names
    ):
        return None, f"class {row.suggested_class!r} is not one of the dataset's classes {names}"
    if row.kind == "missing":
        return None, _already_annotated(row, record, names)
    index = row.object_index
    if index >= record.num_objects:
        return None, f"object {index} does not exist (the image has {record.num_objects} now)"
    position = object_indices(record)[index]
    name, box = names[int(record.labels[index])], order_corners(record.boxes[index].astype(float))
    if (
        name != row.class_name
        or max(abs(a - b) for a, b in zip(box, row.box, strict=True)) > BOX_TOLERANCE
    ):
        now, then = f"{name} [{format_box(box)}]", f"{row.class_name} [{format_box(row.box)}]"
        return (
            position,
            f"object {index} is now {now}, not {then}: the file changed since the review",
        )
    return position, None


def _already_annotated(row: ReviewRow, record: ImageRecord, names: list[str]) -> str | None:
    same = record.labels == names.index(row.suggested_class)
    if not same.any():
        return None
    boxes = order_corners(record.boxes[same].astype(float))
    best = float(box_iou_numpy(boxes, np.asarray([row.suggested_box])).max())
    if best >= ALREADY_ANNOTATED_IOU:
        return f"already annotated ({row.suggested_class} at IoU {best:.2f})"
    return None


def _conflict(row: ReviewRow, record: ImageRecord, position, planned: list[Edit]) -> str | None:
    """Why ``row`` cannot join the edits already planned for the same object, or None."""
    if row.kind == "missing":
        return _added_twice(row, record, planned)
    for edit in planned:
        if edit.record is not record or edit.position != position:
            continue
        if edit.row.kind in _REMOVING:
            return f"the object is removed by line {edit.row.line}"
        if edit.row.kind == row.kind:
            return f"line {edit.row.line} already edits this object the same way"
    return None


def _added_twice(row: ReviewRow, record: ImageRecord, planned: list[Edit]) -> str | None:
    for edit in planned:
        if edit.record is not record or edit.row.kind != "missing":
            continue
        if edit.row.suggested_class != row.suggested_class:
            continue
        boxes = np.asarray([edit.row.suggested_box]), np.asarray([row.suggested_box])
        if box_iou_numpy(*boxes)[0, 0] >= ALREADY_ANNOTATED_IOU:
            return f"line {edit.row.line} already adds this object"
    return None
