"""The data doctor's treatment: repair what can be repaired, drop what cannot, list every change.

``fix_dataset`` runs :func:`~edgevision.data.doctor.check.check_dataset` and edits the annotation files
the issues point at, so check and fix never disagree (both use ``boxes.judge_boxes``):

- repaired: float sizes -> integers, missing or wrong ``<size>`` -> the real image size (boxes
  kept), swapped corners -> swapped back, boxes outside the image -> clipped, class-name case ->
  the canonical spelling;
- dropped (and listed): zero-area boxes, duplicates, objects of unknown classes;
- not fixed (and listed): corrupt or empty annotations, missing or unreadable images, images
  without an annotation, EXIF rotation.

Nothing is edited in place unless asked: ``out=DIR`` writes a full copy (images hard-linked when
the file system allows, unchanged annotation files copied byte for byte), ``in_place=True`` keeps a
``.bak`` copy of every file it rewrites. Every write is atomic.

This module holds ``fix_dataset``, the planning and writing, and the :class:`FixReport` (the change
log). The per-format editors live in :mod:`.fix_formats`: VOC XML is edited as a tree, so fields
the fixer does not know (pose, custom tags) stay; COCO JSON is edited as a dict; YOLO label lines
are rewritten. :class:`~.changes.Change` and the other shared records live in
:mod:`.changes`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from edgevision.core import issues as kinds
from edgevision.core.errors import ConfigError
from edgevision.core.fileio import atomic_write_bytes, backup_file
from edgevision.core.image import IMAGE_SUFFIXES
from edgevision.core.issues import Issue
from edgevision.core.records import ImageRecord
from edgevision.data.doctor.changes import (
    DROP_KINDS,
    DROPPED,
    FIXED,
    NOT_FIXED,
    REPAIR_KINDS,
    Change,
    FileFix,
    FixContext,
    not_fixed,
)
from edgevision.data.doctor.check import CheckReport, check_dataset
from edgevision.data.doctor.fix_formats import fix_coco, fix_voc, fix_yolo
from edgevision.data.formats.yolo import find_data_yaml


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


# ---------------------------------------------------------------------------------------------
# The whole dataset


def fix_dataset(
    data: str | Path,
    out: str | Path | None = None,
    in_place: bool = False,
    deep: bool = False,
    workers: int = 2,
    class_names: list[str] | None = None,
    case: str = "majority",
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
        check_out_folder(Path(out), home)
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
        result.written, result.backups = write_in_place(edits)
    else:
        result.written = write_copy(home, Path(out), edits)
        result.written += retarget_yaml(Path(data), home, Path(out))
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


def check_out_folder(out: Path, home: Path) -> None:
    """ConfigError unless ``out`` is a new or empty folder that does not overlap the dataset."""
    out = out.resolve()
    if out == home or home in out.parents or out in home.parents:
        raise ConfigError(f"--out {out} overlaps the dataset {home}; choose a separate folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out} exists and is not empty; choose a new or empty folder")


def plan_fixes(report: CheckReport) -> tuple[dict[Path, FileFix], list[Change]]:
    """New contents of every annotation file to rewrite, and every change (incl. refusals)."""
    context = _context(report)
    grouped, changes = _group_by_file(report, context)
    fix_file = {"voc": fix_voc, "coco": fix_coco, "yolo": fix_yolo}[report.format]
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


def write_in_place(edits: dict[Path, bytes]) -> tuple[list[Path], list[Path]]:
    """Each file backed up (``.bak``), then rewritten atomically; (written, backups)."""
    written, backups = [], []
    for path, data in sorted(edits.items()):
        backups.append(backup_file(path))
        written.append(atomic_write_bytes(path, data))
    return written, backups


def write_copy(home: Path, out: Path, edits: dict[Path, bytes]) -> list[Path]:
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


def retarget_yaml(data: Path, home: Path, out: Path) -> list[Path]:
    """Point a copied data YAML's absolute ``path:`` at the copy, not at the source dataset."""

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
