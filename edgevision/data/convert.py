"""Convert a dataset between VOC, COCO and YOLO, every split, keeping class names and their order.

What each target cannot hold (documented losses; the objects themselves are always kept):

- VOC: ``iscrowd`` and keypoints. The class order is kept in an edgevision ``data.yaml`` beside
  ``Annotations/`` (VOC files have no class list), which :func:`load_dataset` reads first.
- COCO: nothing of the record; ``difficult`` rides in a non-standard annotation field, keypoint
  ``flip_idx`` and OKS sigmas in a top-level ``"edgevision"`` dict (COCO has no field for them).
  Pixel coordinates keep 4 decimals.
- YOLO: ``difficult`` and ``iscrowd`` (no such columns). Coordinates keep
  :data:`YOLO_DECIMALS` decimals of the normalised value (5e-5 px on a 10,000 px image), and the
  data YAML states ``kpt_shape [K, 3]``, ``flip_idx``, ``kpt_names``, ``skeleton`` and
  ``kpt_oks_sigmas``, so pose data goes COCO -> YOLO -> COCO (and back) unchanged: boxes and
  keypoints within 1e-4 px (records hold float32: about 6e-5 px near 1000 px), visibility exact.
  Split "all" is written as "train" and "trainval" is left out when "train" and "val" exist
  (Ultralytics knows train/val/test only).
"""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml

from edgevision.core.errors import ConfigError, DataError
from edgevision.core.fileio import atomic_write_text
from edgevision.core.issues import Issue
from edgevision.core.records import RecordSet
from edgevision.data.formats import FORMATS, list_splits, load_dataset, remap_classes
from edgevision.data.formats.coco import write_coco
from edgevision.data.formats.voc import write_voc
from edgevision.data.formats.yolo import write_yolo

# Normalised decimals written to YOLO: 6 (Ultralytics' custom) would move a point by up to
# 3e-4 px on a 640 px image; 8 keeps every round trip within 1e-4 px up to 10,000 px.
YOLO_DECIMALS = 8


def _merged_class_names(sets: list[RecordSet]) -> list[str]:
    """One class list for every split; splits that differ (VOC discovers names per split) get
    the sorted union, the order VOC discovery gives the whole dataset."""
    lists = [s.class_names for s in sets]
    if all(names == lists[0] for names in lists):
        return list(lists[0])
    union = {name for names in lists for name in names}
    return sorted(union, key=lambda name: (name.lower(), name))


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        reason = "output folder exists and is not empty; converting never overwrites"
        raise DataError(out_dir, reason, "pass --out a new or empty folder")


def _yolo_split(split: str, splits: list[str]) -> str | None:
    """The YOLO split name to write ``split`` under, or None to leave it out."""
    if split == "all":
        return "train"
    if split == "trainval" and {"train", "val"} <= set(splits):
        return None  # the union of two written splits
    return split


def _write_voc_split(record_set: RecordSet, out_dir: Path, split: str) -> None:

    stems = [r.image_path.stem for r in record_set.records]
    duplicated = sorted({s for s in stems if stems.count(s) > 1})
    if duplicated:
        reason = f"VOC names files by image stem; these stems repeat: {duplicated[:5]}"
        raise DataError(record_set.root, reason, "rename the images, or convert to coco/yolo")
    write_voc(record_set, out_dir, split=None if split == "all" else split)


def _write_split(record_set: RecordSet, to: str, out_dir: Path, split: str, splits: list) -> None:

    if to == "voc":
        _write_voc_split(record_set, out_dir, split)
    elif to == "coco":
        out_json = out_dir / "annotations" / f"instances_{split}.json"
        write_coco(record_set, out_json, image_dir_name=f"images/{split}", out_root=out_dir)
    elif (yolo_split := _yolo_split(split, splits)) is not None:
        write_yolo(record_set, out_dir, split=yolo_split, decimals=YOLO_DECIMALS)


def convert_dataset(
    data: str | Path,
    to: str,
    out_dir: str | Path,
    splits: list[str] | None = None,
    issues: list[Issue] | None = None,
) -> Path:
    """Convert every split of ``data`` (or ``splits``) to ``to`` under a new ``out_dir``.

    Images are copied; the class list and its order are the same in every written split.

    Args:
        data: any dataset :func:`~edgevision.data.formats.load_dataset` reads.
        to: "voc", "coco" or "yolo".
        out_dir: new or empty folder.
        splits: split names to convert; default every split ``list_splits`` finds.
        issues: when given, the reading defects (objects the readers skipped) are appended, so
            the caller can report them: a conversion never drops an annotation silently.

    Returns:
        ``out_dir``, which ``load_dataset`` reads back directly.

    Raises:
        ConfigError: unknown ``to``.
        DataError: ``out_dir`` is not empty, the data cannot be read, or names collide.
    """
    if to not in FORMATS:
        close = difflib.get_close_matches(str(to), FORMATS, n=1)
        raise ConfigError(
            f"--to {to!r} is not one of {list(FORMATS)}"
            + (f"; did you mean {close[0]!r}?" if close else "")
        )
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    splits = list(splits or list_splits(data))
    loaded = [load_dataset(data, split) for split in splits]
    class_names = _merged_class_names([record_set for record_set, _ in loaded])
    for split, (record_set, found) in zip(splits, loaded, strict=True):
        if issues is not None:
            issues += found
        if record_set.class_names != class_names:
            record_set = remap_classes(record_set, class_names)[0]  # a superset: drops nothing
        _write_split(record_set, to, out_dir, split, splits)
    if to == "voc":
        config = {"format": "voc", "path": ".", "names": class_names}
        atomic_write_text(
            out_dir / "data.yaml", yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
        )
    return out_dir
