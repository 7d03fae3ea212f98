"""``edgevision data split``: train / val / test lists, stratified by class.

A random split of a small dataset easily leaves a rare class out of val or test, and then its AP
cannot be measured. We use iterative stratification (Sechidis et al., 2011, adapted to exact split
sizes): take the class with the fewest unassigned images, hand each of those images to the split
that still lacks most of the image's classes, else wants that class most, and repeat. Split sizes
are exact (``round(n * val)``, ``round(n * test)``, the rest train). A class in at least as many
images as there are non-empty splits reaches every split while the splits have room; a rarer class
goes to train first.

Files written next to the data:

- VOC: ``ImageSets/Main/{train,val,test,trainval}.txt``, one image id (file stem) per line;
- COCO / YOLO: ``{train,val,test}.txt`` in the dataset root, one image path per line, written
  ``./relative/path`` from the root (Ultralytics resolves ``./`` against the list file's folder;
  an image outside the root is written as an absolute path).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgevision.core.errors import ConfigError, DataError
from edgevision.core.fileio import atomic_write_text, backup_file
from edgevision.core.records import RecordSet

SPLITS = ("train", "val", "test")


def _split_sizes(num_images: int, val: float, test: float) -> np.ndarray:
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ConfigError(f"--val {val} --test {test}: need 0 <= each and val + test < 1")
    num_val, num_test = round(num_images * val), round(num_images * test)
    return np.array([num_images - num_val - num_test, num_val, num_test], dtype=np.int64)


def _presence(record_set: RecordSet) -> np.ndarray:
    """(num_images, num_classes) bool: which classes each image contains."""
    presence = np.zeros((len(record_set), record_set.num_classes), dtype=bool)
    for index, record in enumerate(record_set.records):
        labels = record.labels[(record.labels >= 0) & (record.labels < record_set.num_classes)]
        presence[index, labels] = True
    return presence


class _Assigner:
    """Split state: room left in each split and how many images of each class it has / wants."""

    def __init__(self, presence: np.ndarray, sizes: np.ndarray):
        fractions = sizes / max(int(sizes.sum()), 1)
        self.room = sizes.copy()  # (3,) images each split can still take
        self.wanted = fractions[:, None] * presence.sum(axis=0)[None, :]  # (3, C)
        self.held = np.zeros_like(self.wanted, dtype=np.int64)  # (3, C) images holding each class
        self.unassigned = presence.sum(axis=0)  # (C,) images of each class not yet placed
        # Coverage first only for classes with an image for every split that gets images.
        self.coverable = presence.sum(axis=0) >= (sizes > 0).sum()
        self.assignment = np.full(len(presence), -1, dtype=np.int64)

    def choose(self, class_index: int, classes: np.ndarray) -> int:
        """The split for an image holding ``classes``, placed for the sake of ``class_index``.

        Train comes first when the image is the last chance for one of its classes to reach train;
        otherwise the split lacking most of ``classes``, then the one wanting ``class_index`` most,
        then the roomiest.
        """
        last_chance = (self.held[0, classes] == 0) & (self.unassigned[classes] == 1)
        if last_chance.any() and self.room[0] > 0:
            return 0
        best_key, best_split = None, -1
        for split in np.flatnonzero(self.room > 0):
            lacking = self.coverable[classes] & (self.held[split, classes] == 0)
            key = (int(lacking.sum()), self.wanted[split, class_index], self.room[split], -split)
            if best_key is None or key > best_key:
                best_key, best_split = key, int(split)
        return best_split

    def assign(self, image: int, split: int, classes: np.ndarray) -> None:
        self.assignment[image] = split
        self.room[split] -= 1
        self.wanted[split, classes] -= 1
        self.held[split, classes] += 1
        self.unassigned[classes] -= 1


def split_dataset(
    record_set: RecordSet, val: float = 0.1, test: float = 0.1, seed: int = 0
) -> dict[str, list[int]]:
    """Stratified, seeded split of ``record_set`` into train / val / test.

    Args:
        record_set: the images to split (all of them: existing splits are ignored).
        val, test: fractions of the images; sizes are ``round(n * fraction)``, exactly.
        seed: same seed and data, same split.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}`` sorted indices into
        ``record_set.records``; every image is in exactly one split.

    Raises:
        ConfigError: fractions outside [0, 1) or summing to 1 or more.
    """
    sizes = _split_sizes(len(record_set), val, test)
    presence = _presence(record_set)
    rng = np.random.default_rng(seed)
    state = _Assigner(presence, sizes)
    unassigned = np.ones(len(presence), dtype=bool)
    while True:
        remaining = presence[unassigned].sum(axis=0)
        if not remaining.any():
            break
        rarest = int(np.where(remaining > 0, remaining, np.iinfo(np.int64).max).argmin())
        images = np.flatnonzero(unassigned & presence[:, rarest])
        for image in rng.permutation(images):
            classes = np.flatnonzero(presence[image])
            state.assign(image, state.choose(rarest, classes), classes)
        unassigned[images] = False
    for image in rng.permutation(np.flatnonzero(unassigned)):  # images without objects
        state.assign(image, int(np.argmax(state.room)), np.zeros(0, dtype=np.int64))
    return {name: np.flatnonzero(state.assignment == i).tolist() for i, name in enumerate(SPLITS)}


def split_class_counts(record_set: RecordSet, splits: dict[str, list[int]]) -> dict[str, list[int]]:
    """Images holding each class in each split: ``{split: [count per class]}``."""
    presence = _presence(record_set)
    return {name: presence[indices].sum(axis=0).tolist() for name, indices in splits.items()}


def format_splits(record_set: RecordSet, splits: dict[str, list[int]]) -> str:
    """Per-class image counts by split as an aligned table (what ``data split`` prints)."""
    counts = split_class_counts(record_set, splits)
    names = list(splits)
    width = max([len("images"), *(len(c) for c in record_set.class_names)])
    lines = ["class".ljust(width) + "".join(f"{n:>8}" for n in names)]
    lines.append("images".ljust(width) + "".join(f"{len(splits[n]):>8}" for n in names))
    for index, class_name in enumerate(record_set.class_names):
        lines.append(class_name.ljust(width) + "".join(f"{counts[n][index]:>8}" for n in names))
    return "\n".join(lines) + "\n"


def _list_entry(record_set: RecordSet, index: int) -> str:
    """One line of a list file: the VOC id, or the image path relative to the root."""
    record = record_set.records[index]
    if record_set.format == "voc":
        return (record.annotation_path or record.image_path).stem
    root = Path(record_set.root).resolve()
    path = Path(record.image_path).resolve()
    if path.is_relative_to(root):
        return "./" + path.relative_to(root).as_posix()
    return str(path)


def _list_files(record_set: RecordSet, splits: dict[str, list[int]]) -> dict[Path, list[int]]:
    """Target file -> image indices, by the dataset's format (see the module docstring)."""
    root = Path(record_set.root)
    if record_set.format == "voc":
        folder = root / "ImageSets" / "Main"
        files = {folder / f"{name}.txt": splits.get(name, []) for name in SPLITS}
        files[folder / "trainval.txt"] = sorted(splits.get("train", []) + splits.get("val", []))
        return files
    return {root / f"{name}.txt": splits.get(name, []) for name in SPLITS}


def write_splits(
    record_set: RecordSet, splits: dict[str, list[int]], force: bool = False
) -> list[Path]:
    """Write the list files of ``splits`` next to the data (see the module docstring).

    Every list is written, an empty one too, so a list left from an earlier split never survives.

    Args:
        record_set: the dataset the indices refer to (its ``root`` and ``format`` place the files).
        splits: output of :func:`split_dataset`.
        force: overwrite existing list files, keeping each old one as a ``.bak`` copy.

    Returns:
        the paths written.

    Raises:
        DataError: a list file exists and ``force`` is False (all existing files are named).
    """
    files = _list_files(record_set, splits)
    existing = [path for path in files if path.exists()]
    if existing and not force:
        names = ", ".join(os.path.relpath(path, record_set.root) for path in existing)
        raise DataError(
            existing[0],
            f"split files already exist: {names}",
            "pass --force to replace them (the old files are kept as .bak)",
        )
    for path in existing:
        backup_file(path)
    for path, indices in files.items():
        lines = [_list_entry(record_set, index) for index in indices]
        atomic_write_text(path, "".join(line + "\n" for line in lines))
    return list(files)
