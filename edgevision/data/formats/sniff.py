"""The front door to every detection dataset: detect what the user has and read one split.

Readers live in ``voc.py``, ``coco.py`` and ``yolo.py``; this module decides which one reads
``DATA`` (:func:`detect_format`), which splits it holds (:func:`list_splits`) and reads one
(:func:`load_dataset`).
"""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np

from edgevision.core.errors import DataError
from edgevision.core.issues import Issue
from edgevision.core.records import RecordSet
from edgevision.data.formats.coco import coco_split_name, read_coco
from edgevision.data.formats.common import remap_classes
from edgevision.data.formats.voc import read_voc
from edgevision.data.formats.yolo import (
    SPLITS,
    dataset_root,
    find_data_yaml,
    load_yaml,
    parse_names,
    read_yolo,
    yolo_config,
)

FORMATS = ("voc", "coco", "yolo")
_SPLIT_ORDER = ("train", "val", "test", "trainval", "all")
_EDGEVISION_KEYS = ("format", "path", "train", "val", "test", "trainval", "names", "case")
_LAYOUTS = (
    "a VOC root (Annotations/ + JPEGImages/), a COCO JSON (or a folder with annotations/*.json), "
    "or a data YAML (Ultralytics names: + train:, or edgevision format: voc|coco|yolo)"
)
_JSON_SNIFF_BYTES = 1 << 20


def _sniff_coco(path: Path) -> bool:
    """Whether a JSON file looks like COCO, from its first MiB (COCO files can be 500 MB)."""
    try:
        with open(path, "rb") as file:
            head = file.read(_JSON_SNIFF_BYTES)
    except OSError as e:
        raise DataError(path, f"cannot read ({e.strerror or e})", "check the path") from e
    return any(key in head for key in (b'"images"', b'"annotations"', b'"categories"'))


def _coco_jsons(folder: Path) -> list[Path]:
    """COCO files in ``folder/annotations`` (captions files hold no boxes and are skipped)."""
    found = sorted((folder / "annotations").glob("*.json"))
    return [p for p in found if not p.name.startswith("captions")]


def _describe(path: Path) -> str:
    if path.is_dir():
        entries = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
        return f"a folder holding {entries[:8] or 'nothing'}" + (" ..." if len(entries) > 8 else "")
    return f"a {path.suffix or 'suffix-less'} file" if path.exists() else "nothing (no such path)"


def _unknown(path: Path) -> DataError:
    return DataError(
        path, f"cannot tell the dataset format: found {_describe(path)}", f"give {_LAYOUTS}"
    )


def _yaml_kind(path: Path) -> str | None:

    config = load_yaml(path)
    if "format" in config:
        return "edgevision"
    has_split = any(config.get(s) for s in ("train", "val"))
    return "yolo" if has_split and ("names" in config or "nc" in config) else None


def _detect_folder(path: Path) -> str | None:

    yaml_path = find_data_yaml(path)
    yaml_kind = None if yaml_path is None else _yaml_kind(yaml_path)
    if yaml_kind == "edgevision":
        return "edgevision"
    if (path / "Annotations").is_dir():
        return "voc"
    if _coco_jsons(path):
        return "coco"
    if yaml_kind == "yolo" or ((path / "images").is_dir() and (path / "labels").is_dir()):
        return "yolo"
    return None


def detect_format(data: str | Path) -> str:
    """The layout of ``data``: "voc", "coco", "yolo" or "edgevision" (a data YAML naming one).

    A folder holding an edgevision ``data.yaml`` is read through it (that is how converted VOC
    keeps its class order); then ``Annotations/`` means VOC, ``annotations/*.json`` COCO, and an
    Ultralytics ``data.yaml`` or ``images/`` + ``labels/`` YOLO. A JSON file is COCO when its
    first MiB names ``images``, ``annotations`` or ``categories``.

    Raises:
        DataError: none of these; the message says what was found and the accepted layouts.
    """
    path = Path(data)
    suffix = path.suffix.lower()
    kind = None
    if path.is_dir():
        kind = _detect_folder(path)
    elif path.is_file() and suffix in (".yaml", ".yml"):
        kind = _yaml_kind(path)
    elif path.is_file() and suffix == ".json":
        kind = "coco" if _sniff_coco(path) else None
    if kind is None:
        raise _unknown(path)
    return kind


