"""COCO detection / keypoint JSON plus an image folder.

Image folder (``image_dir=None``): COCO files live either beside their images or in an
``annotations/`` folder whose parent is the dataset root (``root/annotations/instances_train2017.json``
with images in ``root/train2017/`` or ``root/images/train2017/``). The reader tries, in order,
``root/images/<tag>``, ``root/<tag>``, ``root/images``, ``root`` and the JSON's own folder, where
``<tag>`` is the last ``_`` part of the JSON name (``train2017``), and takes the first folder that
holds any of the first five listed images. ``file_name`` may contain sub-folders but may not leave that folder.

Category ids: COCO ids may be sparse (1, 3, 7). Classes are the categories sorted by id, mapped to
0..C-1; the original ids travel with every record as ``extra["coco_category_ids"]`` (name -> id,
so they survive re-ordering of classes) and :func:`category_ids` gives them back, index-aligned,
for the writer and the COCO evaluator.

Keypoints: ``categories[].keypoints`` (names) and ``skeleton`` (1-based pairs, 0-based in the
RecordSet); each annotation's ``keypoints`` (x, y, v per point, pixels) and ``num_keypoints``
(kept per record as ``extra["num_keypoints"]`` for the doctor; the writer recounts it). COCO has
no field for ``flip_idx`` or OKS sigmas: they travel in a top-level ``"edgevision"`` dict (see
:mod:`.keypoint_schema`), and ``flip_idx`` comes from ``left_*``/``right_*`` names without it.

Losses on reading: segmentations, ``area`` (rewritten as the box area) and ``supercategory``.
VOC ``difficult`` flags survive as a non-standard ``"difficult": 1`` annotation field (read back
here, ignored by COCO tools).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from edgevision.core import issues as kinds
from edgevision.core.errors import DataError
from edgevision.core.fileio import atomic_write_text
from edgevision.core.image import read_image_size
from edgevision.core.issues import Issue
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.formats.common import (
    copy_images_to,
    image_names,
    read_json_file,
    resolve_inside,
)
from edgevision.data.formats.keypoint_schema import COCO_EXTRA_KEY, coco_extra, coco_keypoint_schema
from edgevision.data.formats.keypoint_schema import flip_index as flip_index  # re-exported
from edgevision.ops.boxes import box_area, xywh_to_xyxy, xyxy_to_xywh

CATEGORY_IDS_KEY = "coco_category_ids"
NUM_KEYPOINTS_KEY = "num_keypoints"  # record.extra: each object's stated num_keypoints, or None
_SPLIT_WORDS = {"train": "train", "val": "val", "valid": "val", "validation": "val"}
_SPLIT_WORDS |= {"test": "test", "trainval": "trainval", "minival": "val"}
_FIX_HINT = "fix the entry in the JSON, or run edgevision data check DATA for the full list"


def coco_split_name(json_path: str | Path) -> str:
    """The split a COCO file name states (``instances_val2017.json`` -> "val"), else "all".

    Falls back to the parent folder name (Roboflow writes ``train/_annotations.coco.json``).
    """
    json_path = Path(json_path)
    for token in re.split(r"[^a-z]+", json_path.stem.lower()):
        if token in _SPLIT_WORDS:
            return _SPLIT_WORDS[token]
    # The whole folder name only: "test_run/labels.json" does not make a test split.
    return _SPLIT_WORDS.get(json_path.parent.name.lower(), "all")


def default_image_dir(json_path: str | Path, images: list) -> Path:
    """The image folder for ``json_path`` by the rule in the module docstring."""
    json_path = Path(json_path)
    in_annotations = json_path.parent.name.lower() == "annotations"
    root = json_path.parent.parent if in_annotations else json_path.parent
    tag = json_path.stem.split("_")[-1]
    candidates = [root / "images" / tag, root / tag, root / "images", root, json_path.parent]
    names = [e["file_name"] for e in images[:5] if isinstance(e, dict) and "file_name" in e]
    for folder in candidates:
        paths = [resolve_inside(folder, str(name)) for name in names]
        if folder.is_dir() and any(p is not None and p.is_file() for p in paths):
            return folder
    return next((c for c in candidates[:3] if c.is_dir()), root)


def _load_json(json_path: Path) -> dict:
    data = read_json_file(json_path, "COCO JSON")
    if not isinstance(data, dict):
        raise DataError(json_path, "top level is not an object", "this is not a COCO file")
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(json_path, f'missing or non-list "{key}"', "this is not a COCO file")
    if not isinstance(data.get("annotations", []), list):
        raise DataError(json_path, '"annotations" is not a list', "this is not a COCO file")
    return data


def _parse_categories(categories: list, json_path: Path) -> tuple[list[str], dict]:
    """Class names sorted by category id, and category id -> class index."""
    seen: dict = {}
    for i, category in enumerate(categories):
        valid = isinstance(category, dict) and isinstance(category.get("name"), str)
        if not valid or not _is_int(category.get("id")):
            raise DataError(json_path, f"categories[{i}] needs an integer id and a name", _FIX_HINT)
        if category["id"] in seen:
            raise DataError(json_path, f"category id {category['id']} is used twice", _FIX_HINT)
        seen[category["id"]] = category["name"]
    ordered = sorted(seen)
    names = [seen[i] for i in ordered]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise DataError(json_path, f"category names used twice: {duplicated}", _FIX_HINT)
    return names, {cat_id: index for index, cat_id in enumerate(ordered)}


def _keypoint_schema(categories: list, json_path: Path) -> tuple[list | None, object]:
    """(keypoint names, skeleton as written) shared by every category that declares keypoints."""
    schemas = {
        json.dumps([c["keypoints"], c.get("skeleton") or []], sort_keys=True)
        for c in categories
        if c.get("keypoints")
    }
    if not schemas:
        return None, None
    if len(schemas) > 1:
        reason = "categories declare different keypoint lists; one dataset holds one schema"
        raise DataError(json_path, reason, "split the file by keypoint schema")
    names, skeleton = json.loads(schemas.pop())
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DataError(json_path, "keypoint names must be a list of strings", _FIX_HINT)
    return names, skeleton


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _image_size(entry: dict, path: Path, json_path: Path, issues: list) -> tuple[int, int] | None:
    """(width, height) as annotated; from the header (and an Issue) when absent or invalid."""
    width, height = entry.get("width"), entry.get("height")
    if _is_number(width) and _is_number(height) and width > 0 and height > 0:
        if int(width) != width or int(height) != height:
            reason = f"width/height {width}x{height} are not integers"
            issues.append(
                Issue(kinds.FLOAT_SIZE, json_path, reason, "run edgevision data check --fix")
            )
        return int(width), int(height)
    issues.append(Issue(kinds.MISSING_SIZE, path, "no valid width/height in the JSON; read header"))
    try:
        return read_image_size(path)
    except DataError as e:
        issues.append(Issue(kinds.UNREADABLE_IMAGE, path, e.reason, e.hint))
        return None


def _parse_images(images: list, json_path: Path, image_dir: Path, issues: list) -> tuple[dict, set]:
    """COCO image id -> partial record, plus the ids of images that were refused."""
    parsed: dict = {}
    refused: set = set()
    for i, entry in enumerate(images):
        valid = isinstance(entry, dict) and isinstance(entry.get("file_name"), str)
        if not valid or not isinstance(entry.get("id"), int | str):
            reason = f"images[{i}] needs an id and a file_name"
            issues.append(Issue(kinds.CORRUPT_ANNOTATION, json_path, reason, _FIX_HINT))
            continue
        image_id, name = entry["id"], entry["file_name"]
        if image_id in parsed or image_id in refused:
            reason = f"images[{i}]: image id {image_id} is used twice; the repeat is skipped"
            issues.append(Issue(kinds.CORRUPT_ANNOTATION, json_path, reason, _FIX_HINT))
            continue
        path = resolve_inside(image_dir, name)
        if path is None:
            reason = f'images[{i}]: file_name "{name}" leaves the image folder {image_dir}; refused'
            issues.append(Issue(kinds.PATH_ESCAPE, json_path, reason, _FIX_HINT))
        elif not path.is_file():
            reason = "image file not found; its annotations are skipped"
            issues.append(Issue(kinds.MISSING_IMAGE, path, reason, "check image_dir / file_name"))
        elif (size := _image_size(entry, path, json_path, issues)) is not None:
            parsed[image_id] = {"path": path, "size": size, "objects": []}
            continue
        refused.add(image_id)
    return parsed, refused


def _parse_keypoints(values, num_keypoints: int) -> tuple[np.ndarray, str | None]:
    """(K, 3) keypoints, all-invisible (and the reason) when the list is absent or malformed."""
    empty = np.zeros((num_keypoints, 3), dtype=np.float32)
    if values is None:
        return empty, None
    if not isinstance(values, list) or len(values) != 3 * num_keypoints:
        return empty, f"keypoints need {3 * num_keypoints} numbers"
    if not all(map(_is_number, values)):
        return empty, "keypoints hold a non-number"
    return np.asarray(values, dtype=np.float32).reshape(num_keypoints, 3), None


def _parse_annotation(ann: dict, category_index: dict) -> tuple | str:
    """(xywh, class, iscrowd, difficult) or why the annotation is unusable."""
    if _id_of(ann, "category_id") not in category_index:
        return f"unknown category id {ann.get('category_id')!r}"
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(map(_is_number, bbox)):
        return f"bbox {bbox!r} is not 4 finite numbers [x, y, w, h]"
    crowd, difficult = bool(ann.get("iscrowd", 0)), bool(ann.get("difficult", 0))
    return bbox, category_index[ann["category_id"]], crowd, difficult


def _id_of(entry: object, key: str) -> object:
    """``entry[key]`` when it can be an id (a number or a string), else None: a list or dict
    there is a broken file, and must not reach a dict lookup (TypeError: unhashable)."""
    value = entry.get(key) if isinstance(entry, dict) else None
    return value if isinstance(value, int | float | str) else None


def _attach_annotations(data: dict, json_path: Path, images: dict, refused: set, schema) -> list:
    """Append every usable annotation to its image's ``objects``; Issues for the rest.

    Malformed keypoints keep the box, with every keypoint invisible (v = 0), and a BAD_KEYPOINTS.
    """
    category_index, num_keypoints = schema
    issues = []
    for i, ann in enumerate(data.get("annotations", [])):
        if _id_of(ann, "image_id") in refused:
            continue  # already reported with the image
        if _id_of(ann, "image_id") not in images:
            image_id = ann.get("image_id") if isinstance(ann, dict) else None
            reason = f"annotations[{i}]: unknown image id {image_id!r}"
            issues.append(Issue(kinds.CORRUPT_ANNOTATION, json_path, reason, _FIX_HINT, i))
            continue
        parsed = _parse_annotation(ann, category_index)
        if isinstance(parsed, str):
            reason = f"annotations[{i}] (id {ann.get('id')!r}): {parsed}; object skipped"
            issues.append(Issue(kinds.CORRUPT_ANNOTATION, json_path, reason, _FIX_HINT, i))
            continue
        keypoints, problem = _parse_keypoints(ann.get("keypoints"), num_keypoints)
        if num_keypoints and problem:
            # Not "annotations[i]...": that prefix marks an object the reader left out.
            reason = f"keypoints of annotations[{i}] (id {ann.get('id')!r}): {problem}; kept"
            reason += " with every point unlabelled (v = 0)"
            issues.append(Issue(kinds.BAD_KEYPOINTS, json_path, reason, _FIX_HINT, i))
        stated = ann.get("num_keypoints") if num_keypoints and not problem else None
        images[ann["image_id"]]["objects"].append((*parsed, keypoints, stated))
    return issues


def _build_record(image_id, image: dict, json_path: Path, extra: dict, num_keypoints: int):
    objects = image["objects"]
    xywh = np.array([o[0] for o in objects], dtype=np.float64).reshape(-1, 4)
    # ImageRecord cannot hold (0, K, 3) yet (records.py reshape(n, -1, 3)): None when empty.
    keypoints = np.stack([o[4] for o in objects]) if num_keypoints and objects else None
    if num_keypoints:  # each annotation's own count, for the doctor (None when not written)
        extra = {**extra, NUM_KEYPOINTS_KEY: [o[5] for o in objects]}
    return ImageRecord(
        image_path=image["path"],
        width=image["size"][0],
        height=image["size"][1],
        boxes=xywh_to_xyxy(xywh),
        labels=[o[1] for o in objects],
        iscrowd=[o[2] for o in objects],
        difficult=[o[3] for o in objects],
        keypoints=keypoints,
        annotation_path=json_path,
        image_id=image_id,
        extra=dict(extra),
    )


def read_coco(
    json_path: str | Path, image_dir: str | Path | None = None, split: str = "all"
) -> tuple[RecordSet, list[Issue]]:
    """Read a COCO JSON into records (boxes xyxy float32 pixels) and the defects found.

    Args:
        json_path: COCO detection or keypoint JSON.
        image_dir: folder ``file_name`` is relative to; None applies the module-docstring rule.
        split: name recorded on the RecordSet (a COCO file holds one split).

    Returns:
        The RecordSet (``root`` = the image folder, records in JSON order, ``image_id`` = COCO id,
        keypoints (N, K, 3) when categories declare them) and the Issues. Images with no
        annotations are kept as negatives (NO_OBJECTS); refused images (escaping or missing
        files) and unusable annotations are reported and skipped.

    Raises:
        DataError: unreadable or invalid JSON (with line), or an unusable category table.
    """
    json_path = Path(json_path)
    data = _load_json(json_path)
    class_names, category_index = _parse_categories(data["categories"], json_path)
    kpt_names, skeleton = _keypoint_schema(data["categories"], json_path)
    num_keypoints = len(kpt_names) if kpt_names else 0
    keypoints, issues = None, []
    if kpt_names:
        keypoints, issues = coco_keypoint_schema(data, kpt_names, skeleton, json_path)
    image_dir = Path(image_dir) if image_dir else default_image_dir(json_path, data["images"])
    image_dir = image_dir.absolute()
    images, refused = _parse_images(data["images"], json_path, image_dir, issues)
    schema = (category_index, num_keypoints)
    issues += _attach_annotations(data, json_path, images, refused, schema)
    ids = {name: cat_id for cat_id, name in zip(sorted(category_index), class_names, strict=True)}
    extra = {CATEGORY_IDS_KEY: ids}
    records = []
    for image_id, image in images.items():
        records.append(_build_record(image_id, image, json_path, extra, num_keypoints))
        if not image["objects"]:
            reason = f"no annotations in {json_path.name}; kept as a negative image"
            issues.append(Issue(kinds.NO_OBJECTS, image["path"], reason))
    record_set = RecordSet(records, class_names, image_dir, "coco", split)
    if keypoints is not None:
        record_set.kpt_names, record_set.skeleton = keypoints.names, keypoints.skeleton
        record_set.flip_idx, record_set.kpt_sigmas = keypoints.flip_idx, keypoints.sigmas
    return record_set, issues


def category_ids(record_set: RecordSet) -> list[int]:
    """COCO category id of each class index: the ids read from COCO where known, else 1..C.

    Classes without a known id get ids after the largest known one, so ids stay unique.
    """
    by_name: dict = {}
    for record in record_set.records:
        by_name.update(record.extra.get(CATEGORY_IDS_KEY, {}))
    # The proposed RecordSet field (name -> id), which also survives a set with no records.
    by_name.update(getattr(record_set, "category_ids", None) or {})
    ids = [by_name.get(name) for name in record_set.class_names]
    known = [i for i in ids if i is not None]
    if not known or len(set(known)) != len(known):
        return list(range(1, record_set.num_classes + 1))
    next_id = max(known) + 1
    out = []
    for cat_id in ids:
        out.append(next_id if cat_id is None else cat_id)
        next_id += cat_id is None
    return out


def coco_image_ids(record_set: RecordSet) -> list[int]:
    """Integer COCO image ids: the records' own when all are unique ints, else 1..N."""
    ids = [r.image_id for r in record_set.records]
    if all(_is_int(i) for i in ids) and len(set(ids)) == len(ids):
        return [int(i) for i in ids]
    return list(range(1, len(ids) + 1))


