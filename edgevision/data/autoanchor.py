"""Autoanchor: check an anchor set against the training labels before training, re-cluster if poor.

An anchor-based head can only learn a box that some anchor matches (side ratios below
``anchor_t``, see ``assign/shape_match.py``); the share of label boxes with such an anchor is the
*best possible recall* (BPR). Anchors tuned on COCO leave many boxes unmatched on datasets of very
long, very small or very large objects, and those boxes then never train. So at train start:
measure the BPR on the label sizes as the model sees them (letterboxed to ``imgsz``), and below
``threshold`` re-cluster with the k-means of :mod:`edgevision.data.anchors` (same count), keeping
the new set only if its BPR is higher.

Anchor files hold ``w,h`` pairs in input pixels, the text :func:`format_anchors` prints (and
``edgevision data anchors`` shows on its first line); ``#`` starts a comment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from edgevision.core.errors import ConfigError, DataError
from edgevision.core.fileio import atomic_write_text
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.anchors import anchor_metrics, format_anchors, kmeans_anchors, letterbox_wh

ANCHORS_FILE_HINT = "write w,h pairs in input pixels, e.g. '10,14,  23,27,  37,58'"


def sizes_for_training(records: RecordSet | Iterable[ImageRecord], imgsz: int) -> np.ndarray:
    """(N, 2) label box sizes in training pixels: each image letterboxed to ``imgsz``.

    The same scaling as ``edgevision data anchors`` (:func:`letterbox_wh`), so its anchors and
    autoanchor's are in the same units. Zero-area boxes are dropped.

    Raises:
        DataError: an image with boxes has no annotated size.
    """
    if not isinstance(records, RecordSet):
        records = RecordSet(list(records), [], Path("."), "records")
    return letterbox_wh(records, imgsz)


def best_possible_recall(wh: np.ndarray, anchors: np.ndarray, anchor_t: float = 4.0) -> float:
    """Share of sizes ``wh`` (N, 2) with an anchor within side ratio ``anchor_t``; anchors any
    shape (..., 2). 0 when there are no sizes."""
    flat = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)
    return anchor_metrics(wh, flat, ratio_threshold=anchor_t)["best_possible_recall"]


def check_anchors(
    wh: np.ndarray,
    anchors: np.ndarray,
    anchor_t: float = 4.0,
    threshold: float = 0.98,
    source: str = "the default anchors",
    restarts: int = 10,
    generations: int = 300,
    seed: int = 0,
) -> tuple[np.ndarray, str]:
    """The anchors to train with, and a one-line report for the training log.

    Args:
        wh: (N, 2) label sizes in training pixels (:func:`sizes_for_training`).
        anchors: the model's anchors, (L, na, 2) or (K, 2), input pixels.
        anchor_t: the loss's shape-ratio bound.
        threshold: re-cluster when the BPR is below this.
        source: how the report names ``anchors`` ("the default anchors", "anchors.txt").
        restarts, generations, seed: k-means settings (:func:`kmeans_anchors`).

    Returns:
        Anchors of the shape given (the re-clustered set, sorted by area and split by level like
        ``anchors`` when it wins; ``anchors`` itself otherwise) and the report, e.g.
        ``autoanchor: best possible recall 0.930 < 0.98 with the default anchors; re-clustered:
        0.995 (anchors 12,16,  ...)``.
    """
    anchors = np.asarray(anchors, dtype=np.float64)
    wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    if len(wh) == 0:
        return anchors, f"autoanchor: no labelled boxes to check {source} against, anchors kept"
    bpr = best_possible_recall(wh, anchors, anchor_t)
    head = f"autoanchor: best possible recall {bpr:.3f}"
    if bpr >= threshold:
        return anchors, f"{head} with {source}, anchors kept"
    head = f"{head} < {threshold:g} with {source}; re-clustered"
    count = anchors.size // 2
    try:
        new = kmeans_anchors(
            wh, k=count, restarts=restarts, seed=seed, genetic_generations=generations
        )
    except ConfigError as e:  # fewer distinct sizes than anchors: nothing to cluster
        return anchors, f"{head}: impossible ({e}), anchors kept"
    new_bpr = best_possible_recall(wh, new, anchor_t)
    if new_bpr <= bpr:
        return anchors, f"{head}: {new_bpr:.3f}, no better, anchors kept"
    return new.reshape(anchors.shape), f"{head}: {new_bpr:.3f} (anchors {format_anchors(new)})"


def anchors_for_training(
    option: str,
    current: np.ndarray,
    wh: np.ndarray,
    anchor_t: float = 4.0,
    threshold: float = 0.98,
    source: str = "the default anchors",
) -> tuple[np.ndarray, str]:
    """What ``--anchors`` means at train start, and the line to log.

    Args:
        option: "auto" (:func:`check_anchors`: re-cluster when the BPR is below ``threshold``),
            "default" (keep ``current``, report its BPR) or the path of an anchors file (used as
            given, sorted by area and split by level like ``current``; its BPR reported).
        current: the model's anchors (L, na, 2) in input pixels.
        wh: (N, 2) label sizes in training pixels (:func:`sizes_for_training`).
        anchor_t, threshold: the loss's shape-ratio bound and autoanchor's BPR threshold.
        source: how the report names ``current``.

    Returns:
        Anchors of ``current``'s shape and the report.

    Raises:
        DataError: the anchors file is missing, malformed or holds another count.
    """
    current = np.asarray(current, dtype=np.float64)
    if option == "auto":
        return check_anchors(wh, current, anchor_t, threshold, source)
    if option == "default":
        anchors = current
    else:
        flat = load_anchors_file(option, expected=current.size // 2)
        anchors = flat[np.argsort(flat[:, 0] * flat[:, 1], kind="stable")].reshape(current.shape)
        source = f"the anchors of {option}"
    if len(np.asarray(wh).reshape(-1, 2)) == 0:
        return anchors, f"anchors: {source}, no labelled boxes to check them against"
    bpr = best_possible_recall(wh, anchors, anchor_t)
    advice = f" (below {threshold:g}: try --anchors auto)" if bpr < threshold else ""
    return anchors, f"anchors: {source}, best possible recall {bpr:.3f}{advice}"


def write_anchors_file(path: str | Path, anchors: np.ndarray, note: str = "") -> Path:
    """Write anchors as :func:`load_anchors_file` reads them (one line of ``w,h`` pairs, smallest
    first, after a comment line), atomically."""
    flat = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)
    flat = flat[np.argsort(flat[:, 0] * flat[:, 1], kind="stable")]
    comment = "# edgevision anchors: w,h in input pixels, smallest first" + (
        f"; {note}" if note else ""
    )
    return atomic_write_text(path, f"{comment}\n{format_anchors(flat)}\n")


def load_anchors_file(path: str | Path, expected: int | None = None) -> np.ndarray:
    """Anchors (K, 2) from a file of ``w,h`` pairs (commas or spaces between numbers, any number
    of lines, ``#`` comments), in file order.

    Args:
        path: the file.
        expected: the anchor count the model needs (L * na); checked when given.

    Raises:
        DataError: the file is missing or malformed; the message names the file (and the line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(path, f"cannot read the anchors file ({e})", ANCHORS_FILE_HINT) from e
    numbers = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        numbers.extend(_numbers_of(path, line.split("#", 1)[0], line_number))
    if not numbers:
        raise DataError(path, "no anchors in the file", ANCHORS_FILE_HINT)
    if len(numbers) % 2:
        raise DataError(path, f"{len(numbers)} numbers, not w,h pairs", ANCHORS_FILE_HINT)
    anchors = np.array(numbers, dtype=np.float64).reshape(-1, 2)
    if expected is not None and len(anchors) != expected:
        raise DataError(
            path,
            f"{len(anchors)} anchors, but the model needs {expected}",
            f"cluster {expected}: edgevision data anchors DATA -k {expected}",
        )
    return anchors


def _numbers_of(path: Path, text: str, line_number: int) -> list[float]:
    """The positive numbers of one line (comment removed); DataError naming the bad token."""
    numbers = []
    for token in re.split(r"[,\s]+", text.strip()):
        if not token:
            continue
        try:
            value = float(token)
        except ValueError as e:
            raise DataError(
                path, f"{token!r} is not a number", ANCHORS_FILE_HINT, line=line_number
            ) from e
        if not np.isfinite(value) or value <= 0:
            raise DataError(
                path,
                f"anchor size {token} is not a positive number",
                ANCHORS_FILE_HINT,
                line=line_number,
            )
        numbers.append(value)
    return numbers