def _edgevision_config(path: Path) -> tuple[dict, Path, Path]:
    """(config, YAML path, dataset root) of an edgevision data YAML, keys checked."""

    yaml_path = find_data_yaml(path) if path.is_dir() else path
    config = load_yaml(yaml_path)
    if config.get("format") not in FORMATS:
        reason = f"format: {config.get('format')!r} is not one of {list(FORMATS)}"
        raise DataError(yaml_path, reason, "write format: voc, coco or yolo")
    unknown = [key for key in config if key not in _EDGEVISION_KEYS]
    if unknown and config["format"] != "yolo":  # YOLO YAMLs carry Ultralytics keys: passed on
        close = difflib.get_close_matches(str(unknown[0]), _EDGEVISION_KEYS, n=1)
        hint = f'did you mean "{close[0]}"?' if close else f"known keys: {list(_EDGEVISION_KEYS)}"
        raise DataError(yaml_path, f'unknown key "{unknown[0]}"', hint)
    return config, yaml_path, dataset_root(config, yaml_path)


def _order(splits) -> list[str]:
    known = [s for s in _SPLIT_ORDER if s in splits]
    return known + sorted(set(splits) - set(known))


def _voc_splits(root: Path) -> list[str]:
    """List files of ImageSets/Main, without per-class ``{class}_{split}.txt`` files."""
    list_dir = root / "ImageSets" / "Main"
    stems = [p.stem for p in list_dir.glob("*.txt")] if list_dir.is_dir() else []
    return _order([s for s in stems if "_" not in s]) or ["all"]


def _coco_split_files(location: Path) -> dict[str, Path]:
    """split -> COCO JSON for a file or a folder; ``instances_*`` wins when names collide."""

    files = [location] if location.is_file() else _coco_jsons(location)
    by_split: dict[str, Path] = {}
    for path in sorted(files, key=lambda p: not p.name.startswith("instances")):
        by_split.setdefault(coco_split_name(path), path)
    return by_split


def list_splits(data: str | Path) -> list[str]:
    """The splits ``data`` holds ("train", "val", ...; ["all"] when it is not split)."""

    path = Path(data)
    kind = detect_format(path)
    if kind == "edgevision":
        config, _, root = _edgevision_config(path)
        listed = [s for s in _EDGEVISION_KEYS[2:6] if config.get(s)]
        if listed or config["format"] == "yolo":
            return _order(listed)
        return _voc_splits(root) if config["format"] == "voc" else _order(_coco_split_files(root))
    if kind == "voc":
        return _voc_splits(path)
    if kind == "coco":
        return _order(_coco_split_files(path))
    config = yolo_config(path)[0]
    return [s for s in SPLITS if config.get(s)]


def _load_voc(root: Path, split: str, config: dict, names, case: str):

    list_name = config.get(split, split)  # an edgevision YAML may map train: -> another list
    return read_voc(root, None if split == "all" else str(list_name), names, case)


def _load_coco(root: Path, split: str, config: dict):

    spec = config.get(split)
    if spec:  # edgevision YAML: "train: ann.json" or "train: {json: ann.json, images: imgs}"
        spec = spec if isinstance(spec, dict) else {"json": spec}
        if not spec.get("json"):
            raise DataError(
                root, f"{split}: needs a json: entry", "write train: {json: ..., images: ...}"
            )
        images = spec.get("images")
        return read_coco(root / str(spec["json"]), root / str(images) if images else None, split)
    files = _coco_split_files(root)
    if split in files or (split == "all" and len(files) == 1):
        return read_coco(files.get(split) or next(iter(files.values())), None, split)
    found = {s: p.name for s, p in files.items()}
    reason = f'no COCO file for split "{split}" (split by file name: {found})'
    hint = "name files instances_{split}.json, or map splits in an edgevision data YAML, or split='all'"
    raise DataError(root, reason, hint)