def _round(values, decimals: int = 4) -> list[float]:
    return [round(float(v), decimals) for v in values]


def _annotations(record: ImageRecord, image_id: int, cat_ids: list[int], first_id: int) -> list:
    boxes = record.boxes.astype(np.float64)  # float64 so w = x1 - x0 adds no float32 error
    xywh, areas = xyxy_to_xywh(boxes), box_area(boxes)
    out = []
    for k in range(record.num_objects):
        annotation = {
            "id": first_id + k,
            "image_id": image_id,
            "category_id": cat_ids[int(record.labels[k])],
            "bbox": _round(xywh[k]),
            "area": round(float(areas[k]), 4),
            "iscrowd": int(record.iscrowd[k]),
        }
        if record.difficult[k]:  # edgevision extension (COCO tools ignore it): keeps VOC flags
            annotation["difficult"] = 1
        if record.keypoints is not None:
            points = record.keypoints[k]
            annotation["keypoints"] = [
                v for x, y, vis in points for v in (*_round((x, y)), int(vis))
            ]
            annotation["num_keypoints"] = int((points[:, 2] > 0).sum())
        out.append(annotation)
    return out


def _keypoint_names(record_set: RecordSet) -> list[str] | None:
    """The set's keypoint names; ``keypoint_k`` placeholders when only the points are known
    (YOLO pose data names no keypoints), so the points still reach the JSON."""
    if record_set.kpt_names:
        return list(record_set.kpt_names)
    shapes = [r.keypoints.shape[1] for r in record_set.records if r.keypoints is not None]
    return [f"keypoint_{k}" for k in range(shapes[0])] if shapes else None


