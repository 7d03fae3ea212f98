"""The data doctor for classification sets: corrupt images, empty classes, class imbalance.

Every image of every split is inspected (header read, or a full decode with ``deep``); reader
issues (CSV rows that are malformed, point outside the folder or at missing files) are kept.
A class without training images is an error: its output would never be trained. Imbalance is
reported (largest / smallest class per split) but is not a defect: the data may be that way.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgevision.core import issues as kinds
from edgevision.core.errors import DataError
from edgevision.core.image import IMAGE_SUFFIXES, read_image, read_image_size
from edgevision.core.issues import Issue
from edgevision.data.formats.imagefolder import (
    SPLIT_NAMES,
    VAL_FRACTION,
    assign_splits,
    read_entries,
)

EMPTY_CLASS = "empty_class"  # a class folder / label without a single readable training image
IMBALANCE_RATIO = 10.0  # largest / smallest class beyond this is flagged in the report


@dataclass
class ClassificationCheckReport:
    """What :func:`check_classification` found.

    Attributes:
        root: dataset folder (the CSV's folder for a CSV).
        layout: "splits", "folder" or "csv".
        class_names: index -> name.
        counts: split -> (C,) readable images per class.
        issues: every defect, sorted by file.
        ignored: files in class folders that are not images (by suffix), which training skips.
        deep: whether every image was decoded (else only headers were read).
    """

    root: Path
    layout: str
    class_names: list[str]
    counts: dict[str, np.ndarray]
    issues: list[Issue]
    ignored: list[Path] = field(default_factory=list)
    deep: bool = False

    @property
    def exit_code(self) -> int:
        """0 when clean, 1 when any defect (not counting imbalance) remains."""
        return int(any(issue.severity != "info" for issue in self.issues))

    def imbalance(self) -> dict[str, float]:
        """Per split: images of the largest class / images of the smallest (inf when one is 0)."""
        ratios = {}
        for split, counts in self.counts.items():
            if counts.size and counts.max() > 0:
                ratios[split] = (
                    float(counts.max() / counts.min()) if counts.min() > 0 else float("inf")
                )
        return ratios

    def format_text(self) -> str:
        """Counts table, imbalance line, one line per defect, then the count by kind."""
        splits = [s for s in SPLIT_NAMES if s in self.counts]
        total = sum(int(self.counts[s].sum()) for s in splits)
        mode = "deep (decoded)" if self.deep else "header"
        lines = [
            f"{self.root}: classification set ({self.layout} layout), {len(self.class_names)} classes, "
            f"{total} images; {mode} check",
            "",
        ]
        width = max([5, *(len(name) for name in self.class_names)])
        lines.append(f"{'class':<{width}}" + "".join(f" {s:>7}" for s in splits))
        for k, name in enumerate(self.class_names):
            lines.append(
                f"{name:<{width}}" + "".join(f" {int(self.counts[s][k]):>7}" for s in splits)
            )
        lines.append(
            f"{'all':<{width}}" + "".join(f" {int(self.counts[s].sum()):>7}" for s in splits)
        )
        lines += ["", self._imbalance_line()]
        if self.ignored:
            lines.append(
                f"{len(self.ignored)} files in class folders are not images and are ignored "
                f"(e.g. {self.ignored[0]}); supported: {', '.join(IMAGE_SUFFIXES)}"
            )
        lines += [str(issue) for issue in self.issues]
        summary = Counter(issue.kind for issue in self.issues).most_common()
        lines += ["", *(f"{kind:<20} {count:>6}" for kind, count in summary)]
        lines.append(
            "clean"
            if self.exit_code == 0
            else "defects found: fix or remove the files listed above"
        )
        return "\n".join(lines)

    def _imbalance_line(self) -> str:
        parts = []
        for split, ratio in self.imbalance().items():
            counts = self.counts[split]
            flag = ""
            if ratio > IMBALANCE_RATIO:
                smallest = self.class_names[int(np.argmin(counts))]
                flag = f" (imbalanced: add images of {smallest!r} or expect lower recall on it)"
            parts.append(f"{split} {ratio:.1f}x{flag}")
        return "class balance (largest / smallest class): " + ("; ".join(parts) or "no images")

    def to_json(self) -> dict:
        return {
            "root": str(self.root),
            "layout": self.layout,
            "class_names": self.class_names,
            "counts": {s: c.tolist() for s, c in self.counts.items()},
            "imbalance": {
                s: (r if r != float("inf") else None) for s, r in self.imbalance().items()
            },
            "issues": [issue.to_dict() for issue in self.issues],
            "ignored": [str(p) for p in self.ignored],
            "exit_code": self.exit_code,
        }


def _inspect(path: Path, deep: bool) -> Issue | None:
    """An ``unreadable_image`` issue when the header (or with ``deep`` the pixels) fail to read."""
    try:
        read_image(path) if deep else read_image_size(path)
    except DataError as e:
        return Issue(kinds.UNREADABLE_IMAGE, path, e.reason, "replace or remove the image")
    return None


def _non_images(root: Path, layout: str) -> list[Path]:
    """Visible files below class folders whose suffix is not an image suffix."""
    if layout == "csv":
        return []
    found = []
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if len(parts) > 1 and path.is_file() and not any(p.startswith(".") for p in parts):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                found.append(path)
    return found


def check_classification(
    data: str | Path,
    deep: bool = False,
    workers: int = 4,
    val_fraction: float = VAL_FRACTION,
    seed: int = 0,
) -> ClassificationCheckReport:
    """Inspect every image and class of a classification set (any layout of ``data/classify``).

    Args:
        data: dataset folder or CSV.
        deep: decode every image (catches truncated JPEGs a header read passes).
        workers: threads inspecting images (decoding releases the GIL).
        val_fraction, seed: the hold-out used where the data has no val split (as training).

    Raises:
        DataError: the path is not a classification dataset at all.
    """
    entries, class_names, root, layout, issues = read_entries(data)
    assign_splits(entries, val_fraction, seed)
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        found = list(pool.map(lambda entry: _inspect(entry.path, deep), entries))
    issues += [issue for issue in found if issue is not None]
    index = {name: k for k, name in enumerate(class_names)}
    counts = {}
    for split in sorted({e.split for e in entries}, key=SPLIT_NAMES.index):
        labels = [
            index[e.label]
            for e, bad in zip(entries, found, strict=True)
            if e.split == split and not bad
        ]
        counts[split] = np.bincount(np.array(labels, dtype=np.int64), minlength=len(class_names))
    train = counts.get("train", np.zeros(len(class_names), np.int64))
    for k in np.flatnonzero(train == 0):
        where = root / "train" / class_names[k] if layout == "splits" else root / class_names[k]
        issues.append(
            Issue(
                EMPTY_CLASS,
                where if layout != "csv" else Path(data),
                f"class {class_names[k]!r} has no readable training images",
                "add images of it or delete the class folder",
            )
        )
    issues.sort(key=lambda issue: (str(issue.path), issue.line or 0))
    return ClassificationCheckReport(
        root, layout, class_names, counts, issues, _non_images(root, layout), deep
    )
