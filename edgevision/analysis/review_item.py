"""One finding of the label-noise finder: what is probably wrong with which annotation, and the fix.

Kept apart from the finder so the contact sheet and the marked copy (:mod:`.label_review`) and
the finder (:mod:`.label_noise`) share it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgevision.data.doctor.review_csv import REVIEW_KINDS
from edgevision.data.formats import relative_inside

# The label problems the finder reports, in tie-break order (module docstring of .label_noise).
KINDS = REVIEW_KINDS

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class ReviewItem:
    """A suspected label problem.

    Attributes:
        file: image path relative to the dataset root (POSIX separators; absolute when the image
            lies outside the root).
        image_index: index of the record in the record set (-1 when read from a CSV without one).
        object_index: index of the annotation in the record; None for a missing object.
        kind: one of :data:`KINDS`.
        score: how sure the finder is, in [0, 1]; lists sort by it.
        class_name: the annotated class ("" for missing).
        box: the annotated (x1, y1, x2, y2) in 0-based pixels, corners ordered; None for missing.
        suggested_class: the class to set (wrong_class) or add (missing), else "".
        suggested_box: the box to set (loose) or add (missing), else None.
        note: why, in words (scores and IoUs involved).
        accept: the user's decision once read back from a marked CSV; None before review.
    """

    file: str
    image_index: int
    object_index: int | None
    kind: str
    score: float
    class_name: str
    box: Box | None
    suggested_class: str
    suggested_box: Box | None
    note: str
    accept: bool | None = None


def item_file(root: Path, image_path: Path) -> str:
    """The ``file`` of an item: the image path relative to ``root`` (POSIX), else absolute."""
    relative = relative_inside(root, image_path)
    return relative if relative is not None else Path(image_path).as_posix()
