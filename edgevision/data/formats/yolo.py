"""Ultralytics YOLO: a data YAML, image folders or list files, and one ``.txt`` label per image.

Data YAML keys (read with ``yaml.safe_load``): ``path`` (dataset root; relative to the YAML's folder
here, unlike Ultralytics which resolves it against the working or datasets folder), ``train`` /
``val`` / ``test`` (each a folder of images, a ``.txt`` list of image paths, or a list of those,
relative to ``path``), ``names`` (list or ``{0: a, 1: b}``), and for pose ``kpt_shape``
``[K, 2|3]``, ``flip_idx``, ``kpt_names``, ``skeleton`` and ``kpt_oks_sigmas`` (read and judged
by :mod:`.keypoint_schema`; the writer writes them all, ``kpt_shape`` as ``[K, 3]``). A relative
path in a list file is relative to the list's folder (then to ``path``); no listed image may lie
outside ``path``.

Labels: ``.../images/.../x.jpg`` has labels at ``.../labels/.../x.txt`` (the last ``/images/`` is
replaced, as in Ultralytics). One object per line: ``class cx cy w h`` normalised to [0, 1], then
``x y [v]`` per keypoint for pose (without ``v``, a labelled point gets v = 2 and ``0 0`` v = 0;
a line with another number of keypoints than ``kpt_shape`` is skipped as BAD_KEYPOINTS); a
detection line with more than 5 numbers is read as a polygon ``class x1 y1 x2 y2 ...`` and
becomes its bounding box. A missing label file means a background image. YOLO has no difficult
or crowd flag: those flags are lost on writing.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import yaml

from edgevision.core import issues as kinds
from edgevision.core.errors import DataError
from edgevision.core.fileio import atomic_write_text
from edgevision.core.image import IMAGE_SUFFIXES, read_image_size
from edgevision.core.issues import Issue
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.formats.common import (
    copy_images_to,
    image_names,
    relative_inside,
    remap_classes,
)
from edgevision.data.formats.keypoint_schema import (
    KeypointSchema,
    yaml_keypoint_entries,
    yaml_keypoint_schema,
)
from edgevision.ops.boxes import cxcywh_to_xyxy, xyxy_to_cxcywh

SPLITS = ("train", "val", "test")
_YAML_NAMES = ("data.yaml", "dataset.yaml", "data.yml")
_LINE_HINT = "fix or delete the line (format: class cx cy w h, normalised)"
_KEYPOINT_HINT = "give every object the kpt_shape number of keypoints (unlabelled ones as 0 0 0)"
_FLOAT32_MAX = float(np.finfo(np.float32).max)
# PyYAML's safe constructors let Python's own errors out: "!!int :" (IndexError), "!!timestamp
# 2020-13-45" (ValueError), "!!timestamp x" (AttributeError); deep nesting recurses past the limit.
_YAML_VALUE_ERRORS = (ValueError, LookupError, TypeError, AttributeError, RecursionError)
# Aliases let a 1 kB YAML expand to 10**9 values (a "billion laughs"): any str() or loop over it
# would run for hours. A data YAML holds a few hundred values; LVIS-size name lists fit easily.
_MAX_YAML_VALUES = 100_000
_MAX_INT_BITS = 10_000  # Python refuses to print an int above 4300 digits (about 14,000 bits)
_MAX_CLASSES = 100_000


def load_yaml(path: Path) -> dict:
    """A YAML mapping read safely; DataError with the line on a syntax error.

    Also DataError (never a Python error from PyYAML's constructors) for a value PyYAML cannot
    build (``!!int ''``, a 5000-digit int, nesting deeper than the recursion limit) and for a
    YAML whose aliases expand past ``_MAX_YAML_VALUES`` values. ``!!python/...`` tags are
    refused by the safe loader before anything runs.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(path, f"cannot read the data YAML ({e})", "check the path") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        reason = f"invalid YAML: {getattr(e, 'problem', None) or e}"
        raise DataError(path, reason, "fix the YAML syntax", line) from e
    except _YAML_VALUE_ERRORS as e:
        reason = f"invalid YAML value ({type(e).__name__}: {e})"
        hint = "fix that value (a !!tag, a number of thousands of digits, or deep nesting)"
        raise DataError(path, reason, hint) from e
    if not isinstance(data, dict):
        raise DataError(
            path, "the data YAML is not a mapping of keys", "see the Ultralytics format"
        )
    _check_yaml_size(data, path)
    return data


def _check_yaml_size(data: dict, path: Path) -> None:
    """DataError when aliases expand ``data`` past ``_MAX_YAML_VALUES`` or an int is too wide.

    The walk counts every value each time an alias reaches it, so it stops on an alias bomb or
    a self-referencing list (``&a [*a]``) after at most ``_MAX_YAML_VALUES`` steps.
    """
    stack: list = [data]
    for _ in range(_MAX_YAML_VALUES):
        if not stack:
            return
        value = stack.pop()
        if isinstance(value, dict):
            stack += [*value.keys(), *value.values()]
        elif isinstance(value, list | set):
            stack += value
        elif isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
            raise DataError(path, "an integer has thousands of digits", "fix the number")
    if stack:
        reason = f"the YAML expands to more than {_MAX_YAML_VALUES:,} values through aliases"
        raise DataError(path, reason, "write the values out, without & anchors and * aliases")


def find_data_yaml(folder: Path) -> Path | None:
    """``data.yaml`` (or ``dataset.yaml`` / ``data.yml``) inside ``folder``, if any."""
    return next((folder / n for n in _YAML_NAMES if (folder / n).is_file()), None)


def dataset_root(config: dict, yaml_path: Path) -> Path:
    """``path:`` resolved against the YAML's folder (absolute kept); the folder when absent."""
    root = Path(os.path.abspath(yaml_path.parent / str(config.get("path") or ".")))
    if not os.path.isdir(root):  # False for any OSError (name too long) or a NUL byte
        hint = "set path: to the dataset folder (absolute, or relative to the YAML)"
        raise DataError(yaml_path, f"dataset path {root} is not a folder", hint)
    return root


def parse_names(config: dict, yaml_path: Path) -> list[str] | None:
    """Class names from ``names`` (list or {index: name}), else ``nc`` placeholders, else None."""
    names = config.get("names")
    if isinstance(names, dict):
        # Compared as text, never int(): "²".isdigit() is True but int("²") raises.
        by_text = {str(key): value for key, value in names.items()}
        expected = [str(index) for index in range(len(names))]
        if set(by_text) != set(expected):  # {0: a, "0": b} collapses to one key: refused too
            reason = f"names keys {list(names)} are not 0..{len(names) - 1}"
            raise DataError(yaml_path, reason, "number the classes 0, 1, 2, ... without gaps")
        return [str(by_text[key]) for key in expected]
    if isinstance(names, list):
        return [str(n) for n in names]
    count = config.get("nc")
    if isinstance(count, int):
        if count > _MAX_CLASSES:  # range(10**12) placeholders would exhaust memory
            reason = f"nc: is more than {_MAX_CLASSES:,} classes"
            raise DataError(yaml_path, reason, "set nc: to the number of classes, or list names:")
        return [f"class{i}" for i in range(count)]
    return None


def label_path(image_path: Path) -> Path:
    """Ultralytics' rule: the last ``/images/`` becomes ``/labels/`` and the suffix ``.txt``."""
    text = str(image_path)
    images, labels = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    if images in text:
        head, tail = text.rsplit(images, 1)
        text = head + labels + tail
    return Path(text).with_suffix(".txt")


def _list_folder(folder: Path) -> list[Path]:
    files = (p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return sorted(files)


def _list_file(list_path: Path, root: Path, issues: list) -> list[Path]:
    """Images named in a list file, in file order; escaping or missing entries become Issues."""
    paths = []
    try:
        lines = list_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        reason = f"cannot read the image list ({e})"
        raise DataError(list_path, reason, "save it as UTF-8 text, one image a line") from e
    for number, line in enumerate(lines, start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        target = Path(os.path.normpath(os.path.join(list_path.parent.absolute(), entry)))
        if not os.path.isfile(target) and not os.path.isabs(entry):
            target = Path(os.path.normpath(os.path.join(root, entry)))
        if relative_inside(root, target) is None:
            reason = f'"{entry}" lies outside the dataset path {root}; refused'
            issues.append(
                Issue(kinds.PATH_ESCAPE, list_path, reason, "list images inside path:", line=number)
            )
        elif not os.path.isfile(target):  # not Path.is_file: "name too long" raises there
            reason = f'image "{entry}" not found'
            issues.append(
                Issue(kinds.MISSING_IMAGE, list_path, reason, "fix the list", line=number)
            )
        else:
            paths.append(target)
    return paths


def split_images(config: dict, split: str, root: Path, yaml_path: Path, issues: list) -> list[Path]:
    """Image paths of ``split`` from its folder(s) and list file(s), without repeats."""
    spec = config.get(split)
    if not spec:
        present = [s for s in SPLITS if config.get(s)]
        reason = f'no "{split}:" entry (splits present: {present or "none"})'
        raise DataError(yaml_path, reason, f"add {split}: images/{split} to the YAML")
    paths: list[Path] = []
    for item in spec if isinstance(spec, list) else [spec]:
        location = root / str(item)
        # os.path, not Path.is_dir(): an entry longer than NAME_MAX makes the latter raise.
        if os.path.isdir(location):
            paths += _list_folder(location)
        elif os.path.isfile(location) and location.suffix.lower() == ".txt":
            paths += _list_file(location, root, issues)
        else:
            reason = f'{split}: "{item}" is neither a folder nor a .txt list under {root}'
            raise DataError(yaml_path, reason, "fix the entry or path:")
    return list(dict.fromkeys(paths))


def _parse_line(
    values: list[str], size: tuple[int, int], num_classes: int, kpt_shape
) -> tuple | str:
    """(xyxy (4,), class, keypoints (K, 3) | None) from one label line, or why it is unusable."""
    try:
        numbers = np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        return "a value is not a number"
    if not np.isfinite(numbers).all():
        return "a value is not finite"
    if numbers[0] != math.floor(numbers[0]):
        return "class id is not an integer"
    num_keypoints, dims = kpt_shape or (0, 0)
    expected = 5 + num_keypoints * dims
    polygon = not kpt_shape and len(numbers) >= 7 and len(numbers) % 2 == 1
    if len(numbers) != expected and not polygon:
        if num_keypoints and len(numbers) > 5 and (len(numbers) - 5) % dims == 0:
            found = (len(numbers) - 5) // dims
            return f"{found} keypoints, but kpt_shape says {num_keypoints} ({len(numbers)} columns)"
        return f"{len(numbers)} columns, expected {expected}"
    if not 0 <= numbers[0] < num_classes:
        return f"class id {int(numbers[0])} is outside 0..{num_classes - 1}"
    width, height = size
    if polygon:
        xs, ys = numbers[1::2] * width, numbers[2::2] * height
        box = np.array([xs.min(), ys.min(), xs.max(), ys.max()])
        return (box, int(numbers[0]), None) if _fits_float32(box) else "a value is too large"
    box = cxcywh_to_xyxy(numbers[1:5] * np.array([width, height, width, height]))
    keypoints = None
    if kpt_shape:
        points = numbers[5:].reshape(num_keypoints, dims)
        keypoints = np.zeros((num_keypoints, 3))
        keypoints[:, :2] = points[:, :2] * (width, height)
        # Without a visibility column, Ultralytics writes (0, 0) for an unlabelled keypoint.
        keypoints[:, 2] = points[:, 2] if dims == 3 else np.where(points.any(axis=1), 2, 0)
    if not _fits_float32(box, keypoints):
        return "a value is too large"
    return box, int(numbers[0]), keypoints


def _fits_float32(*arrays: np.ndarray | None) -> bool:
    """Records hold float32: a pixel value such as 1e300 is finite here but inf there."""
    return all(np.abs(a).max(initial=0.0) <= _FLOAT32_MAX for a in arrays if a is not None)


def read_label_file(path: Path, size: tuple[int, int], num_classes: int, kpt_shape) -> tuple:
    """(boxes (N, 4) xyxy pixels, labels (N,), keypoints (N, K, 3) | None, Issues) of one file."""
    objects, issues = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parsed = _parse_line(line.split(), size, num_classes, kpt_shape)
        if isinstance(parsed, str):
            kind = kinds.UNKNOWN_CLASS if "outside 0.." in parsed else kinds.CORRUPT_ANNOTATION
            kind = kinds.BAD_KEYPOINTS if "kpt_shape says" in parsed else kind
            reason = f"{parsed}; object skipped"
            hint = _KEYPOINT_HINT if kind == kinds.BAD_KEYPOINTS else _LINE_HINT
            issues.append(Issue(kind, path, reason, hint, line=number))
            continue
        objects.append(parsed)
    boxes = np.array([o[0] for o in objects]).reshape(-1, 4)
    labels = np.array([o[1] for o in objects], dtype=np.int64)
    # ImageRecord cannot hold (0, K, 3) yet (records.py reshape(n, -1, 3)): None when empty.
    keypoints = np.array([o[2] for o in objects]) if kpt_shape and objects else None
    return boxes, labels, keypoints, issues


def _read_record(image_path: Path, index: int, num_classes: int, kpt_shape, issues: list):
    """One record, or None when the image or its label file cannot be read."""
    try:
        size = read_image_size(image_path)
    except DataError as e:
        issues.append(Issue(kinds.UNREADABLE_IMAGE, image_path, e.reason, e.hint))
        return None
    labels_at = label_path(image_path)
    objects = (np.zeros((0, 4)), np.zeros(0), None, [])
    if labels_at.is_file():
        try:
            objects = read_label_file(labels_at, size, num_classes, kpt_shape)
        except (OSError, UnicodeDecodeError) as e:
            reason = f"label file unreadable ({e}); image skipped"
            issues.append(Issue(kinds.CORRUPT_ANNOTATION, labels_at, reason, "rewrite the file"))
            return None
    boxes, labels, keypoints, line_issues = objects
    issues += line_issues
    if len(boxes) == 0:
        why = "label file is empty" if labels_at.is_file() else f"no label file {labels_at}"
        issues.append(Issue(kinds.NO_OBJECTS, image_path, f"{why}; kept as a background image"))
    width, height = size
    return ImageRecord(
        image_path,
        width,
        height,
        boxes,
        labels,
        keypoints=keypoints,
        annotation_path=labels_at,
        image_id=index,
    )


def yolo_config(data_yaml_or_dir: str | Path) -> tuple[dict, Path]:
    """(config, YAML path) for a YAML file, a folder holding one, or a bare images/ labels/ tree."""
    location = Path(data_yaml_or_dir)
    if location.is_file():
        return load_yaml(location), location
    if not location.is_dir():
        raise DataError(location, "not found", "pass a data YAML or a dataset folder")
    found = find_data_yaml(location)
    if found is not None:
        return load_yaml(found), found
    # A bare folder: images/<split>/ (+ labels/<split>/), class names from classes.txt if any.
    config: dict = {s: f"images/{s}" for s in SPLITS if (location / "images" / s).is_dir()}
    if (location / "classes.txt").is_file():
        lines = (location / "classes.txt").read_text(encoding="utf-8").splitlines()
        config["names"] = [n.strip() for n in lines if n.strip()]
    return config, location / "data.yaml"


def _kpt_shape(config: dict, yaml_path: Path) -> tuple[int, int] | None:
    shape = config.get("kpt_shape")
    if shape is None:
        return None
    valid = isinstance(shape, list) and len(shape) == 2 and all(isinstance(v, int) for v in shape)
    if not (valid and shape[0] > 0 and shape[1] in (2, 3)):
        raise DataError(yaml_path, f"kpt_shape {shape} is not [K, 2] or [K, 3]", "fix kpt_shape:")
    return int(shape[0]), int(shape[1])


def read_yolo(
    data_yaml_or_dir: str | Path, split: str = "train", class_names: list[str] | None = None
) -> tuple[RecordSet, list[Issue]]:
    """Read one split of an Ultralytics-style dataset into records and the defects found.

    Args:
        data_yaml_or_dir: the data YAML, a folder holding ``data.yaml``, or a bare folder with
            ``images/<split>/`` and ``labels/<split>/`` (names from ``classes.txt``).
        split: "train", "val" or "test".
        class_names: when the data names its classes, the fixed class list to map them onto (by
            name; other classes are dropped with UNKNOWN_CLASS); otherwise the names of ids 0..C-1.

    Returns:
        RecordSet (``root`` = ``path``, records in folder-sorted or list order, keypoints
        (N, K, 3) pixels for pose) and the Issues (bad lines carry their line number).

    Raises:
        DataError: unreadable YAML, missing split entry or folder, or no class names at all.
    """
    config, yaml_path = yolo_config(data_yaml_or_dir)
    root = dataset_root(config, yaml_path)
    data_names = parse_names(config, yaml_path)
    names = data_names or class_names
    if not names:
        raise DataError(yaml_path, "no class names", "add names: [...] to the data YAML")
    kpt_shape = _kpt_shape(config, yaml_path)
    issues: list[Issue] = []
    records = []
    for index, image_path in enumerate(split_images(config, split, root, yaml_path, issues)):
        record = _read_record(image_path, index, len(names), kpt_shape, issues)
        if record is not None:
            records.append(record)
    if records and not any(label_path(r.image_path).is_file() for r in records):
        reason = f"no label files for any of the {len(records)} {split} images"
        example = label_path(records[0].image_path)
        hint = f"labels belong in .../labels/... mirroring .../images/... (e.g. {example})"
        issues.append(Issue(kinds.MISSING_ANNOTATION, yaml_path, reason, hint))
    record_set = RecordSet(records, names, root, "yolo", split)
    if kpt_shape:
        schema, schema_issues = yaml_keypoint_schema(config, yaml_path, kpt_shape[0])
        issues += schema_issues
        record_set.kpt_names, record_set.skeleton = schema.names, schema.skeleton
        record_set.flip_idx, record_set.kpt_sigmas = schema.flip_idx, schema.sigmas
    if class_names and data_names and class_names != data_names:
        record_set, remap_issues = remap_classes(record_set, class_names)
        issues += remap_issues
    return record_set, issues


def _label_text(record: ImageRecord, decimals: int = 6) -> str:
    """Label lines with ``decimals`` decimals; DataError when the size is unknown (nothing to
    normalise by)."""
    width, height = float(record.width), float(record.height)
    if width <= 0 or height <= 0:
        reason = "image size unknown; YOLO labels are normalised by it"
        raise DataError(record.image_path, reason, "run edgevision data check --fix first")
    boxes = xyxy_to_cxcywh(record.boxes.astype(np.float64)) / (width, height, width, height)
    lines = []
    for k, (label, box) in enumerate(zip(record.labels, boxes, strict=True)):
        fields = [str(int(label))] + [f"{v:.{decimals}f}" for v in box]
        if record.keypoints is not None:
            for x, y, visible in record.keypoints[k].astype(np.float64):
                fields += [f"{x / width:.{decimals}f}", f"{y / height:.{decimals}f}"]
                fields.append(str(int(visible)))
        lines.append(" ".join(fields))
    return "".join(f"{line}\n" for line in lines)


def _update_data_yaml(out_dir: Path, split: str, record_set: RecordSet) -> Path:
    """Add ``split`` to ``out_dir/data.yaml`` (created when absent), refusing other class lists."""
    yaml_path = out_dir / "data.yaml"
    config = load_yaml(yaml_path) if yaml_path.is_file() else {}
    existing = parse_names(config, yaml_path)
    if existing is not None and existing != list(record_set.class_names):
        reason = f"holds classes {existing}, not {record_set.class_names}"
        raise DataError(yaml_path, reason, "write to another folder")
    config[split] = f"images/{split}"
    # Absolute path: Ultralytics resolves a relative one against the working directory.
    ordered = {"path": str(out_dir.absolute())}
    ordered |= {s: config[s] for s in (*SPLITS, split) if config.get(s)}
    ordered["names"] = dict(enumerate(record_set.class_names))
    keypoints = [r.keypoints.shape[1] for r in record_set.records if r.keypoints is not None]
    num_keypoints = keypoints[0] if keypoints else len(record_set.kpt_names or [])
    if num_keypoints:
        ordered["kpt_shape"] = [int(num_keypoints), 3]
        schema = KeypointSchema(
            record_set.kpt_names, record_set.skeleton, record_set.flip_idx, record_set.kpt_sigmas
        )
        ordered |= yaml_keypoint_entries(schema, record_set.num_classes)
    ordered |= {key: value for key, value in config.items() if key not in ordered}
    text = yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True)
    return atomic_write_text(yaml_path, text)


def write_yolo(
    record_set: RecordSet,
    out_dir: str | Path,
    split: str = "train",
    copy_images: bool = True,
    decimals: int = 6,
) -> Path:
    """Write ``record_set`` as ``images/{split}/``, ``labels/{split}/`` and ``data.yaml``.

    Image names keep their sub-folders below the images' common folder. Difficult and crowd
    flags are not representable in YOLO and are dropped (the objects are kept).

    Args:
        record_set: records with known image sizes.
        out_dir: dataset folder; ``data.yaml`` in it gains the ``split`` entry.
        split: "train", "val" or "test".
        copy_images: copy the images in; when False they must already be in ``images/{split}/``.
        decimals: decimals of the normalised coordinates. 6 is Ultralytics' custom (error up to
            ``5e-7 * width`` px); ``data convert`` writes 8 so a round trip keeps 1e-4 px.

    Returns:
        The ``data.yaml`` path (what ``train --data`` takes).
    """
    out_dir = Path(out_dir)
    image_folder = out_dir / "images" / split
    sources = [r.image_path for r in record_set.records]
    names = image_names(sources)[1]
    if copy_images:
        copy_images_to(sources, names, image_folder)
    for record, name in zip(record_set.records, names, strict=True):
        if not (image_folder / name).is_file():
            raise DataError(image_folder / name, "image not in place", "use copy_images=True")
        atomic_write_text(label_path(image_folder / name), _label_text(record, decimals))
    return _update_data_yaml(out_dir, split, record_set)
