"""Dataset formats: files -> (RecordSet, issues). This package face re-exports; the code lives in
``sniff.py`` (which format, which splits, read one), ``common.py`` (what readers share) and one
module per format (``voc``, ``coco``, ``yolo``, ``imagefolder`` for classification)."""

from edgevision.data.formats.common import (
    copy_images_to,
    image_names,
    relative_inside,
    remap_classes,
    resolve_inside,
)
from edgevision.data.formats.sniff import FORMATS, detect_format, list_splits, load_dataset

__all__ = [
    "FORMATS",
    "copy_images_to",
    "detect_format",
    "image_names",
    "list_splits",
    "load_dataset",
    "relative_inside",
    "remap_classes",
    "resolve_inside",
]
