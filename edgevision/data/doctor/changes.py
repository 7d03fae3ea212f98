"""What the fixer records and shares: one :class:`Change` per edit or refusal, and fixer inputs.

A :class:`Change` says which file and object, which defect, and what it was and became (FIXED),
that it was removed (DROPPED) or why it was left alone (NOT_FIXED). :class:`FileFix` is one
annotation file's new bytes with its changes; :class:`FixContext` is what every format fixer
needs from the check. Also the repairs every fixer shares: the size to write
(:func:`size_repair`), the box repair steps in the order ``boxes.judge_boxes`` judges them
(:func:`repair_steps`: swap the corners, then clip) and how numbers are written.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgevision.core import issues as kinds
from edgevision.core.issues import Issue
from edgevision.core.records import ImageRecord
from edgevision.data.doctor.check import CheckReport
from edgevision.data.doctor.images import ImageInfo, effective_size, rotated_view
from edgevision.ops.boxes import clip_boxes, order_corners

DROP_KINDS = (kinds.UNKNOWN_CLASS, kinds.ZERO_AREA, kinds.DEGENERATE_BOX, kinds.DUPLICATE_BOX)
REPAIR_KINDS = (
    kinds.FLOAT_SIZE,
    kinds.MISSING_SIZE,
    kinds.SIZE_MISMATCH,
    kinds.SWAPPED_COORDS,
    kinds.BOX_OUTSIDE,
    kinds.CLASS_CASE,
    kinds.CLASS_WHITESPACE,
    kinds.XML_ENCODING,
    kinds.FILENAME_MISMATCH,
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


def not_fixed(issue: Issue, reason: str | None = None) -> Change:
    text = reason or f"{issue.reason}{f'; {issue.hint}' if issue.hint else ''}"
    return Change(issue.path, issue.kind, NOT_FIXED, text, "", issue.object_index)


def size_repair(record: ImageRecord, info: ImageInfo | None, kind: str) -> tuple[int, int] | str:
    """The (width, height) to write for a size issue, or why it cannot be repaired."""
    if info is None or not info.readable:
        return "the image is missing or unreadable, so its size is unknown"
    if kind == kinds.SIZE_MISMATCH and rotated_view((record.width, record.height), info):
        return "the annotation describes the EXIF-rotated view; bake the rotation in instead"
    return info.width, info.height


def repair_steps(box: np.ndarray, size: tuple[int, int] | None) -> list[tuple[str, np.ndarray]]:
    """(kind, box after the step) for swapping then clipping one (4,) xyxy box, as check judges.

    An unknown size clips only negative coordinates, like ``boxes.judge_boxes``.
    """
    width, height = (np.inf, np.inf) if size is None else size
    ordered = order_corners(box)
    return [
        (kinds.SWAPPED_COORDS, ordered),
        (kinds.BOX_OUTSIDE, clip_boxes(ordered, width, height)),
    ]


def number_text(value: float) -> str:
    """Integers as integers (what VOC tools expect), other values with up to 4 decimals."""
    value = round(float(value), 4)
    return str(int(value)) if value == int(value) else repr(value)
