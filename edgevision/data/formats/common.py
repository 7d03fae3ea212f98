"""What the format readers and writers share: the path-safety rule, class re-mapping and
image copying."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from edgevision.core import issues as kinds
from edgevision.core.errors import DataError
from edgevision.core.issues import Issue
from edgevision.core.records import RecordSet


def read_json_file(path: Path, what: str = "JSON") -> object:
    """A user's JSON file parsed, or DataError naming the file: unreadable, not UTF-8, invalid,
    or nested deeper than Python can parse (``{"images": [[[[...]]]]}`` 100,000 levels deep)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(path, f"cannot read {what} ({e})", "check the path") from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        reason = f"invalid JSON: {e.msg} (column {e.colno})"
        raise DataError(path, reason, "repair the file with a JSON linter", e.lineno) from e
    except RecursionError as e:
        reason = "JSON nested too deeply to read (thousands of levels: not an annotation file)"
        raise DataError(path, reason, "replace the file with the real annotations") from e


def relative_inside(root: str | Path, path: str | Path) -> str | None:
    """``path`` relative to ``root`` (POSIX separators) when it lies inside ``root``, else None.

    The check is lexical (``..`` folded, symlinks not followed): a dataset folder that is a
    symlink, or that holds links the user made, keeps working; only names written inside
    annotation and list files are policed.
    """
    root_norm = os.path.normpath(os.path.abspath(root))
    target = os.path.normpath(os.path.join(root_norm, path))
    if os.path.commonpath([root_norm, target]) != root_norm:
        return None
    return Path(os.path.relpath(target, root_norm)).as_posix()


def resolve_inside(root: str | Path, name: str) -> Path | None:
    """Absolute ``root / name`` for a file name read from an annotation, or None when it escapes.

    Refuses absolute names (``/etc/x``, ``C:\\x``) and names that climb out with ``..``.
    Backslashes count as separators (annotations written on Windows).
    """
    name = name.replace("\\", "/")
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).drive:
        return None
    relative = relative_inside(root, name)
    if relative is None:
        return None
    return Path(os.path.normpath(os.path.join(os.path.abspath(root), relative)))


def image_names(paths: list[Path]) -> tuple[Path | None, list[str]]:
    """(common folder, each path below it in POSIX form): unique names that keep sub-folders.

    Writers name copied images this way, so ``JPEGImages/a.jpg`` becomes ``a.jpg`` and a COCO
    tree ``images/2017/a.jpg`` keeps its ``2017/`` part.
    """
    if not paths:
        return None, []
    absolute = [os.path.abspath(p) for p in paths]
    base = os.path.commonpath([os.path.dirname(p) for p in absolute])
    return Path(base), [Path(os.path.relpath(p, base)).as_posix() for p in absolute]


def copy_images_to(sources: list[Path], names: list[str], folder: Path) -> None:
    """Copy ``sources[i]`` to ``folder / names[i]`` (sub-folders created), skipping files in place.

    Raises:
        DataError: two different images would land on the same name.
    """
    placed: dict[str, Path] = {}
    for source, name in zip(sources, names, strict=True):
        if placed.setdefault(name, source) != source:
            reason = f'images {placed[name]} and {source} both map to "{name}"'
            raise DataError(folder, reason, "rename one of them (image names must be unique)")
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or not os.path.samefile(source, target):
            shutil.copy2(source, target)


def remap_classes(
    record_set: RecordSet, class_names: list[str], case: str = "majority"
) -> tuple[RecordSet, list[Issue]]:
    """Re-index labels onto a fixed ``class_names`` list, matching by name.

    Objects whose class is not in the list are dropped with an UNKNOWN_CLASS Issue each.
    ``case="lower"`` matches names case-insensitively; "majority" and "first" match exactly.
    """

    def fold(name: str) -> str:
        return name.lower() if case == "lower" else name

    index = {fold(name): i for i, name in enumerate(class_names)}
    new_label = np.array([index.get(fold(n), -1) for n in record_set.class_names], dtype=np.int64)
    records, issues = [], []
    for record in record_set.records:
        labels = new_label[record.labels]
        for obj in np.flatnonzero(labels < 0):
            name = record_set.class_names[record.labels[obj]]
            where = record.annotation_path or record.image_path
            reason = f'class "{name}" is not in the class list {class_names}; object dropped'
            hint = "add it to names: in the data YAML"
            issues.append(Issue(kinds.UNKNOWN_CLASS, where, reason, hint, int(obj)))
        keep = labels >= 0
        if record.keypoints is not None and not keep.any():
            # ImageRecord cannot hold (0, K, 3) keypoints yet (records.py reshape(n, -1, 3)).
            record = dataclasses.replace(record, keypoints=None)
        kept = record.select(keep)
        kept.labels = labels[keep]
        records.append(kept)
    remapped = record_set.with_records(records)
    remapped.class_names = list(class_names)
    return remapped, issues
