"""The doctor's image checks: stored size, EXIF orientation, missing and unreadable files.

Image checks are the slow part, so they run in a process pool over chunks of paths, started on
``JPEGImages/`` before the (single-process) annotation reading so both cores work at once. Header
mode reads only the file header (fast, but a truncated JPEG can pass); ``deep=True`` decodes every
image. Worker code is module-level functions with plain picklable results.

Also here: which size an annotation's boxes live in (:func:`effective_size`, the stored pixels
unless the annotation saw the EXIF-rotated view) and the image-level issues of one record.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from multiprocessing import get_context
from pathlib import Path

from edgevision.core import issues as kinds
from edgevision.core.errors import DataError
from edgevision.core.image import exif_orientation, read_image, read_image_size, suffix_mismatch
from edgevision.core.issues import Issue
from edgevision.core.records import ImageRecord

_ROTATED_VIEW = (5, 6, 7, 8)  # EXIF orientations that swap width and height
_EXIF_SNIFF_BYTES = 256 * 1024  # JPEG APP segments are <= 64 KiB each and come first


@dataclass(frozen=True)
class ImageInfo:
    """What inspecting one image file found: its stored size, EXIF orientation, or why it failed."""

    width: int = 0
    height: int = 0
    orientation: int = 1
    error: str | None = None
    missing: bool = False
    content: str | None = None  # the real format when the bytes disagree with the suffix

    @property
    def readable(self) -> bool:
        return self.error is None


def _inspect_image(path: str, deep: bool) -> ImageInfo:
    try:
        if deep:
            height, width = read_image(path).shape[:2]
        else:
            width, height = read_image_size(path)
    except DataError as e:
        return ImageInfo(error=e.reason, missing=not os.path.exists(path))
    return ImageInfo(int(width), int(height), _orientation(path), content=suffix_mismatch(path))


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


def image_issues(
    record: ImageRecord, info: ImageInfo, where: Path, size_known: bool
) -> list[Issue]:
    """Missing, unreadable, size-mismatch and EXIF issues of one record's image, at ``where``."""
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
    if info.content is not None:
        found.append(_suffix_issue(record.image_path, info.content))
    return found


def _suffix_issue(path: Path, content: str) -> Issue:
    reason = f"file holds {content} data but is named {path.suffix}; read as {content}"
    hint = f"rename it to .{content.lower()} (and its <filename>) so every tool reads it"
    return Issue(kinds.IMAGE_SUFFIX, path, reason, hint)


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
