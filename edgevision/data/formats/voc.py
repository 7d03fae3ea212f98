"""Pascal VOC: ``Annotations/*.xml`` + ``JPEGImages/`` + optional ``ImageSets/Main/*.txt``.

Pixel convention: VOC coordinates are 1-based inclusive pixel indices. A box covering pixels
``xmin..xmax`` spans the continuous interval ``[xmin - 1, xmax]`` in our 0-based frame, so we read
``x0 = xmin - 1, x1 = xmax`` (same for y) and write the inverse. Round trips are exact.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from xml.sax.saxutils import escape

from ...fileio import atomic_write_text
from ..records import ImageRecord, RecordSet


def _fmt(value: float) -> str:
    """Integers stay integers (VOC tools expect them); other values keep 2 decimals."""
    rounded = round(float(value), 2)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:g}"


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
        "  <segmented>0</segmented>",
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
            f"      <xmin>{_fmt(x0 + 1)}</xmin>",
            f"      <ymin>{_fmt(y0 + 1)}</ymin>",
            f"      <xmax>{_fmt(x1)}</xmax>",
            f"      <ymax>{_fmt(y1)}</ymax>",
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
    """
    out_dir = Path(out_dir)
    (out_dir / "Annotations").mkdir(parents=True, exist_ok=True)
    (out_dir / "JPEGImages").mkdir(parents=True, exist_ok=True)
    stems = []
    for record in record_set.records:
        stem = record.image_path.stem
        stems.append(stem)
        target = out_dir / "JPEGImages" / record.image_path.name
        if copy_images and record.image_path.resolve() != target.resolve():
            shutil.copy2(record.image_path, target)
        xml = record_to_xml(record, record_set.class_names)
        atomic_write_text(out_dir / "Annotations" / f"{stem}.xml", xml)
    if len(set(stems)) != len(stems):
        dup = sorted({s for s in stems if stems.count(s) > 1})[:5]
        raise ValueError(f"VOC needs unique image stems; duplicated: {dup}")
    if split is not None:
        atomic_write_text(out_dir / "ImageSets" / "Main" / f"{split}.txt", "\n".join(stems) + "\n")
    return out_dir
