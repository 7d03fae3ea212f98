"""Looking at the finder's items: a contact sheet of crops, and a marked copy for annotation tools.

:func:`contact_sheet` tiles a crop around each item, the annotated box drawn solid in its class
colour with its class tag and the suggested box dashed in magenta, captioned ``kind score``.

:func:`write_marked_copy` writes a new VOC or COCO dataset holding the user's annotations plus
the suggestions, marked, for review in an annotation tool; the user's files are never written.

- VOC: every object as read, with a ``<review kind= score= .../>`` child on each flagged one
  (``suggested_class``, ``note``; a ``<bndbox>`` inside it for a suggested box), and one extra
  ``<object>`` per missing item whose ``<review kind="missing" suggested="1" .../>`` marks it as
  a suggestion. A ``data.yaml`` keeps the class order.
- COCO: one JSON (``annotations/instances_<split>.json``, or ``label_review.json`` for an
  unsplit set) whose flagged annotations carry a ``"review"`` dict and whose missing items are
  added as annotations with ``"review": {"suggested": true, ...}``.

Images are hard-linked into the copy (copied where the file system refuses links): the VOC and
COCO readers, and annotation tools, look for images beside the annotations. A link costs no
space; this module never writes an image, so the links leave the user's images as they are (a
tool that edits images in place would edit both).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree

import cv2
import defusedxml.ElementTree as SafeElementTree
import numpy as np
import yaml

from edgevision.analysis.review_item import ReviewItem, item_file
from edgevision.core.errors import ConfigError
from edgevision.core.fileio import atomic_write_bytes, atomic_write_text
from edgevision.core.image import read_image
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.formats import image_names
from edgevision.data.formats.coco import category_ids, to_coco_dict
from edgevision.data.formats.voc import record_to_xml, write_voc
from edgevision.ops.boxes import box_area, xyxy_to_xywh
from edgevision.viz.draw import draw_detections, image_grid

SUGGESTED_COLOUR = (255, 0, 255)  # magenta: no class colour in the palette is close to it
MARKED_FORMATS = ("voc", "coco")
_CAPTION = 18  # pixels above each crop for "kind score"
_STANDARD_SPLITS = ("train", "val", "test", "trainval")

__all__ = ["MARKED_FORMATS", "SUGGESTED_COLOUR", "contact_sheet", "write_marked_copy"]


def _record_indices(items: Sequence[ReviewItem], record_set: RecordSet) -> list[int]:
    """The record index of every item (by ``image_index``, else by ``file``), items checked.

    Raises:
        ConfigError: an item names no image, object or class of ``record_set``.
    """
    records = record_set.records
    by_file = {item_file(record_set.root, r.image_path): i for i, r in enumerate(records)}
    indices = []
    for item in items:
        index = item.image_index if 0 <= item.image_index < len(record_set) else None
        index = by_file.get(item.file) if index is None else index
        if index is None:
            raise ConfigError(
                f"review item for {item.file!r} names no image of this record set; "
                "pass the record set the items were found on"
            )
        _check_item(item, record_set.records[index].num_objects, record_set.class_names)
        indices.append(index)
    return indices


def _check_item(item: ReviewItem, num_objects: int, class_names: list[str]) -> None:
    where = f"review item {item.kind} for {item.file!r}"
    if item.object_index is not None and item.object_index >= num_objects:
        raise ConfigError(
            f"{where} names object {item.object_index}, but the image has {num_objects}; "
            "the items do not belong to this record set"
        )
    unknown = [n for n in (item.class_name, item.suggested_class) if n and n not in class_names]
    if unknown:
        raise ConfigError(f"{where}: class {unknown[0]!r} is not one of {class_names}")
    if item.kind == "missing" and (item.suggested_box is None or not item.suggested_class):
        raise ConfigError(f"{where}: a missing item needs a suggested box and class")


# ---------------------------------------------------------------------------------------------
# Contact sheet


def contact_sheet(
    items: Sequence[ReviewItem],
    record_set: RecordSet,
    path: str | Path,
    top: int = 48,
    columns: int = 8,
    cell: int = 192,
) -> Path:
    """Save a grid of crops around the first ``top`` items (PNG or JPEG by ``path``'s suffix).

    Args:
        items: findings, most certain first (as ``find_label_issues`` returns them).
        record_set: the records the items point at (images are read from it).
        path: image file to write (atomically).
        top: how many items to show.
        columns, cell: grid columns and the side of each square tile in pixels.

    Returns:
        ``path``; the image is ``ceil(n / columns) * cell`` high and ``columns * cell`` wide
        (one tile saying so when there are no items).
    """
    suffix = Path(path).suffix.lower()
    if suffix not in (".png", ".jpg", ".jpeg"):
        raise ConfigError(f"contact sheet {path}: use a .png or .jpg file name")
    shown = list(items[:top])
    tiles, cached = [], (None, None)
    for item, index in zip(shown, _record_indices(shown, record_set), strict=True):
        if cached[0] != index:
            cached = (index, read_image(record_set.records[index].image_path))
        tiles.append(_tile(item, cached[1], record_set, cell))
    if not tiles:
        tiles = [_caption(np.full((cell, cell, 3), 255, np.uint8), "no label issues")]
    grid = image_grid(tiles, columns=min(columns, len(tiles)), cell=cell)
    ok, encoded = cv2.imencode(suffix, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ConfigError(f"contact sheet {path}: OpenCV could not encode the image")
    return atomic_write_bytes(path, encoded.tobytes())


def _tile(item: ReviewItem, image: np.ndarray, record_set: RecordSet, cell: int) -> np.ndarray:
    """One ``cell`` x ``cell`` tile: the crop, scaled, with both boxes and the caption."""
    boxes = [np.asarray(b, np.float64) for b in (item.box, item.suggested_box) if b is not None]
    x0, y0, x1, y1 = _crop_window(np.stack(boxes), image.shape[1], image.shape[0])
    crop = image[y0:y1, x0:x1]
    scale = min(cell / crop.shape[1], (cell - _CAPTION) / crop.shape[0])
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    canvas = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    shift = np.array([x0, y0, x0, y0], dtype=np.float64)
    if item.box is not None:
        label = record_set.class_names.index(item.class_name)
        annotated = (np.asarray(item.box) - shift) * scale
        canvas = draw_detections(
            canvas, annotated[None], np.array([label]), None, record_set.class_names
        )
    if item.suggested_box is not None:
        _dashed_box(canvas, (np.asarray(item.suggested_box) - shift) * scale)
    tile = np.full((cell, cell, 3), 255, dtype=np.uint8)
    tile[_CAPTION : _CAPTION + canvas.shape[0], : canvas.shape[1]] = canvas
    suggestion = f" -> {item.suggested_class}" if item.suggested_class else ""
    return _caption(tile, f"{item.kind} {item.score:.2f}{suggestion}")


def _crop_window(boxes: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """Integer crop around (M, 4) boxes with half their size (at least 16 px) of context."""
    low, high = boxes[:, :2].min(axis=0), boxes[:, 2:].max(axis=0)
    margin = np.maximum((high - low) * 0.5, 16.0)
    low = np.clip(np.floor(low - margin), 0, [width - 1, height - 1]).astype(int)
    high = np.clip(np.ceil(high + margin), low + 1, [width, height]).astype(int)
    return int(low[0]), int(low[1]), int(high[0]), int(high[1])


def _dashed_box(canvas: np.ndarray, box: np.ndarray, dash: int = 6) -> None:
    """A dashed rectangle in :data:`SUGGESTED_COLOUR`, drawn in place."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    thickness = max(1, round(sum(canvas.shape[:2]) / 300))
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
    for (ax, ay), (bx, by) in zip(corners[:-1], corners[1:], strict=True):
        length = max(abs(bx - ax), abs(by - ay), 1)
        for start in range(0, length, 2 * dash):
            end = min(start + dash, length)
            p = (ax + (bx - ax) * start // length, ay + (by - ay) * start // length)
            q = (ax + (bx - ax) * end // length, ay + (by - ay) * end // length)
            cv2.line(canvas, p, q, SUGGESTED_COLOUR, thickness, cv2.LINE_AA)


def _caption(tile: np.ndarray, text: str) -> np.ndarray:
    cv2.putText(
        tile, text, (3, _CAPTION - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA
    )
    return tile


# ---------------------------------------------------------------------------------------------
# Marked copy


def write_marked_copy(
    items: Sequence[ReviewItem], record_set: RecordSet, out_dir: str | Path, fmt: str
) -> Path:
    """Write the annotations plus the marked suggestions as a new VOC or COCO dataset.

    Args:
        items: findings on ``record_set``.
        record_set: the annotations to copy (as read; the user's files are not touched).
        out_dir: a new or empty folder outside the dataset root.
        fmt: "voc" or "coco" (module docstring says what each holds).

    Returns:
        What :func:`~edgevision.data.formats.load_dataset` reads the copy from: ``out_dir``.

    Raises:
        ConfigError: unknown ``fmt``, an ``out_dir`` overlapping the dataset or not empty, or
            items that do not belong to ``record_set``.
        DataError: VOC and two images share a file stem (VOC names annotations by stem).
    """
    if fmt not in MARKED_FORMATS:
        raise ConfigError(f"marked copy format {fmt!r} is not one of {list(MARKED_FORMATS)}")
    out_dir = Path(out_dir)
    _check_out_dir(out_dir, record_set)
    by_record: dict[int, list[ReviewItem]] = {}
    for item, index in zip(items, _record_indices(items, record_set), strict=True):
        by_record.setdefault(index, []).append(item)
    if fmt == "voc":
        _write_marked_voc(by_record, record_set, out_dir)
    else:
        _write_marked_coco(by_record, record_set, out_dir)
    return out_dir


def _check_out_dir(out_dir: Path, record_set: RecordSet) -> None:
    out, root = out_dir.resolve(), Path(record_set.root).resolve()
    if out == root or root in out.parents or out in root.parents:
        raise ConfigError(
            f"marked copy folder {out} overlaps the dataset {root}; choose a separate folder"
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"marked copy folder {out} exists and is not empty; choose a new one")


def _link_images(sources: list[Path], names: list[str], folder: Path) -> None:
    """Hard-link (else copy) each image to ``folder / name``; images are never edited."""
    for source, name in zip(sources, names, strict=True):
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)


def _review_attributes(item: ReviewItem) -> dict[str, str]:
    attributes = {"kind": item.kind, "score": f"{item.score:.4f}"}
    if item.suggested_class:
        attributes["suggested_class"] = item.suggested_class
    if item.note:
        attributes["note"] = item.note
    return attributes


def _with_missing(record: ImageRecord, items: list[ReviewItem], names: list[str]) -> ImageRecord:
    """``record`` with one object appended per missing item (suggested box and class)."""
    added = [item for item in items if item.kind == "missing"]
    if not added:
        return record
    return ImageRecord(
        record.image_path,
        record.width,
        record.height,
        np.concatenate([record.boxes, [item.suggested_box for item in added]]),
        np.concatenate([record.labels, [names.index(item.suggested_class) for item in added]]),
        np.concatenate([record.difficult, np.zeros(len(added), bool)]),
        extra=dict(record.extra),
    )


def _write_marked_voc(by_record: dict, record_set: RecordSet, out_dir: Path) -> None:
    names = record_set.class_names
    records = [
        _with_missing(record, by_record.get(index, []), names)
        for index, record in enumerate(record_set.records)
    ]
    split = record_set.split if record_set.split in _STANDARD_SPLITS else None
    write_voc(record_set.with_records(records), out_dir, split=split, copy_images=False)
    sources = [record.image_path for record in records]
    _link_images(sources, [path.name for path in sources], out_dir / "JPEGImages")
    config = {"format": "voc", "path": ".", "names": list(names)}
    atomic_write_text(
        out_dir / "data.yaml", yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    )
    for index, items in sorted(by_record.items()):
        xml = _marked_xml(records[index], record_set.records[index].num_objects, items, names)
        atomic_write_text(out_dir / "Annotations" / f"{records[index].image_path.stem}.xml", xml)


def _marked_xml(record: ImageRecord, num_original: int, items: list, names: list[str]) -> str:
    """The record's VOC document with a ``<review>`` child on every flagged or added object."""
    tree = SafeElementTree.fromstring(record_to_xml(record, names))
    objects = tree.findall("object")
    added = iter(objects[num_original:])
    for item in items:
        element = next(added) if item.kind == "missing" else objects[item.object_index]
        review = ElementTree.SubElement(element, "review", _review_attributes(item))
        if item.kind == "missing":
            review.set("suggested", "1")
        elif item.suggested_box is not None:
            review.append(_voc_bndbox(item.suggested_box, record, names))
    ElementTree.indent(tree)  # our own document: re-indent it whole, nested <bndbox> included
    return ElementTree.tostring(tree, encoding="unicode") + "\n"


def _voc_bndbox(box, record: ImageRecord, names: list[str]):
    """A ``<bndbox>`` for an xyxy box, written by the VOC writer (1-based pixel convention)."""
    single = ImageRecord(record.image_path, record.width, record.height, [box], [0])
    bndbox = SafeElementTree.fromstring(record_to_xml(single, names[:1])).find("object/bndbox")
    bndbox.tail = None
    return bndbox


def _write_marked_coco(by_record: dict, record_set: RecordSet, out_dir: Path) -> None:
    sources = [record.image_path for record in record_set.records]
    file_names = image_names(sources)[1]
    data = to_coco_dict(record_set, file_names)
    first = np.cumsum([0] + [record.num_objects for record in record_set.records])
    cat_ids = category_ids(record_set)
    image_ids = [entry["id"] for entry in data["images"]]
    added = []
    for index, items in sorted(by_record.items()):
        for item in items:
            review = {**_review_attributes(item), "score": round(item.score, 4)}
            if item.suggested_box is not None:
                review["suggested_bbox"] = _xywh(item.suggested_box)
            if item.kind == "missing":
                added.append(_suggested_annotation(item, image_ids[index], cat_ids, record_set))
                added[-1]["review"] = {**review, "suggested": True}
            else:
                data["annotations"][first[index] + item.object_index]["review"] = review
    next_id = max((a["id"] for a in data["annotations"]), default=0) + 1
    for offset, annotation in enumerate(added):
        annotation["id"] = next_id + offset
    data["annotations"] += added
    split = record_set.split if record_set.split in _STANDARD_SPLITS else None
    name = f"instances_{split}.json" if split else "label_review.json"
    _link_images(sources, file_names, out_dir / "images")
    atomic_write_text(out_dir / "annotations" / name, json.dumps(data, ensure_ascii=False))


def _xywh(box) -> list[float]:
    return [round(float(v), 4) for v in xyxy_to_xywh(np.asarray(box, dtype=np.float64))]


def _suggested_annotation(item: ReviewItem, image_id, cat_ids: list[int], record_set) -> dict:
    box = np.asarray(item.suggested_box, dtype=np.float64)
    return {
        "id": 0,  # numbered after every existing annotation
        "image_id": image_id,
        "category_id": cat_ids[record_set.class_names.index(item.suggested_class)],
        "bbox": _xywh(box),
        "area": round(float(box_area(box)), 4),
        "iscrowd": 0,
    }