def _load_yolo(location: Path, split: str, names):
    """One split, or every split merged for "all" (YOLO has no whole-dataset list)."""

    if split != "all":
        return read_yolo(location, split, names)
    config = yolo_config(location)[0]
    parts = [read_yolo(location, s, names) for s in SPLITS if config.get(s)]
    if not parts:
        raise DataError(location, "no train:/val:/test: entries", "add train: images/train")
    seen: dict[Path, object] = {}
    for record_set, _ in parts:
        for record in record_set.records:
            seen.setdefault(record.image_path, record)
    records = list(seen.values())
    for index, record in enumerate(records):
        record.image_id = index
    return parts[0][0].with_records(records, "all"), [i for _, found in parts for i in found]


def load_dataset(
    data: str | Path,
    split: str | None = "train",
    class_names: list[str] | None = None,
    case: str = "majority",
) -> tuple[RecordSet, list[Issue]]:
    """Read one split of whatever dataset ``data`` is (see :func:`detect_format`).

    Split rules: VOC reads ``ImageSets/Main/{split}.txt`` (``"all"``/None reads every
    annotation; a missing list file raises a DataError pointing at ``edgevision data split``).
    COCO reads the file whose name states the split (``instances_val2017.json`` is "val"); a
    single file whose name states none is split "all" and only ``"all"`` reads it, so training
    never silently evaluates on its own data. YOLO "all" merges train, val and test.

    An edgevision data YAML (``format: voc|coco|yolo``, ``path:`` relative to the YAML,
    optional ``train:/val:/test:`` (VOC list names; COCO JSON paths or ``{json:, images:}``),
    ``names:`` and ``case:``) fixes the class list and order; its ``case:`` wins over ``case``.

    Args:
        data: dataset path (folder, JSON or YAML).
        split: "train", "val", "test", "trainval", "all" (None = "all").
        class_names: fixed class list (overrides ``names:``); other classes are UNKNOWN_CLASS.
        case: "majority", "first" or "lower": how class spellings that differ in case fold
            (see :mod:`edgevision.data.formats.class_names`).

    Returns:
        (RecordSet with ``split`` set, Issues).

    Raises:
        DataError: unknown layout, unreadable file, or the split does not exist.
    """

    path = Path(data)
    kind, root, config = detect_format(path), path, {}
    if kind == "edgevision":
        config, yaml_path, root = _edgevision_config(path)
        kind = config["format"]
        root = yaml_path if kind == "yolo" else root
        class_names = class_names or parse_names(config, yaml_path)
        case = str(config.get("case", case))
    split = split or "all"
    if kind == "voc":
        record_set, issues = _load_voc(root, split, config, class_names, case)
    elif kind == "coco":
        record_set, issues = _load_coco(root, split, config)
        if class_names and class_names != record_set.class_names:
            record_set, dropped = remap_classes(record_set, class_names, case)
            issues += dropped
    else:
        record_set, issues = _load_yolo(root, split, class_names)
    record_set.split = split
    return record_set, issues


def sample_image_paths(data: str | Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` training images of ``data`` (every image when it has no split), a seeded random
    subset when there are more: what INT8 calibrates on.

    Raises:
        DataError: the dataset has no images.
    """
    split = "train" if "train" in list_splits(data) else "all"
    paths = [record.image_path for record in load_dataset(data, split=split)[0].records]
    if not paths:
        raise DataError(data, f"no {split} images to calibrate INT8 on", "check --data")
    if len(paths) > count:
        chosen = np.random.default_rng(seed).choice(len(paths), size=count, replace=False)
        paths = [paths[i] for i in sorted(chosen)]
    return paths
