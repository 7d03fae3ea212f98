"""Classification data: read ImageFolder / one folder / CSV layouts into ``(path, label)`` samples.

Layouts (:func:`detect_layout`), as users have them:

- ``splits``: ``DATA/train/CLASS/*.jpg`` and ``DATA/val/CLASS/...`` (``valid``/``validation``
  accepted, optional ``test/``), torchvision's ImageFolder per split;
- ``folder``: ``DATA/CLASS/*.jpg`` with no split folders;
- ``csv``: a CSV file of ``file,label`` rows (optional header, optional third ``split`` column),
  paths relative to the CSV's folder.

Where no validation split is given (``folder``, ``csv`` without a split column, ``splits``
without ``val/``), a stratified ``val_fraction`` of every class is held out, chosen by ``seed``
and the class *name*, so adding a class does not reshuffle the others. Class names are the
sorted folder names (empty class folders included, so the doctor can report them) or, for CSV,
the sorted labels (numerically when every label is an integer). Files under hidden folders
(``.ipynb_checkpoints``) are ignored. Readers skip defective entries and return them as Issues.
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgevision.core import issues as kinds
from edgevision.core.errors import DataError
from edgevision.core.image import IMAGE_SUFFIXES
from edgevision.core.issues import Issue
from edgevision.data.formats.sniff import detect_format

SPLIT_NAMES = ("train", "val", "test")
SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
VAL_FRACTION = 0.2  # share of each class held out when the data has no validation split
_FILE_HEADERS = ("file", "filename", "path", "image", "image_path", "filepath")
_LABEL_HEADERS = ("label", "class", "category", "target", "class_name")


@dataclass
class ClassificationSet:
    """One split of a classification dataset.

    Attributes:
        samples: ``(image path, class index)`` pairs, sorted by class then path.
        class_names: index -> name.
        root: the dataset folder (the CSV's folder for a CSV).
        split: "train", "val", "test" or "all".
        layout: "splits", "folder" or "csv".
    """

    samples: list[tuple[Path, int]]
    class_names: list[str]
    root: Path
    split: str = "all"
    layout: str = "folder"

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def labels(self) -> np.ndarray:
        """(N,) int64 class index of every sample."""
        return np.array([label for _, label in self.samples], dtype=np.int64)

    def counts(self) -> np.ndarray:
        """(C,) int64 images per class."""
        return np.bincount(self.labels, minlength=self.num_classes).astype(np.int64)


@dataclass
class Entry:
    """One image as read, before the class list and the hold-out are applied."""

    path: Path
    label: str
    split: str | None  # None: not fixed by the data, assigned by the stratified split


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_under(folder: Path) -> list[Path]:
    """Image files anywhere below ``folder`` (torchvision's ImageFolder recurses), sorted."""
    found = []
    for path in folder.rglob("*"):
        hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if not hidden and path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found)


def _split_folders(root: Path) -> dict[str, Path]:
    """Canonical split name -> its folder, for the split folders present under ``root``."""
    found = {}
    for split, aliases in SPLIT_FOLDERS.items():
        for alias in aliases:
            if (root / alias).is_dir():
                found[split] = root / alias
                break
    return found


def detect_layout(data: str | Path) -> str:
    """ "splits", "folder" or "csv" for a classification dataset path.

    Raises:
        DataError: the path does not exist or holds no class folders with images.
    """
    path = Path(data)
    if path.is_file() and path.suffix.lower() == ".csv":
        return "csv"
    if not path.is_dir():
        raise DataError(
            path, "not a folder or a .csv file", "pass DATA/ with class folders or a CSV"
        )
    if "train" in _split_folders(path):
        return "splits"
    if any(_images_under(folder) for folder in _visible_dirs(path)):
        return "folder"
    raise DataError(
        path,
        "no class folders with images found",
        "expected DATA/train/CLASS/*.jpg (+ DATA/val/...), DATA/CLASS/*.jpg or a CSV of file,label",
    )


def is_classification_data(data: str | Path) -> bool:
    """True for a CSV or an image-folder tree that is not a detection dataset (no VOC
    ``Annotations/``/``JPEGImages/``, no YOLO ``labels/``, nothing the detection format detector
    recognises, such as a COCO ``annotations/`` + ``images/`` tree); the CLI's ``data check`` uses it."""

    path = Path(data)
    if path.is_dir() and any(
        (path / name).is_dir() for name in ("Annotations", "JPEGImages", "labels")
    ):
        return False
    try:
        detect_format(path)
        return False  # a detection dataset whose folders would otherwise look like class folders
    except DataError:
        pass
    try:
        detect_layout(path)
    except DataError:
        return False
    return True


def _read_folder(root: Path, split: str | None) -> tuple[list[Entry], list[str]]:
    entries, classes = [], []
    for class_dir in _visible_dirs(root):
        classes.append(class_dir.name)
        entries += [Entry(p, class_dir.name, split) for p in _images_under(class_dir)]
    return entries, classes


def _read_splits(root: Path) -> tuple[list[Entry], list[str]]:
    entries, classes = [], set()
    for split, folder in _split_folders(root).items():
        found, names = _read_folder(folder, split)
        entries += found
        classes.update(names)
    return entries, sorted(classes)


def _csv_columns(first_row: list[str]) -> tuple[dict[str, int], bool]:
    """Column index of file / label / split, and whether the first row is a header."""
    cells = [cell.strip().lower() for cell in first_row]
    if not cells or cells[0] not in _FILE_HEADERS:
        return {"file": 0, "label": 1, "split": 2}, False
    label = next((i for i, c in enumerate(cells) if c in _LABEL_HEADERS), 1)
    split = cells.index("split") if "split" in cells else -1
    return {"file": 0, "label": label, "split": split}, True


def _csv_entry(row: list[str], columns: dict[str, int], csv_path: Path, line: int):
    """One CSV row -> (Entry or None, Issue or None)."""
    if len(row) <= max(columns["file"], columns["label"]) or not row[columns["file"]].strip():
        return None, Issue(
            kinds.CORRUPT_ANNOTATION,
            csv_path,
            f"expected file,label, got {row}",
            "write one file,label pair per line",
            line=line,
        )
    root = csv_path.parent.resolve()
    path = (root / row[columns["file"]].strip()).resolve()
    if not path.is_relative_to(root):
        return None, Issue(
            kinds.PATH_ESCAPE,
            csv_path,
            f"{row[columns['file']]!r} points outside {root}",
            "keep images inside the CSV's folder",
            line=line,
        )
    split = row[columns["split"]].strip().lower() if 0 <= columns["split"] < len(row) else ""
    split = next((name for name, aliases in SPLIT_FOLDERS.items() if split in aliases), split)
    if split and split not in SPLIT_NAMES:
        return None, Issue(
            kinds.CORRUPT_ANNOTATION,
            csv_path,
            f"split {split!r} is not train, val or test",
            "fix the split column",
            line=line,
        )
    if not path.is_file():
        return None, Issue(
            kinds.MISSING_IMAGE,
            path,
            "image file not found",
            f"fix line {line} of {csv_path.name} or add the image",
            line=None,
        )
    return Entry(path, row[columns["label"]].strip(), split or None), None


def _read_csv(csv_path: Path) -> tuple[list[Entry], list[str], list[Issue]]:
    """Rows of ``file,label[,split]``; blank lines and ``#`` comments are skipped."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            rows = [(n, row) for n, row in enumerate(csv.reader(f), start=1)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(
            csv_path, f"cannot read CSV ({e})", "save it as UTF-8 text, one file,label per line"
        ) from e
    rows = [(n, row) for n, row in rows if row and any(row) and not row[0].lstrip().startswith("#")]
    if not rows:
        raise DataError(csv_path, "CSV has no rows", "write one file,label pair per line")
    columns, has_header = _csv_columns(rows[0][1])
    entries, issues = [], []
    for line, row in rows[1:] if has_header else rows:
        entry, issue = _csv_entry(row, columns, csv_path, line)
        entries += [entry] if entry else []
        issues += [issue] if issue else []
    labels = sorted({e.label for e in entries})
    if labels and all(label.lstrip("-").isdigit() for label in labels):
        labels.sort(key=int)
    return entries, labels, issues


def read_entries(data: str | Path) -> tuple[list[Entry], list[str], Path, str, list[Issue]]:
    """Every sample of the dataset with its label name and fixed split (or None).

    Returns:
        (entries, class names in index order, root, layout, issues).
    """
    path = Path(data)
    layout = detect_layout(path)
    if layout == "csv":
        entries, classes, issues = _read_csv(path)
        return entries, classes, path.parent.resolve(), layout, issues
    root = path.resolve()
    entries, classes = _read_splits(root) if layout == "splits" else _read_folder(root, None)
    return entries, classes, root, layout, []


def stratified_holdout(
    paths_by_class: dict[str, list[Path]], fraction: float, seed: int
) -> set[Path]:
    """The held-out paths: ``round(n * fraction)`` of each class (at least 1 when the class has
    2 or more images, never all of them), drawn by a generator seeded with ``seed`` and the
    class name's CRC32, from the paths in sorted order."""
    held = set()
    for name, paths in paths_by_class.items():
        paths = sorted(paths)
        count = len(paths)
        take = 0 if count < 2 or fraction <= 0 else min(count - 1, max(1, round(count * fraction)))
        order = np.random.default_rng([seed, zlib.crc32(name.encode())]).permutation(count)
        held.update(paths[i] for i in order[:take])
    return held


def assign_splits(entries: list[Entry], fraction: float, seed: int) -> None:
    """Give every entry without a fixed split "val" (held out) or "train"."""
    has_val = any(e.split == "val" for e in entries)
    pool = [e for e in entries if e.split is None or (e.split == "train" and not has_val)]
    by_class: dict[str, list[Path]] = {}
    for entry in pool:
        by_class.setdefault(entry.label, []).append(entry.path)
    held = stratified_holdout(by_class, fraction, seed)
    for entry in pool:
        entry.split = "val" if entry.path in held else "train"


def list_classification_splits(data: str | Path) -> list[str]:
    """Splits :func:`load_classification` can read: train and val always, test when given."""
    entries, _, _, _, _ = read_entries(data)
    return ["train", "val"] + (["test"] if any(e.split == "test" for e in entries) else [])


def load_classification(
    data: str | Path,
    split: str = "train",
    class_names: list[str] | None = None,
    val_fraction: float = VAL_FRACTION,
    seed: int = 0,
) -> tuple[ClassificationSet, list[Issue]]:
    """Read one split of a classification dataset (see the module docstring for layouts).

    Args:
        data: dataset folder or CSV file.
        split: "train", "val", "test" or "all".
        class_names: a fixed class list (a checkpoint's); samples of other classes are skipped
            with an ``unknown_class`` issue. None: the data's own class list.
        val_fraction, seed: the stratified hold-out where the data has no validation split.

    Returns:
        (ClassificationSet, Issues of skipped entries).

    Raises:
        DataError: unknown layout, unreadable CSV, or an unknown split name.
    """
    if split not in (*SPLIT_NAMES, "all"):
        raise DataError(data, f"unknown split {split!r}", "use train, val, test or all")
    entries, found_classes, root, layout, issues = read_entries(data)
    assign_splits(entries, val_fraction, seed)
    names = list(class_names) if class_names is not None else found_classes
    index = {name: i for i, name in enumerate(names)}
    samples = []
    for entry in entries:
        if split != "all" and entry.split != split:
            continue
        if entry.label not in index:
            issues.append(
                Issue(
                    kinds.UNKNOWN_CLASS,
                    entry.path,
                    f"class {entry.label!r} is not one of {names}",
                    "train with this class or remove the image",
                )
            )
            continue
        samples.append((entry.path, index[entry.label]))
    samples.sort(key=lambda sample: (sample[1], str(sample[0])))
    return ClassificationSet(samples, names, root, split, layout), issues
