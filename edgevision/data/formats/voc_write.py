"""Pascal VOC writer: records to ``Annotations/*.xml`` + ``JPEGImages/`` + ``ImageSets/Main``.

Writes the inverse of the reader's pixel convention (``xmin = x0 + 1, xmax = x1``) with the
shortest decimal that reads back to the same float32, so write -> read round trips are exact.
The reader is :mod:`edgevision.data.formats.voc`, which re-exports :func:`write_voc` and
:func:`record_to_xml`.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from edgevision.core.errors import DataError
from edgevision.core.fileio import atomic_write_text
from edgevision.core.records import ImageRecord, RecordSet


def _coordinate_text(value: float, offset: float) -> str:
    """Shortest decimal ``t`` with ``float32(float(t) - offset) == float32(value)``.

    The reader computes exactly ``float(t) - offset`` (offset 1 for xmin/ymin, 0 for xmax/ymax),
    so write -> read returns the same float32 (for any pixel value; sub-1e-6 magnitudes may
    round to 0 in ``value + 1``) and integers stay integers (VOC tools expect them).
    """
    target = np.float32(value)
    written = float(target) + offset
    for decimals in range(10):
        text = f"{written:.{decimals}f}"
        if np.float32(float(text) - offset) == target:
            return text
    return repr(written)


def record_to_xml(record: ImageRecord, class_names: list[str], folder: str = "JPEGImages") -> str:
    """One record as a VOC annotation document (objects in record order)."""
    lines = [
        "<annotation>",
        f"  <folder>{escape(folder)}</folder>",
        f"  <filename>{escape(record.image_path.name)}</filename>",
        "  <size>",
        f"    <width>{int(record.width)}</width>",
        f"    <height>{int(record.height)}</height>",
        "    <depth>3</depth>",
        "  </size>",
        f"  <segmented>{escape(str(record.extra.get('segmented', 0)))}</segmented>",
    ]
    for box, label, difficult in zip(record.boxes, record.labels, record.difficult, strict=True):
        x0, y0, x1, y1 = (float(v) for v in box)
        lines += [
            "  <object>",
            f"    <name>{escape(class_names[int(label)])}</name>",
            "    <pose>Unspecified</pose>",
            "    <truncated>0</truncated>",
            f"    <difficult>{int(bool(difficult))}</difficult>",
            "    <bndbox>",
            f"      <xmin>{_coordinate_text(x0, 1.0)}</xmin>",
            f"      <ymin>{_coordinate_text(y0, 1.0)}</ymin>",
            f"      <xmax>{_coordinate_text(x1, 0.0)}</xmax>",
            f"      <ymax>{_coordinate_text(y1, 0.0)}</ymax>",
            "    </bndbox>",
            "  </object>",
        ]
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


def write_voc(
    record_set: RecordSet,
    out_dir: str | Path,
    split: str | None = None,
    copy_images: bool = True,
) -> Path:
    """Write ``record_set`` as a VOC tree under ``out_dir``.

    Args:
        record_set: records to write; image stems must be unique (they name the XML files).
        out_dir: VOC root to create or extend.
        split: when given, the image stems are written to ``ImageSets/Main/{split}.txt``.
        copy_images: copy each image into ``JPEGImages/`` unless it is already there.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        DataError: two images share a stem (checked before anything is written).
    """
    out_dir = Path(out_dir)
    stems = [record.image_path.stem for record in record_set.records]
    duplicated = sorted(stem for stem, count in Counter(stems).items() if count > 1)[:5]
    if duplicated:
        hint = "rename the images so their names differ before the extension"
        raise DataError(out_dir, f"VOC needs unique image stems; duplicated: {duplicated}", hint)
    (out_dir / "Annotations").mkdir(parents=True, exist_ok=True)
    (out_dir / "JPEGImages").mkdir(parents=True, exist_ok=True)
    for record, stem in zip(record_set.records, stems, strict=True):
        target = out_dir / "JPEGImages" / record.image_path.name
        if copy_images and record.image_path.resolve() != target.resolve():
            shutil.copy2(record.image_path, target)
        xml = record_to_xml(record, record_set.class_names)
        atomic_write_text(out_dir / "Annotations" / f"{stem}.xml", xml)
    if split is not None:
        atomic_write_text(out_dir / "ImageSets" / "Main" / f"{split}.txt", "\n".join(stems) + "\n")
    return out_dir
