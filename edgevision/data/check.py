"""The data doctor: find every defect in a dataset and say where it is, why, and what fixes it.

``check_dataset`` reads the whole dataset once (for VOC every file in ``Annotations/``, not split by
split, so each file is checked once), keeps the readers' issues (corrupt XML, float sizes, unknown
classes, ...), adds record checks (swapped, outside, zero-area and duplicate boxes, images without
objects) and image checks (missing, unreadable, size mismatch, EXIF rotation), and returns a
:class:`CheckReport`.

Image checks are the slow part, so they run in a process pool over chunks of paths, started on
``JPEGImages/`` before the (single-process) annotation reading so both cores work at once. Header
mode reads only the file header (fast, but a truncated JPEG can pass); ``deep=True`` decodes every
image.

Boxes are judged in the records' 0-based continuous frame (VOC ``x0 = xmin - 1``): swapped means
``x0 > x1`` (or y), zero area means nothing left after ordering and clipping. So a VOC box written
``xmin=29 xmax=4`` is repaired to ``xmin=5 xmax=28`` and ``xmin=10 xmax=9`` has zero area.
Object positions are the user's: the ``<object>`` index in a VOC file, the index in a COCO file's
``annotations`` list, the 0-based line of a YOLO label file (``line`` holds the 1-based number).

Exit code: 0 when every issue is ``info`` (an image without objects is a valid negative example and
is only reported), 1 when any warning or error remains.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..ops.boxes import box_area, box_iou_numpy, clip_boxes, order_corners
from . import issues as kinds
from .imageio import IMAGE_SUFFIXES, exif_orientation, read_image, read_image_size
from .issues import Issue
from .records import ImageRecord, RecordSet

DUPLICATE_IOU = 0.99  # same class and at least this IoU with an earlier box: a double click
_ROTATED_VIEW = (5, 6, 7, 8)  # EXIF orientations that swap width and height
_EXIF_SNIFF_BYTES = 256 * 1024  # JPEG APP segments are <= 64 KiB each and come first
# Issue kinds with which a reader reports an object it left out of the record.
_SKIPPING_KINDS = (kinds.CORRUPT_ANNOTATION, kinds.UNKNOWN_CLASS, kinds.BAD_KEYPOINTS)

# What ``--fix`` does about each kind; shown in the summary table so the user knows before fixing.
FIX_ACTION = {
    kinds.FLOAT_SIZE: "write as integer",
    kinds.MISSING_SIZE: "write the image size",
    kinds.SIZE_MISMATCH: "write the real image size (boxes kept)",
    kinds.SWAPPED_COORDS: "swap the corners",
    kinds.BOX_OUTSIDE: "clip to the image",
    kinds.CLASS_CASE: "fold to one spelling",
    kinds.ZERO_AREA: "drop the box",
    kinds.DUPLICATE_BOX: "drop the later copy",
    kinds.UNKNOWN_CLASS: "drop the object",
    kinds.NO_OBJECTS: "none (kept as negative)",
}
NOT_FIXABLE = "not fixable: needs you"


@dataclass(frozen=True)
class ImageInfo:
    """What inspecting one image file found: its stored size, EXIF orientation, or why it failed."""

    width: int = 0
    height: int = 0
    orientation: int = 1
    error: str | None = None
    missing: bool = False

    @property
    def readable(self) -> bool:
        return self.error is None


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
# Image checks (run in worker processes: module-level functions, plain picklable results)


def _inspect_image(path: str, deep: bool) -> ImageInfo:
    try:
        if deep:
            height, width = read_image(path).shape[:2]
        else:
            width, height = read_image_size(path)
    except DataError as e:
        return ImageInfo(error=e.reason, missing=not os.path.exists(path))
    return ImageInfo(int(width), int(height), _orientation(path))


def _orientation(path: str) -> int:
    """EXIF orientation, without a second header parse for the common JPEG that has no EXIF.

    A JPEG's EXIF block is an APP1 segment before the pixel data, so a JPEG whose first
    ``_EXIF_SNIFF_BYTES`` lack the ``Exif`` signature has orientation 1 (halves header mode's time).
    """
    with open(path, "rb") as file:
        head = file.read(_EXIF_SNIFF_BYTES)
    if head.startswith(b"\xff\xd8") and b"Exif\x00\x00" not in head:
        return 1
    return exif_orientation(path)


def _inspect_chunk(paths: list[str], deep: bool) -> list[ImageInfo]:
    return [_inspect_image(path, deep) for path in paths]


def _pool_context():
    # fork starts workers in milliseconds; spawn would re-import torch (via ops) in every worker.
    return get_context("fork") if sys.platform.startswith("linux") else None


class ImageInspection:
    """Image checks running in the background on ``workers`` processes while the caller works.

    ``check_dataset`` starts one on the files of ``JPEGImages/`` before reading the annotations, so
    the (single-process) reader and the image checks use both cores at once.
    Work is split into chunks of paths so each task amortises the process round trip; small sets
    run inline because starting a pool costs more than it saves.
    """

    def __init__(self, paths: list[Path], deep: bool = False, workers: int = 2):
        self.paths = list(dict.fromkeys(paths))
        self.deep, self.workers = deep, workers
        chunk = max(16, min(256, len(self.paths) // (8 * max(workers, 1)) or 1))
        chunks = [self.paths[i : i + chunk] for i in range(0, len(self.paths), chunk)]
        inspect = partial(_inspect_chunk, deep=deep)
        self._pool = None
        if workers > 1 and len(self.paths) >= 128:
            self._pool = ProcessPoolExecutor(workers, mp_context=_pool_context())
            self._results = [self._pool.submit(inspect, [str(p) for p in c]) for c in chunks]
        else:
            self._results = [inspect([str(p) for p in c]) for c in chunks]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def results(self, also: list[Path] = ()) -> dict[Path, ImageInfo]:
        """Path -> ImageInfo for every submitted path, plus ``also`` (checked now if new)."""
        try:
            parts = [r.result() if self._pool else r for r in self._results]
        finally:
            self.close()
        flat = [info for part in parts for info in part]
        found = dict(zip(self.paths, flat, strict=True))
        rest = [path for path in also if path not in found]
        if rest:
            found.update(ImageInspection(rest, self.deep, self.workers).results())
        return found


def inspect_images(
    paths: list[Path], deep: bool = False, workers: int = 2
) -> dict[Path, ImageInfo]:
    """Read the header (or, with ``deep``, decode the pixels) of every image, on ``workers`` cores."""
    return ImageInspection(paths, deep, workers).results()


def effective_size(record: ImageRecord, info: ImageInfo | None) -> tuple[int, int] | None:
    """The (width, height) boxes live in: the stored pixels, unless the annotation saw a rotated view.

    When the EXIF tag rotates by 90 degrees and the annotated size is the stored size transposed,
    the annotation tool drew on the rotated view: clipping to the stored size would damage the
    boxes, so the annotated size is kept (and EXIF_ROTATION tells the user to bake the rotation in).
    """
    annotated = (int(record.width), int(record.height))
    if info is None or not info.readable:
        return annotated if min(annotated) > 0 else None
    if rotated_view(annotated, info):
        return annotated
    return info.width, info.height


def rotated_view(annotated: tuple[int, int], info: ImageInfo) -> bool:
    """True when the annotated size is the stored size turned by 90 degrees by EXIF."""
    stored = (info.width, info.height)
    return info.orientation in _ROTATED_VIEW and annotated == stored[::-1] and annotated != stored


def _image_issues(
    record: ImageRecord, info: ImageInfo, where: Path, size_known: bool
) -> list[Issue]:
    if info.missing:
        reason = f"image {record.image_path.name} not found ({record.image_path})"
        return [Issue(kinds.MISSING_IMAGE, where, reason, "add the image or delete the annotation")]
    if not info.readable:
        hint = "replace or remove the image; --fix cannot repair pixels"
        return [Issue(kinds.UNREADABLE_IMAGE, record.image_path, info.error, hint)]
    found = []
    annotated = (int(record.width), int(record.height))
    if size_known and annotated != (info.width, info.height):
        reason = (
            f"annotated size {annotated[0]}x{annotated[1]} != image {record.image_path.name} "
            f"{info.width}x{info.height}"
        )
        hint = (
            "the annotation tool drew on the EXIF-rotated view; see exif_rotation"
            if rotated_view(annotated, info)
            else "--fix writes the real image size and keeps the boxes: check them if the image "
            "was resized after annotating"
        )
        found.append(Issue(kinds.SIZE_MISMATCH, where, reason, hint))
    if info.orientation != 1:
        found.append(_exif_issue(record, info))
    return found


def _exif_issue(record: ImageRecord, info: ImageInfo) -> Issue:
    reason = (
        f"EXIF orientation {info.orientation}: viewers show this image rotated/flipped, "
        f"edgevision uses the stored {info.width}x{info.height} pixels"
    )
    hint = (
        "if your annotation tool drew the boxes on the rotated view, bake the rotation into the "
        "pixels (PIL ImageOps.exif_transpose(image).save(path), or `mogrify -auto-orient`) and "
        "set <size> to the rotated size; if it drew on the stored pixels, nothing to do"
    )
    return Issue(kinds.EXIF_ROTATION, record.image_path, reason, hint)


# ---------------------------------------------------------------------------------------------
# Record checks


def object_indices(record: ImageRecord) -> list[int]:
    """Position in the annotation file of each object in ``record``.

    Readers leave out objects they cannot use (reporting each), so record object ``k`` is not
    always the ``k``-th object of the file; :func:`read_whole_dataset` stores the true positions
    as ``extra["object_indices"]``.
    """
    indices = record.extra.get("object_indices")
    return list(range(record.num_objects)) if indices is None else [int(i) for i in indices]


def describe_box(box: np.ndarray, format: str) -> str:
    """A box as the user wrote it: VOC 1-based ``xmin..ymax``, else 0-based xyxy pixels."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if format == "voc":
        x0, y0 = x0 + 1, y0 + 1
        return f"xmin={x0:g} ymin={y0:g} xmax={x1:g} ymax={y1:g}"
    return f"xyxy=({x0:g}, {y0:g}, {x1:g}, {y1:g})"


@dataclass(frozen=True)
class BoxVerdict:
    """Per-object findings: (N,) bool masks, the repaired (N, 4) xyxy boxes, (N, 2) sizes used."""

    finite: np.ndarray
    swapped: np.ndarray
    outside: np.ndarray
    zero_area: np.ndarray
    duplicate: np.ndarray
    repaired: np.ndarray
    sizes: np.ndarray


def judge_boxes(
    boxes: np.ndarray,
    labels: np.ndarray,
    sizes: tuple[int, int] | np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> BoxVerdict:
    """Classify every box the way ``--fix`` will treat it, so check and fix never disagree.

    Order of repairs: put swapped corners in order, clip to the image, then a box with no area
    left is dropped, then a box of the same class with IoU >= 0.99 to an earlier kept box of the
    same image is dropped. Works on a whole dataset at once (one numpy pass, not one per image).

    Args:
        boxes: (N, 4) xyxy pixels as written.
        labels: (N,) class indices.
        sizes: (width, height) of the image, or (N, 2) one per box; None (or inf) when unknown:
            then only negative coordinates are clipped.
        groups: (N,) image of each box, for duplicates; None when all boxes share one image.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    sizes = np.broadcast_to(
        np.asarray(np.inf if sizes is None else sizes, dtype=np.float64), (len(boxes), 2)
    )
    finite = np.isfinite(boxes).all(axis=1)
    safe = np.where(finite[:, None], boxes, 0.0)
    swapped = (safe[:, 0] > safe[:, 2]) | (safe[:, 1] > safe[:, 3])
    ordered = order_corners(safe)
    repaired = clip_boxes(ordered, sizes[:, :1], sizes[:, 1:])
    outside = (repaired != ordered).any(axis=1)
    zero_area = ~finite | (box_area(repaired) <= 0)
    groups = np.zeros(len(boxes), dtype=np.int64) if groups is None else np.asarray(groups)
    duplicate = _duplicates(repaired, np.asarray(labels), ~zero_area, groups)
    return BoxVerdict(finite, swapped, outside, zero_area, duplicate, repaired, sizes)


def _duplicates(
    boxes: np.ndarray, labels: np.ndarray, usable: np.ndarray, groups: np.ndarray
) -> np.ndarray:
    """Greedy in file order, within each (image, class) that holds more than one usable box."""
    duplicate = np.zeros(len(boxes), dtype=bool)
    candidates = np.flatnonzero(usable)
    keys = groups[candidates] * (int(labels.max(initial=0)) + 1) + labels[candidates]
    order = np.argsort(keys, kind="stable")  # file order kept inside each (image, class)
    starts = np.flatnonzero(np.diff(keys[order], prepend=-1, append=-1))
    for start, end in zip(starts[:-1], starts[1:], strict=True):
        if end - start < 2:
            continue
        members = candidates[order[start:end]]
        iou = box_iou_numpy(boxes[members], boxes[members])
        kept: list[int] = []
        for i in range(len(members)):
            if any(iou[i, j] >= DUPLICATE_IOU for j in kept):
                duplicate[members[i]] = True
            else:
                kept.append(i)
    return duplicate


def _box_issues(records: list[ImageRecord], sizes: list, format: str) -> list[Issue]:
    """Swapped, outside, zero-area and duplicate boxes of every record, judged in one pass."""
    counts = np.array([record.num_objects for record in records], dtype=np.int64)
    if counts.sum() == 0:
        return []
    owner = np.repeat(np.arange(len(records)), counts)
    known = [(np.inf, np.inf) if size is None else size for size in sizes]
    verdict = judge_boxes(
        np.concatenate([record.boxes for record in records]),
        np.concatenate([record.labels for record in records]),
        np.asarray(known, dtype=np.float64)[owner],
        owner,
    )
    flagged = verdict.swapped | verdict.outside | verdict.zero_area | verdict.duplicate
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    found = []
    for n in np.flatnonzero(flagged):
        record = records[owner[n]]
        k = int(n - first[owner[n]])
        index = object_indices(record)[k]
        box = describe_box(record.boxes[k], format)
        line = index + 1 if format == "yolo" else None  # YOLO objects are lines
        where = record.annotation_path or record.image_path
        found += [
            Issue(kind, where, f"{reason}: {box}", hint, object_index=index, line=line)
            for kind, reason, hint in _box_findings(verdict, int(n))
        ]
    return found


def _box_findings(verdict: BoxVerdict, k: int) -> list[tuple]:
    if not verdict.finite[k]:
        return [(kinds.ZERO_AREA, "coordinate is not a finite number", "--fix drops the box")]
    found = []
    if verdict.swapped[k]:
        found.append((kinds.SWAPPED_COORDS, "corners swapped (min > max)", "--fix swaps them"))
    if verdict.outside[k]:
        width, height = verdict.sizes[k]
        image = f"{width:g}x{height:g} image" if np.isfinite(width) else "image (size unknown)"
        reason = f"box outside the {image}"
        found.append((kinds.BOX_OUTSIDE, reason, "--fix clips it to the image"))
    if verdict.zero_area[k]:
        reason = "zero area" + (" after swap/clip" if found else "")
        found.append((kinds.ZERO_AREA, reason, "--fix drops the box (nothing to learn from)"))
    elif verdict.duplicate[k]:
        reason = f"duplicate of an earlier box of the same class (IoU >= {DUPLICATE_IOU})"
        found.append((kinds.DUPLICATE_BOX, reason, "--fix drops the later copy"))
    return found


# ---------------------------------------------------------------------------------------------
# The whole dataset


def check_dataset(
    data: str | Path,
    deep: bool = False,
    workers: int = 2,
    class_names: list[str] | None = None,
    case: str = "first",
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
    from .formats import detect_format

    image_dir = os.path.join(os.path.abspath(data), "JPEGImages")
    if not os.path.isdir(image_dir) or detect_format(data) != "voc":
        return []
    return [
        Path(os.path.join(image_dir, name))
        for name in sorted(os.listdir(image_dir))
        if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES
    ]


def read_whole_dataset(
    data: str | Path, class_names: list[str] | None = None, case: str = "first"
) -> tuple[RecordSet, list[Issue]]:
    """All records of a dataset, each annotation file read once, plus the readers' issues.

    VOC reads every file in ``Annotations/`` and YOLO merges its splits (``load_dataset``'s "all");
    COCO reads each split's JSON. Every record gets ``extra["object_indices"]``: the position of
    each object in its file (VOC ``<object>`` index, COCO ``annotations`` index, YOLO 0-based line),
    so reports and fixes point at the object the user wrote.
    """
    from .formats import load_dataset

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
    from .formats import detect_format
    from .formats.yolo import find_data_yaml, load_yaml

    kind = detect_format(data)
    if kind != "edgevision":
        return kind
    path = Path(data)
    return str(load_yaml(find_data_yaml(path) if path.is_dir() else path).get("format"))


def _read_coco_splits(data: str | Path, case: str) -> tuple[RecordSet, list[Issue]]:
    """Every COCO split file, merged onto one class list (the union, in first-seen order)."""
    from .formats import list_splits, load_dataset, remap_classes

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
        data = json.loads(json_path.read_text(encoding="utf-8"))
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
    from .formats import remap_classes

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
        found += _image_issues(record, info, where, size_known) if info is not None else []
        if record.num_objects == 0 and record.annotation_path not in has_object_issue:
            reason = "no objects: kept as a negative (background) image"
            found.append(Issue(kinds.NO_OBJECTS, where, reason, "nothing to fix"))
        sizes.append(effective_size(record, info))
    return found + _box_issues(record_set.records, sizes, record_set.format)


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
