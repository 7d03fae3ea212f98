"""Which annotations are probably wrong: a model's detections held against the labels, ranked.

Give the detections of a trained model on the dataset (out-of-fold predictions when the model
was trained on these labels: a model that memorised an error cannot report it) in the format of
:mod:`edgevision.eval.detections`, ideally with a low score threshold (0.001 to 0.05) so that the
``unsupported`` rule sees weak detections too. Each rule below yields :class:`ReviewItem` s with
a score in [0, 1]; the list is sorted by that score, most certain first.

Rules (``conf`` = 0.5 makes a detection *confident*; IoU is between annotated and detected
boxes; "ignored" annotations, VOC difficult or COCO crowd, only silence detections inside them:
they are never reported as wrong_class, loose or unsupported, and crowd boxes never as
duplicates):

- ``missing``: a confident detection with no annotation of any class at IoU >= ``match_iou``
  (0.5), not lying in an ignored annotation (>= 50% of the detection's area inside it), not
  the detection a ``loose`` item suggests, and not a weaker echo (IoU >= 0.3) of a same-class
  annotation that a higher-scoring confident detection already matches. Overlapping candidates
  keep the highest score (class-agnostic, at ``match_iou``). Score: the detection's score.
  Suggests the detection's class and box.
- ``wrong_class``: a confident detection of another class at IoU >= ``wrong_class_iou`` (0.6)
  with an annotation, when that detection does not match an annotation of its own class at
  ``match_iou``, and the best same-class detection at ``match_iou`` scores below ``comparable``
  (0.5) times it. Score: other-class score minus same-class score. Suggests the detected class.
- ``loose``: the best confident same-class detection of an annotation has IoU in
  ``loose_iou`` = [0.3, 0.7), no same-class detection scoring at least ``comparable`` times it
  reaches 0.7, and no other same-class annotation overlaps that detection more. Score: the
  detection's score times (1 - IoU) / (1 - 0.3), so a clearer disagreement ranks higher.
  Suggests the detection's box.
- ``duplicate``: two annotations of the same class at IoU >= ``duplicate_iou`` (0.7) in one
  image, unless two distinct confident detections each match one of them (then they are two
  objects). Score: their IoU (1.0 for a double click). Suggests removing the one the
  detections support less (the later one on a tie).
- ``unsupported``: no detection of any class scoring >= ``unsupported_conf`` (0.05) overlaps the
  annotation at IoU >= ``unsupported_iou`` (0.3). Score: ``unsupported_weight`` (0.5) times
  (1 - the best score of any overlapping detection): a missing detection is weaker evidence
  than a confident one (detectors miss small and occluded objects), so these rank below
  confident findings unless the weight is raised to 1.

Ties sort by kind (in :data:`KINDS` order), image, object and box, so the list is deterministic.
The review CSV schema lives in :mod:`edgevision.data.doctor.review_csv` (the data doctor applies
an accepted list); the rules' code is in :mod:`.label_rules`, the contact sheet and the marked
copy in :mod:`.label_review`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from edgevision.analysis.label_review import contact_sheet, write_marked_copy
from edgevision.analysis.label_rules import Rules, image_issues, prepare_image
from edgevision.analysis.review_item import KINDS, ReviewItem, item_file
from edgevision.core.errors import ConfigError
from edgevision.core.records import RecordSet
from edgevision.data.doctor.review_csv import ReviewRow, read_review_rows, write_review_rows
from edgevision.eval.detections import check_detections

__all__ = [
    "KINDS",
    "ReviewItem",
    "contact_sheet",
    "find_label_issues",
    "read_review_csv",
    "write_marked_copy",
    "write_review_csv",
]


def find_label_issues(
    record_set: RecordSet,
    detections: Sequence[Mapping],
    conf: float = 0.5,
    match_iou: float = 0.5,
    wrong_class_iou: float = 0.6,
    comparable: float = 0.5,
    loose_iou: tuple[float, float] = (0.3, 0.7),
    duplicate_iou: float = 0.7,
    unsupported_iou: float = 0.3,
    unsupported_conf: float = 0.05,
    unsupported_weight: float = 0.5,
    kinds: Sequence[str] = KINDS,
) -> list[ReviewItem]:
    """Rank the annotations a model disagrees with (rules and thresholds: module docstring).

    Args:
        record_set: the labels to review.
        detections: one entry per record (boxes (K, 4) xyxy original pixels, scores (K,),
            classes (K,)), e.g. out-of-fold predictions at a low score threshold.
        conf: score from which a detection is confident.
        match_iou, wrong_class_iou, comparable, loose_iou, duplicate_iou, unsupported_iou,
        unsupported_conf, unsupported_weight: the rule thresholds described above.
        kinds: which rules to run (a subset of :data:`KINDS`).

    Returns:
        Items sorted by score (highest first), ties by kind, image, object and box.

    Raises:
        ConfigError: misaligned or malformed detections, an unknown kind, or thresholds
            outside [0, 1].
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ConfigError(f"unknown label-issue kinds {unknown}; choose from {list(KINDS)}")
    rules = Rules(
        conf=conf,
        match_iou=match_iou,
        wrong_class_iou=wrong_class_iou,
        comparable=comparable,
        loose_iou=tuple(loose_iou),
        duplicate_iou=duplicate_iou,
        unsupported_iou=unsupported_iou,
        unsupported_conf=unsupported_conf,
        unsupported_weight=unsupported_weight,
    )
    _check_rules(rules)
    checked = check_detections(detections, len(record_set), record_set.num_classes)
    items = []
    for index, found in enumerate(checked):
        image = prepare_image(record_set, index, found, rules)
        items += image_issues(image, rules, set(kinds))
    return sorted(items, key=_order)


