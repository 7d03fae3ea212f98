"""The data doctor: find every defect in a dataset and say where it is, why, and what fixes it.

``check_dataset`` reads the whole dataset once (for VOC every file in ``Annotations/``, not split by
split, so each file is checked once), keeps the readers' issues (corrupt XML, float sizes, unknown
classes, ...), adds record checks (swapped, outside, zero-area and duplicate boxes, images without
objects; keypoints in :mod:`.keypoints`) and image checks (missing, unreadable, size mismatch,
EXIF rotation), and returns a :class:`CheckReport`.

This module holds the report, ``check_dataset`` and the VOC layout checks; the parts live in
:mod:`.read_all` (reading with object positions), :mod:`.images` (image inspection in a
process pool, started before the annotation reading so both run at once) and
:mod:`.boxes` (box judging, shared with the fixer).

Exit code: 0 when every issue is ``info`` (an image without objects is a valid negative example and
is only reported), 1 when any warning or error remains.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from edgevision.core import issues as kinds
from edgevision.core.image import IMAGE_SUFFIXES
from edgevision.core.issues import Issue
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.doctor.boxes import box_issues
from edgevision.data.doctor.images import ImageInfo, ImageInspection, effective_size, image_issues
from edgevision.data.doctor.keypoints import keypoint_issues
from edgevision.data.doctor.read_all import read_whole_dataset
from edgevision.data.formats import detect_format

# What ``--fix`` does about each kind; shown in the summary table so the user knows before fixing.
FIX_ACTION = {
    kinds.FLOAT_SIZE: "write as integer",
    kinds.MISSING_SIZE: "write the image size",
    kinds.SIZE_MISMATCH: "write the real image size (boxes kept)",
    kinds.SWAPPED_COORDS: "swap the corners",
    kinds.BOX_OUTSIDE: "clip to the image",
    kinds.CLASS_CASE: "fold to one spelling",
    kinds.ZERO_AREA: "drop the box",
    kinds.DEGENERATE_BOX: "drop the box",
    kinds.IMAGE_SUFFIX: "none (rename the file yourself)",
    kinds.CLASS_WHITESPACE: "write the name without the spaces",
    kinds.XML_ENCODING: "rewrite as UTF-8",
    kinds.FILENAME_MISMATCH: "write the image's file name",
    kinds.DUPLICATE_BOX: "drop the later copy",
    kinds.UNKNOWN_CLASS: "drop the object",
    kinds.NO_OBJECTS: "none (kept as negative)",
}
NOT_FIXABLE = "not fixable: needs you"


@dataclass
class CheckReport:
    """Every defect found in one dataset, plus what the fixer needs to repair them.

    Attributes:
        issues: reader, record and image defects, sorted by file then object.
        num_images: images checked (records read plus images without an annotation).
        num_objects: objects in the records the readers returned.
        root: dataset root; paths in the text report are shown relative to it.
        format: "voc", "coco" or "yolo".
        deep: whether every image was decoded (else only headers were read).
        record_set: the records read (all splits merged), for ``fix_dataset``.
        images: per image path, what inspection found (stored size, orientation, error).
        timings: seconds spent reading annotations, checking images and checking records.
    """

    issues: list[Issue]
    num_images: int
    num_objects: int
    root: Path
    format: str
    deep: bool = False
    record_set: RecordSet | None = field(default=None, repr=False)
    images: dict[Path, ImageInfo] = field(default_factory=dict, repr=False)
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        """Defect kind -> count, most frequent first."""
        return dict(Counter(issue.kind for issue in self.issues).most_common())

    @property
    def exit_code(self) -> int:
        """0 when only info-level issues (negative images) remain, else 1."""
        return int(any(issue.severity != "info" for issue in self.issues))

    def format_text(self) -> str:
        """One line per defect (file, object, reason, fix), then a table of counts by kind."""
        lines = [str(_relative(issue, self.root)) for issue in self.issues]
        lines += ["", *_summary_table(self.summary())]
        folds = kinds.case_folds(self.issues)
        if folds:
            mapping = ", ".join(f'"{name}" -> "{canonical}"' for name, canonical in folds.items())
            lines.append(f"class spellings folded: {mapping}")
        mode = "deep (decoded)" if self.deep else "header"
        seconds = sum(self.timings.values())
        lines.append(
            f"{self.num_images} images, {self.num_objects} objects checked in {seconds:.1f} s "
            f"({mode} mode): {len(self.issues)} issues; "
            + ("clean" if self.exit_code == 0 else "run edgevision data check --fix --out DIR")
        )
        return "\n".join(lines)

    def to_json(self) -> dict:
        """JSON-ready dict: counts, summary, and every issue with its severity."""
        return {
            "root": str(self.root),
            "format": self.format,
            "deep": self.deep,
            "num_images": self.num_images,
            "num_objects": self.num_objects,
            "exit_code": self.exit_code,
            "timings": dict(self.timings),
            "summary": self.summary(),
            "issues": [issue.to_dict() for issue in self.issues],
        }


def _relative(issue: Issue, root: Path) -> Issue:
    try:
        path = issue.path.relative_to(root)
    except ValueError:
        return issue
    return Issue(issue.kind, path, issue.reason, issue.hint, issue.object_index, issue.line)


def _summary_table(summary: dict[str, int]) -> list[str]:
    if not summary:
        return ["no defects found"]
    width = max(len(kind) for kind in summary)
    rows = [f"{'defect':<{width}}  {'count':>6}  {'severity':<8}  fix"]
    for kind, count in summary.items():
        severity = kinds.SEVERITY.get(kind, "error")
        rows.append(
            f"{kind:<{width}}  {count:>6}  {severity:<8}  {FIX_ACTION.get(kind, NOT_FIXABLE)}"
        )
    return rows


# ---------------------------------------------------------------------------------------------
# The whole dataset


def check_dataset(
    data: str | Path,
    deep: bool = False,
    workers: int = 2,
    class_names: list[str] | None = None,
    case: str = "majority",
) -> CheckReport:
    """Check every annotation and image of a dataset and report each defect.

    Args:
        data: VOC root, COCO JSON, or data YAML (format detected).
        deep: decode every image (catches truncated files a header read misses; ~10x slower).
        workers: processes for the image checks.
        class_names: the expected classes; objects of other classes are reported as unknown.
        case: how readers treat class names differing only in case (see the format readers).

    Raises:
        DataError: the dataset as a whole is unusable (no annotations folder, bad data YAML).
    """
    timings = {}
    start = time.perf_counter()
    inspection = ImageInspection(_voc_image_files(data), deep, workers)
    try:
        record_set, found = read_whole_dataset(data, class_names, case)
    except BaseException:
        inspection.close()
        raise
    timings["read"] = time.perf_counter() - start
    start = time.perf_counter()
    images = inspection.results(also=[r.image_path for r in record_set.records])
    timings["images"] = time.perf_counter() - start  # waiting after the read: they overlap
    start = time.perf_counter()
    orphans = _voc_layout_issues(record_set.root) if record_set.format == "voc" else []
    found = found + orphans + _check_records(record_set, images, found)
    timings["records"] = time.perf_counter() - start
    return CheckReport(
        issues=_dedupe(found),
        num_images=len(record_set) + sum(i.line is None for i in orphans),
        num_objects=record_set.num_objects,
        root=record_set.root,
        format=record_set.format,
        deep=deep,
        record_set=record_set,
        images=images,
        timings=timings,
    )


def _voc_image_files(data: str | Path) -> list[Path]:
    """The image files of a plain VOC root, named as the VOC reader names them; else []."""

    image_dir = os.path.join(os.path.abspath(data), "JPEGImages")
    if not os.path.isdir(image_dir) or detect_format(data) != "voc":
        return []
    return [
        Path(os.path.join(image_dir, name))
        for name in sorted(os.listdir(image_dir))
        if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES
    ]


def _check_records(
    record_set: RecordSet, images: dict[Path, ImageInfo], reader_issues: list[Issue]
) -> list[Issue]:
    no_size = {i.path for i in reader_issues if i.kind == kinds.MISSING_SIZE}
    has_object_issue = {i.path for i in reader_issues if i.object_index is not None}
    found, sizes = [], []
    for record in record_set.records:
        info = images.get(record.image_path)
        where = image_issue_path(record, record_set.format)
        size_known = where not in no_size and min(record.width, record.height) > 0
        found += image_issues(record, info, where, size_known) if info is not None else []
        if record.num_objects == 0 and record.annotation_path not in has_object_issue:
            reason = "no objects: kept as a negative (background) image"
            found.append(Issue(kinds.NO_OBJECTS, where, reason, "nothing to fix"))
        sizes.append(effective_size(record, info))
    found += box_issues(record_set.records, sizes, record_set.format)
    return found + keypoint_issues(record_set, sizes)


def image_issue_path(record: ImageRecord, format: str) -> Path:
    """Where an image-level defect is reported: the VOC XML (one per image), else the image
    (COCO shares one JSON among all images; a YOLO label file may not exist)."""
    if format == "voc" and record.annotation_path is not None:
        return record.annotation_path
    return record.image_path


def _voc_layout_issues(root: Path) -> list[Issue]:
    """VOC files no XML describes: images in JPEGImages/ and ids in ImageSets/Main/*.txt.

    Without this they would silently not be trained on.
    """
    stems = {name[:-4] for name in _names(root / "Annotations") if name.lower().endswith(".xml")}
    hint = "annotate it, or remove it if it does not belong to the dataset"
    found = [
        Issue(kinds.MISSING_ANNOTATION, root / "JPEGImages" / name, reason, hint)
        for name in _names(root / "JPEGImages")
        if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES
        and os.path.splitext(name)[0] not in stems
        for reason in [f"no Annotations/{os.path.splitext(name)[0]}.xml for this image"]
    ]
    list_dir = root / "ImageSets" / "Main"
    for name in _names(list_dir):
        if name.endswith(".txt"):
            found += _split_list_issues(list_dir / name, stems)
    return found


def _names(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def _split_list_issues(list_file: Path, stems: set[str]) -> list[Issue]:
    found = []
    text = list_file.read_text(encoding="utf-8", errors="replace")
    for line_number, line in enumerate(text.splitlines(), start=1):
        stem = line.split()[0] if line.split() else ""
        if stem and stem not in stems:
            reason = f"lists {stem!r} but Annotations/{stem}.xml does not exist"
            hint = "add the annotation or remove the line"
            found.append(Issue(kinds.MISSING_ANNOTATION, list_file, reason, hint, line=line_number))
    return found


def _dedupe(found: list[Issue]) -> list[Issue]:
    """One issue per (kind, file, object, line), sorted by file then object, for stable reports."""
    unique = {(i.kind, str(i.path), i.object_index, i.line): i for i in reversed(found)}
    return sorted(
        unique.values(),
        key=lambda i: (
            str(i.path),
            -1 if i.object_index is None else i.object_index,
            i.line or 0,
            i.kind,
        ),
    )