def _categories(record_set: RecordSet, cat_ids: list[int]) -> list[dict]:
    kpt_names = _keypoint_names(record_set)
    categories = []
    for cat_id, name in zip(cat_ids, record_set.class_names, strict=True):
        category = {"id": cat_id, "name": name, "supercategory": ""}
        if kpt_names:
            category["keypoints"] = kpt_names
            category["skeleton"] = [[a + 1, b + 1] for a, b in record_set.skeleton or []]
        categories.append(category)
    return categories


def to_coco_dict(record_set: RecordSet, file_names: list[str] | None = None) -> dict:
    """The COCO ground-truth dict of ``record_set`` (what :func:`write_coco` saves).

    The COCO evaluator builds its ground truth from this too, so image and category ids match
    :func:`coco_image_ids` and :func:`category_ids`. Boxes and keypoints keep 4 decimals;
    ``area`` is the box area (segmentations are not kept).

    Args:
        record_set: the records.
        file_names: ``file_name`` per record; default the paths below the images' common folder.
    """
    records = record_set.records
    if file_names is None:
        file_names = image_names([r.image_path for r in records])[1]
    cat_ids, image_ids = category_ids(record_set), coco_image_ids(record_set)
    images, annotations = [], []
    for record, image_id, file_name in zip(records, image_ids, file_names, strict=True):
        size = {"width": int(record.width), "height": int(record.height)}
        images.append({"id": image_id, "file_name": file_name, **size})
        annotations += _annotations(record, image_id, cat_ids, len(annotations) + 1)
    categories = _categories(record_set, cat_ids)
    coco = {"images": images, "annotations": annotations, "categories": categories}
    extra = coco_extra(record_set.flip_idx, record_set.kpt_sigmas)
    if extra and any("keypoints" in category for category in categories):
        coco[COCO_EXTRA_KEY] = extra  # what COCO has no field for; COCO tools ignore the key
    return coco


def write_coco(
    record_set: RecordSet,
    out_json: str | Path,
    image_dir_name: str = "images",
    copy_images: bool = True,
    out_root: str | Path | None = None,
) -> Path:
    """Write ``record_set`` as a COCO JSON (atomically), copying the images beside it.

    Args:
        record_set: records to write.
        out_json: the JSON file to create or replace.
        image_dir_name: image folder, relative to ``out_root``; ``file_name`` is relative to it.
        copy_images: copy every image to ``out_root/image_dir_name/<file_name>``, where
            ``file_name`` is the image's path below the common folder of all the images (so
            sub-folders survive and names stay unique). When False nothing is copied: read the
            JSON back with ``image_dir`` = that common folder.
        out_root: folder holding ``image_dir_name``; default the JSON's folder.

    Returns:
        ``out_json`` as a Path.
    """
    out_json = Path(out_json)
    out_root = out_json.parent if out_root is None else Path(out_root)
    sources = [r.image_path for r in record_set.records]
    names = image_names(sources)[1]
    if copy_images:
        copy_images_to(sources, names, out_root / image_dir_name)
    atomic_write_text(out_json, json.dumps(to_coco_dict(record_set, names)))
    return out_json
