"""Defects found while reading or checking a dataset.

Readers never raise on a defect that affects one file: they return an :class:`Issue` and go on, so a
single bad XML does not stop a 10,000-image dataset (or a training run). ``DataError`` is for what
makes the whole dataset unusable (no annotations folder, an unreadable data YAML).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

# Defect kinds: names are part of the JSON report and the CLI summary table.
MISSING_IMAGE = "missing_image"
MISSING_ANNOTATION = "missing_annotation"
EMPTY_ANNOTATION = "empty_annotation"
CORRUPT_ANNOTATION = "corrupt_annotation"  # corrupt XML / JSON / txt line
UNREADABLE_IMAGE = "unreadable_image"  # cannot decode, truncated, zero bytes
SIZE_MISMATCH = "size_mismatch"  # annotated size != image size
FLOAT_SIZE = "float_size"  # <width>1920.0</width>
MISSING_SIZE = "missing_size"  # no <size>: read from the image header
BOX_OUTSIDE = "box_outside"  # partly or wholly outside the image: clip
ZERO_AREA = "zero_area"  # zero or negative area after swap/clip: drop
SWAPPED_COORDS = "swapped_coords"  # xmin > xmax or ymin > ymax: swap
DUPLICATE_BOX = "duplicate_box"  # same class, IoU >= 0.99 with an earlier box: drop
UNKNOWN_CLASS = "unknown_class"  # not in the configured class list: drop
CLASS_CASE = "class_case"  # "Car" vs "car": fold to one spelling
NO_OBJECTS = "no_objects"  # kept as a negative image, reported
EXIF_ROTATION = "exif_rotation"  # EXIF orientation would rotate the pixels relative to boxes
PATH_ESCAPE = "path_escape"  # file name resolves outside the dataset root: refused
BAD_KEYPOINTS = "bad_keypoints"

# What each kind does to the data when repaired; "info" kinds change nothing.
SEVERITY = {
    NO_OBJECTS: "info",
    MISSING_SIZE: "warning",
    CLASS_CASE: "warning",
    FLOAT_SIZE: "warning",
}


@dataclass(frozen=True)
class Issue:
    """One defect: where it is, why it is one, and what fixes it.

    Attributes:
        kind: one of the module-level kind constants.
        path: the file the defect is in (annotation file, or the image for image defects).
        reason: human sentence, e.g. ``<width> "1920.0" is not an integer``.
        hint: the fix, e.g. ``run edgevision data check --fix``.
        object_index: 0-based index of the object in its file, when the defect is per object.
        line: line number in the file, when known.
    """

    kind: str
    path: Path
    reason: str
    hint: str = ""
    object_index: int | None = None
    line: int | None = None

    @property
    def severity(self) -> str:
        return SEVERITY.get(self.kind, "error")

    def __str__(self) -> str:
        where = f"{self.path}{'' if self.line is None else f':{self.line}'}"
        obj = "" if self.object_index is None else f" object {self.object_index}:"
        return f"{where}:{obj} {self.reason}{f'; {self.hint}' if self.hint else ''}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        d["severity"] = self.severity
        return d


def summarize_issues(issues: list[Issue], label: str, limit: int = 10) -> list[str]:
    """Reader issues as the lines printed once, up front (never per batch): counts by kind, then
    the first ``limit``; empty when there are none."""
    if not issues:
        return []
    counts: dict[str, int] = {}
    for issue in issues:
        counts[issue.kind] = counts.get(issue.kind, 0) + 1
    kinds = ", ".join(f"{k}: {n}" for k, n in sorted(counts.items()))
    lines = [
        f"{label}: {len(issues)} data issues ({kinds}); run `edgevision data check` for the full list"
    ]
    lines += [f"  {issue}" for issue in issues[:limit]]
    if len(issues) > limit:
        lines.append(f"  ... and {len(issues) - limit} more")
    return lines