def _check_rules(rules: Rules) -> None:
    values = {name: getattr(rules, name) for name in rules.__dataclass_fields__}
    low, high = values.pop("loose_iou")
    values |= {"loose_iou low": low, "loose_iou high": high}
    wrong = [f"{name}={value}" for name, value in values.items() if not 0.0 <= value <= 1.0]
    if low >= high:
        wrong.append(f"loose_iou={rules.loose_iou} (low must be below high)")
    if wrong:
        raise ConfigError(f"label-issue thresholds out of range: {', '.join(wrong)}; use [0, 1]")


def _order(item: ReviewItem) -> tuple:
    obj = -1 if item.object_index is None else item.object_index
    return (-item.score, KINDS.index(item.kind), item.image_index, obj, item.suggested_box or ())


# ---------------------------------------------------------------------------------------------
# The review CSV (schema: edgevision.data.doctor.review_csv)


def write_review_csv(items: Sequence[ReviewItem], path: str | Path) -> Path:
    """Write ``label_review.csv`` with an empty ``accept`` column for the user to fill.

    Columns: :data:`edgevision.data.doctor.review_csv.REVIEW_COLUMNS`.

    Returns:
        ``path`` as a Path; the write is atomic.
    """
    rows = [
        ReviewRow(
            file=item.file,
            object_index=item.object_index,
            kind=item.kind,
            score=item.score,
            class_name=item.class_name,
            box=item.box,
            suggested_class=item.suggested_class,
            suggested_box=item.suggested_box,
            note=item.note,
            accept=bool(item.accept),
        )
        for item in items
    ]
    return write_review_rows(rows, path)


def read_review_csv(path: str | Path, record_set: RecordSet | None = None) -> list[ReviewItem]:
    """Read a (marked) review CSV back as items whose ``accept`` says what the user decided.

    Args:
        path: the CSV.
        record_set: when given, ``image_index`` is looked up by ``file`` (-1 when absent);
            without it every ``image_index`` is -1 (the CSV does not store it).

    Raises:
        DataError: a malformed row, naming ``file:line`` and the column.
    """
    records = record_set.records if record_set is not None else []
    index = {item_file(record_set.root, r.image_path): i for i, r in enumerate(records)}
    return [
        ReviewItem(
            file=row.file,
            image_index=index.get(row.file, -1),
            object_index=row.object_index,
            kind=row.kind,
            score=row.score,
            class_name=row.class_name,
            box=row.box,
            suggested_class=row.suggested_class,
            suggested_box=row.suggested_box,
            note=row.note,
            accept=row.accept,
        )
        for row in read_review_rows(path)
    ]
