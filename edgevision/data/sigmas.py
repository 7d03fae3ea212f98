"""OKS sigmas: which per-keypoint sigmas a pose evaluation uses, and estimating them from data.

COCO's object keypoint similarity scores a predicted point ``i`` as
``exp(-d_i^2 / (2 s^2 (2 sigma_i)^2))``, with ``d_i`` its distance from the label and ``s^2``
the object's area: ``sigma_i`` says how far, relative to the object's size, a prediction may
stray before it stops counting. A sharp point (an eye) gets a small sigma, a vague one (a hip)
a large one, so the sigmas are part of what "AP" means for a dataset.

:func:`resolve_sigmas` picks them in this order, and says which it took:

1. the user's (``--sigmas``);
2. the data's own: a data YAML's ``kpt_oks_sigmas`` or a COCO JSON's ``"edgevision"`` dict;
3. COCO's 17 person sigmas when the data is laid out as COCO persons (K = 17 with COCO's names,
   or without names);
4. :data:`DEFAULT_SIGMA` for every point. Never 1/K, as Ultralytics does for non-person data:
   1/K makes a 5-point dataset four times more lenient than a 20-point one although nothing
   about the points differs. 0.05 sits between COCO's most precise points (eyes 0.025, ears
   0.035) and its wrists (0.062): custom keypoints are mostly corners, tips and landmarks chosen
   because they can be clicked precisely. A point then scores OKS 0.5 at ``0.12 * sqrt(area)``
   from its label (5 px on a 40 x 40 px object).

:func:`estimate_sigmas` follows COCO's recipe, ``sigma_i^2 = E[d_i^2 / s^2]`` with ``d_i`` the
distance between an annotation and the true point, from objects annotated more than once.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from edgevision.core.errors import ConfigError, DataError
from edgevision.core.records import RecordSet
from edgevision.data.formats.keypoint_schema import sigmas_problem
from edgevision.ops.boxes import box_area, box_iou_numpy

# The COCO keypoint evaluation's sigmas (cocoeval.py), in COCO's keypoint order.
COCO_PERSON_SIGMAS = (
    np.array([26, 25, 25, 35, 35, 79, 79, 72, 72, 62, 62, 107, 107, 87, 87, 89, 89]) / 1000
)
COCO_PERSON_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
DEFAULT_SIGMA = 0.05  # every point, when nothing else says (see the module docstring)
SAME_OBJECT_IOU = 0.8  # two annotations of one class in one image with this box IoU: one object
FEW_PAIRS = 20  # fewer repeats of a point than this: the estimate is rough, and said so
_PLACEHOLDER = re.compile(r"keypoint_\d+")  # names the COCO writer invents for unnamed points


def _is_coco_person(record_set: RecordSet) -> bool:
    names = record_set.kpt_names
    if record_set.num_keypoints != len(COCO_PERSON_NAMES):
        return False
    return (
        not names
        or list(names) == list(COCO_PERSON_NAMES)
        or all(map(_PLACEHOLDER.fullmatch, names))
    )


def _data_source(record_set: RecordSet) -> str:
    if record_set.format == "yolo":
        return "data YAML kpt_oks_sigmas"
    if record_set.format == "coco":
        return 'COCO JSON "edgevision" kpt_oks_sigmas'
    return "the dataset's kpt_sigmas"


def resolve_sigmas(
    record_set: RecordSet, user: list[float] | None = None
) -> tuple[np.ndarray, str]:
    """The OKS sigmas to evaluate ``record_set`` with, and where they came from.

    Args:
        record_set: a pose dataset (records with (N, K, 3) keypoints, or keypoint names).
        user: sigmas the user gave (``--sigmas``), K positive numbers in keypoint order.

    Returns:
        (K,) float64 sigmas, and the source in words: "the sigmas you gave", "data YAML kpt_oks_sigmas",
        'COCO JSON "edgevision" kpt_oks_sigmas', "COCO person" or "default 0.05 for every point
        (set kpt_oks_sigmas ...)".

    Raises:
        ConfigError: ``user`` has the wrong length or a value that is not positive.
        DataError: the dataset has no keypoints, or states unusable sigmas.
    """
    num_keypoints = record_set.num_keypoints
    if not num_keypoints:
        raise DataError(record_set.root, "no keypoints: sigmas apply to pose data", "check --data")
    if user is not None:
        problem = sigmas_problem(list(user), num_keypoints)
        if problem:
            order = f" (order: {', '.join(record_set.kpt_names)})" if record_set.kpt_names else ""
            hint = f"give {num_keypoints} positive numbers, one per keypoint{order}"
            raise ConfigError(f"--sigmas: {problem}; {hint}")
        return np.asarray(user, dtype=np.float64), "the sigmas you gave"
    if record_set.kpt_sigmas is not None:
        problem = sigmas_problem(list(record_set.kpt_sigmas), num_keypoints)
        if problem:
            raise DataError(record_set.root, f"{_data_source(record_set)}: {problem}", "fix them")
        return np.asarray(record_set.kpt_sigmas, dtype=np.float64), _data_source(record_set)
    if _is_coco_person(record_set):
        return COCO_PERSON_SIGMAS.copy(), "COCO person"
    source = (
        f"default {DEFAULT_SIGMA} for every point (set kpt_oks_sigmas in the data, "
        "or measure them: edgevision data sigmas DATA)"
    )
    return np.full(num_keypoints, DEFAULT_SIGMA), source


def _objects_by_image(record_set: RecordSet, num_keypoints: int) -> dict[Path, list]:
    """Per image path, (boxes, labels, keypoints) of every record of it (a merged dataset may
    hold one image twice, once per annotator file); crowd objects are left out."""
    by_image: dict[Path, list] = defaultdict(list)
    for record in record_set.records:
        if record.keypoints is None or record.keypoints.shape[1] != num_keypoints:
            continue
        keep = ~record.iscrowd
        by_image[record.image_path].append(
            (record.boxes[keep], record.labels[keep], record.keypoints[keep])
        )
    return by_image


def _repeat_terms(boxes: np.ndarray, labels: np.ndarray, keypoints: np.ndarray) -> list:
    """(K,) ``d^2 / s^2`` (NaN where a point is not labelled in both) for every pair of
    annotations of one image that are the same object."""
    boxes = boxes.astype(np.float64)
    iou = box_iou_numpy(boxes, boxes)
    same = (iou >= SAME_OBJECT_IOU) & (labels[:, None] == labels[None, :])
    areas = box_area(boxes)
    terms = []
    for a, b in zip(*np.nonzero(np.triu(same, k=1)), strict=True):
        scale = (areas[a] + areas[b]) / 2
        both = (keypoints[a, :, 2] > 0) & (keypoints[b, :, 2] > 0)
        squared = ((keypoints[a, :, :2] - keypoints[b, :, :2]).astype(np.float64) ** 2).sum(-1)
        if scale > 0:
            terms.append(np.where(both, squared / scale, np.nan))
    return terms


def estimate_sigmas(record_set: RecordSet) -> tuple[np.ndarray | None, str]:
    """Per-keypoint OKS sigmas measured from objects annotated more than once.

    Same object: two annotations in the same image (one record, or several records of one image
    file) of the same class whose boxes overlap with IoU >= :data:`SAME_OBJECT_IOU`; crowd
    objects are left out. For each such pair and each point labelled in both (v > 0),
    ``d^2 / s^2`` with ``d`` the distance between the two annotations and ``s^2`` the mean of the
    two box areas (the ``area`` edgevision writes to COCO and evaluates with; COCO's person
    sigmas use the smaller segment area). Both annotations miss the true point independently,
    so ``E[d^2] = 2 sigma^2 s^2``: ``sigma_i = sqrt(mean(d^2 / s^2) / 2)``. Two different
    objects overlapping that much would count as a repeat too; they are rare outside crowds.

    Returns:
        ((K,) sigmas, a message saying how many repeats each rests on) or (None, why not):
        "cannot estimate: no object is annotated twice ...". Points never labelled in a pair
        get :data:`DEFAULT_SIGMA`, and the message names them.
    """
    num_keypoints = record_set.num_keypoints
    if not num_keypoints:
        return None, "cannot estimate: the dataset has no keypoints"
    terms = []
    for parts in _objects_by_image(record_set, num_keypoints).values():
        boxes, labels, keypoints = (np.concatenate(column) for column in zip(*parts, strict=True))
        terms += _repeat_terms(boxes, labels, keypoints)
    if not terms:
        reason = (
            "cannot estimate: no object is annotated twice (same image, same class, box IoU >= "
            f"{SAME_OBJECT_IOU}); annotate some objects again, independently, and keep both copies"
        )
        return None, reason
    table = np.array(terms)
    counts = np.isfinite(table).sum(axis=0)
    means = np.nanmean(np.where(counts > 0, table, 0.0), axis=0)
    sigmas = np.where(counts > 0, np.sqrt(means / 2), DEFAULT_SIGMA)
    return sigmas, _estimate_message(record_set, len(terms), counts)


def _estimate_message(record_set: RecordSet, num_pairs: int, counts: np.ndarray) -> str:
    names = record_set.kpt_names or [str(i) for i in range(len(counts))]
    lines = [f"estimated from {num_pairs} objects annotated twice (pairs per point: "]
    lines[0] += f"{int(counts.min())}..{int(counts.max())})"
    missing = [names[i] for i in np.flatnonzero(counts == 0)]
    if missing:
        lines.append(f"never labelled in a pair, left at {DEFAULT_SIGMA}: {', '.join(missing)}")
    rough = [names[i] for i in np.flatnonzero((counts > 0) & (counts < FEW_PAIRS))]
    if rough:
        lines.append(f"rough (fewer than {FEW_PAIRS} pairs): {', '.join(rough)}")
    return "; ".join(lines)


def sigma_report(record_set: RecordSet, user: list[float] | None = None) -> str:
    """What ``edgevision data sigmas DATA`` prints: the sigmas evaluation will use (and why),
    the ones measured from repeated annotations, and a ``kpt_oks_sigmas:`` line to paste."""
    sigmas, source = resolve_sigmas(record_set, user)
    estimated, message = estimate_sigmas(record_set)
    names = record_set.kpt_names or [f"keypoint {i}" for i in range(len(sigmas))]
    width = max(len("keypoint"), *(len(name) for name in names))
    lines = [f"sigmas used: {source}", f"{'keypoint':<{width}}  used    measured"]
    for index, name in enumerate(names):
        measured = "" if estimated is None else f"{estimated[index]:.4f}"
        lines.append(f"{name:<{width}}  {sigmas[index]:.4f}  {measured}")
    lines.append(message)
    if estimated is not None:
        values = f"[{', '.join(f'{value:.4f}' for value in estimated)}]"
        if record_set.format == "coco":
            where = f'the COCO JSON: "edgevision": {{"kpt_oks_sigmas": {values}}}'
        else:
            where = f"the data YAML: kpt_oks_sigmas: {values}"
        lines.append(f"to use the measured ones, add to {where}")
    return "\n".join(lines)
