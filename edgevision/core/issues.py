"""Defects found while reading or checking a dataset.

Readers never raise on a defect that affects one file: they return an :class:`Issue` and go on, so a
single bad XML does not stop a 10,000-image dataset (or a training run). ``DataError`` is for what
makes the whole dataset unusable (no annotations folder, an unreadable data YAML).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
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
DEGENERATE_BOX = "degenerate_box"  # 1 px wide or high (a click without a drag): drop
# Keypoints (pose): per point, per object, per file and per dataset schema.
KEYPOINT_VISIBILITY = "keypoint_visibility"  # v not in {0, 1, 2}
KEYPOINT_UNLABELLED_XY = "keypoint_unlabelled_xy"  # v = 0 but x, y not (0, 0)
KEYPOINT_OUTSIDE = "keypoint_outside"  # labelled point outside the image
KEYPOINT_FAR_FROM_BOX = "keypoint_far_from_box"  # > 50% of the box size beyond its box
NUM_KEYPOINTS_MISMATCH = "num_keypoints_mismatch"  # COCO num_keypoints != labelled points
KEYPOINT_COUNT = "keypoint_count"  # K differs between files, or from kpt_shape / the names
BAD_FLIP_IDX = "bad_flip_idx"  # not a permutation of 0..K-1, or not its own inverse
BAD_SKELETON = "bad_skeleton"  # an edge names a keypoint that does not exist
BAD_KPT_NAMES = "bad_kpt_names"  # kpt_names not a list of K strings
BAD_KPT_SIGMAS = "bad_kpt_sigmas"  # kpt_oks_sigmas not K positive numbers
# Read correctly, but worth knowing (other tools may not be as tolerant); --fix normalises them.
IMAGE_SUFFIX = "image_suffix"  # PNG bytes in a .jpg: decoded by content
CLASS_WHITESPACE = "class_whitespace"  # "car " read as "car"
XML_ENCODING = "xml_encoding"  # not plain UTF-8 (BOM, GBK, cp1252 ...): decoded, named
FILENAME_MISMATCH = "filename_mismatch"  # <filename> differs from the image file used
FILENAME_OTHER_IMAGE = "filename_other_image"  # names another image while its own one exists

# What each kind does to the data when repaired; "info" kinds change nothing.
SEVERITY = {
    NO_OBJECTS: "info",
    IMAGE_SUFFIX: "info",
    CLASS_WHITESPACE: "info",
    XML_ENCODING: "info",
    FILENAME_MISMATCH: "info",
    MISSING_SIZE: "warning",
    CLASS_CASE: "warning",
    FILENAME_OTHER_IMAGE: "warning",
    FLOAT_SIZE: "warning",
    KEYPOINT_UNLABELLED_XY: "warning",  # harmless for training (v = 0 is ignored), but suspect
    NUM_KEYPOINTS_MISMATCH: "warning",  # only other COCO tools read it; edgevision recounts
    KEYPOINT_FAR_FROM_BOX: "warning",  # a heuristic: usually a point of another object
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


_CASE_REASON = re.compile(r'^class "(?P<name>.*)" read as "(?P<canonical>.*?)"( \(|$)')


def case_reason(name: str, canonical: str, spellings: Counter) -> str:
    """The CLASS_CASE reason: which spelling was used and why (object counts per spelling)."""
    if not spellings:
        return f'class "{name}" read as "{canonical}" (the class list\'s spelling)'
    counts = ", ".join(f"{spelling} x{n}" for spelling, n in spellings.most_common())
    return f'class "{name}" read as "{canonical}" (objects per spelling: {counts})'


def case_folds(issues: Sequence[Issue]) -> dict[str, str]:
    """Spelling -> canonical name, from the CLASS_CASE issues (for the one-line mapping)."""
    folds = {}
    for issue in issues:
        match = _CASE_REASON.match(issue.reason) if issue.kind == CLASS_CASE else None
        if match:
            folds[match["name"]] = match["canonical"]
    return folds


def in_file_order(issues: list[Issue], files: Sequence[Path]) -> list[Issue]:
    """Issues sorted by the position of their file in ``files``, then by object (stable); an issue
    about another path (an image, a list file) stays after the file issue before it."""
    order = {path: position for position, path in enumerate(files)}
    keys, last = [], -1
    for issue in issues:
        last = order.get(issue.path, last)
        keys.append((last, -1 if issue.object_index is None else issue.object_index))
    ranked = sorted(range(len(issues)), key=keys.__getitem__)
    return [issues[i] for i in ranked]


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
    folds = case_folds(issues)
    if folds:
        mapping = ", ".join(f'"{name}" -> "{canonical}"' for name, canonical in folds.items())
        lines.append(f"class spellings folded: {mapping}")
    lines += [f"  {issue}" for issue in issues[:limit]]
    if len(issues) > limit:
        lines.append(f"  ... and {len(issues) - limit} more")
    return lines
