"""Make records training-ready without losing track of what was changed.

Records keep boxes exactly as annotated so the data doctor can report them; training needs boxes
that are ordered, inside the image and non-empty. Every change is counted in a report so training
can say "used 9,812 of 9,830 objects" instead of silently dropping annotations. The header probe
(:func:`probe_images`) finds missing, empty and non-image files before training, without decoding.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from edgevision.core.errors import DataError
from edgevision.core.image import exif_orientation, file_kind, read_image_size
from edgevision.core.records import ImageRecord, RecordSet, has_size
from edgevision.ops.boxes import clip_boxes, order_corners


def _report_template() -> dict[str, int]:
    return {
        "images": 0,  # records in the input
        "images_skipped": 0,  # image file missing: the record is left out
        "objects_annotated": 0,  # boxes in the input
        "objects_used": 0,  # boxes that reach training
        "swapped": 0,  # corners put back in x0 <= x1, y0 <= y1 order
        "clipped": 0,  # boxes moved inside the annotated image size
        "zero_area": 0,  # dropped: no width or no height left after clipping
        "degenerate": 0,  # dropped: at most 1 px wide or high (a click without a drag)
        "crowd": 0,  # dropped: COCO iscrowd regions are not single objects
        "keypoints_hidden": 0,  # labelled keypoints outside the image set to (0, 0, 0)
    }


def sanitize_record(record: ImageRecord, drop_crowd: bool = True) -> tuple[ImageRecord, dict]:
    """One record with ordered, clipped, non-empty boxes, and the counts of what changed.

    Clipping uses the annotated ``width``/``height``; when they are unknown (0) boxes are only
    ordered here and the dataset clips them to the decoded image.
    """
    counts = _report_template()
    boxes = record.boxes
    ordered = order_corners(boxes)
    counts["swapped"] = int(np.any(ordered != boxes, axis=1).sum())
    clipped = ordered
    if record.width > 0 and record.height > 0:
        clipped = clip_boxes(ordered, record.width, record.height)
    counts["clipped"] = int(np.any(clipped != ordered, axis=1).sum())
    has_area = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    usable = has_size(clipped)
    keep = usable & ~record.iscrowd if drop_crowd else usable
    counts["zero_area"] = int((~has_area).sum())
    counts["degenerate"] = int((has_area & ~usable).sum())
    counts["crowd"] = int((usable & ~keep).sum())
    cleaned = ImageRecord(**{**vars(record), "boxes": clipped}).select(keep)
    if cleaned.keypoints is not None and record.width > 0 and record.height > 0:
        counts["keypoints_hidden"] = _hide_outside(cleaned, record.width, record.height)
    counts["objects_annotated"] = record.num_objects
    counts["objects_used"] = cleaned.num_objects
    return cleaned, counts


def _hide_outside(record: ImageRecord, width: int, height: int) -> int:
    """Zero labelled keypoints outside the image, in place; returns how many."""
    x, y, visibility = (record.keypoints[..., i] for i in range(3))
    outside = (visibility > 0) & ((x < 0) | (x > width) | (y < 0) | (y > height))
    record.keypoints[outside] = 0.0
    return int(outside.sum())


def sanitize_records(
    record_set: RecordSet, drop_crowd: bool = True
) -> tuple[RecordSet, dict[str, int]]:
    """Sanitize every record (see :func:`sanitize_record`) and skip records whose image is missing.

    Images are not opened here: :func:`probe_images` reads their headers first (the dataset runs
    it, so records arrive with their real sizes), and images that only fail on decode are found
    and skipped by the dataset.

    Returns:
        (the cleaned RecordSet, report of counts; keys documented in ``_report_template``).
    """
    report = _report_template()
    report["images"] = len(record_set)
    kept = []
    for record in record_set.records:
        if not record.image_path.is_file():
            report["images_skipped"] += 1
            report["objects_annotated"] += record.num_objects
            continue
        cleaned, counts = sanitize_record(record, drop_crowd)
        for key, value in counts.items():
            report[key] += value
        kept.append(cleaned)
    return record_set.with_records(kept), report


def probe_image(path: Path) -> tuple[int, int] | str:
    """``(width, height)`` of the stored pixel grid from the header, or why the image is unusable.

    No pixels are decoded, so a whole dataset is probed in well under a second per thousand
    images; a file whose header is fine but whose data is truncated is only found on decode.
    """
    try:
        if os.stat(path).st_size == 0:
            return "image file is empty (0 bytes)"
        return read_image_size(path)
    except FileNotFoundError:
        return "image file not found"
    except OSError as e:
        return f"cannot read image ({e.strerror or e})"
    except DataError as e:
        # Pillow names the file in its message; the caller prints the path once, in front.
        return e.reason.replace(f" {str(path)!r}", "").replace(str(path), "file")


def probe_images(
    records: list[ImageRecord],
) -> tuple[list[ImageRecord], dict[Path, str], list[Path]]:
    """Read every image header before training, so unusable images are known (and listed) up front.

    Readable records get the header size: it is the grid the decoder returns (EXIF orientation
    ignored, as by ``imageio.read_image``), so boxes are clipped to the real image even when the
    annotated size is missing or wrong.

    Returns:
        (records, header sizes set where readable; unusable image path -> reason: missing, empty
        or not an image; JPEGs whose EXIF orientation (2-8) would turn or mirror the view — they
        are used as stored, like their annotations).
    """
    probed, unusable, exif_turned = [], {}, []
    for record in records:
        size = probe_image(record.image_path)
        if isinstance(size, str):
            unusable[record.image_path] = size
            probed.append(record)
            continue
        if (record.width, record.height) != size:
            record = dataclasses.replace(record, width=int(size[0]), height=int(size[1]))
        # Cameras write orientation into JPEGs; reading it from other formats decodes pixels.
        if file_kind(record.image_path) == "JPEG" and exif_orientation(record.image_path) > 1:
            exif_turned.append(record.image_path)
        probed.append(record)
    return probed, unusable, exif_turned
