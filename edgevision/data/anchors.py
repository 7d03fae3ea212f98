"""``edgevision data anchors``: k-means anchor boxes for anchor-based heads (``yolo-tiny-anchor``).

Boxes are compared by shape only: two sizes ``(w, h)`` are placed at a common corner and their IoU
taken, so the distance ``1 - IoU`` is scale-aware (unlike Euclidean distance, which lets large boxes
dominate). Cluster centres are the per-cluster *median* size (robust to a few huge boxes, as in the
darknet scripts). Several seeded restarts keep the result with the best mean IoU, and an optional
genetic refinement mutates the anchors and keeps mutations that raise the same fitness, the mean
best IoU: the one objective both steps and the report share. (Ultralytics' genetic step optimises a
ratio-threshold metric instead; its best-possible recall is reported here by :func:`anchor_metrics`.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgevision.core.errors import ConfigError, DataError
from edgevision.core.fileio import atomic_write
from edgevision.core.records import RecordSet
from edgevision.ops.boxes import box_area, box_iou_numpy, order_corners, xyxy_to_xywh


def wh_iou(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU of sizes aligned at a common corner: (N, 2) x (K, 2) -> (N, K)."""
    return box_iou_numpy(_corner_boxes(wh), _corner_boxes(anchors))


def _corner_boxes(wh: np.ndarray) -> np.ndarray:
    """(N, 2) sizes -> (N, 4) xyxy boxes with their top-left corner at the origin."""
    wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    return np.concatenate([np.zeros_like(wh), wh], axis=1)


def _check_sizes(wh: np.ndarray, k: int) -> np.ndarray:
    """Positive, finite (N, 2) sizes; an error that says what to change when clustering cannot run."""
    wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    wh = wh[np.isfinite(wh).all(axis=1) & (wh > 0).all(axis=1)]
    if k < 1:
        raise ConfigError(f"-k {k}: need at least one anchor")
    distinct = len(np.unique(wh, axis=0))
    if distinct < k:
        raise ConfigError(f"only {distinct} distinct box sizes for -k {k}; use a smaller -k")
    return wh


def _initial_centres(wh: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding under the 1 - IoU distance: far-apart shapes make good starts."""
    centres = [wh[rng.integers(len(wh))]]
    for _ in range(k - 1):
        distance = 1 - wh_iou(wh, np.array(centres)).max(axis=1)
        weights = distance**2
        total = weights.sum()
        index = rng.choice(len(wh), p=weights / total) if total > 0 else rng.integers(len(wh))
        centres.append(wh[index])
    return np.array(centres)


def _lloyd(wh: np.ndarray, centres: np.ndarray, max_iterations: int) -> np.ndarray:
    """Assign each box to its highest-IoU centre, move centres to cluster medians, until stable."""
    assignment = None
    for _ in range(max_iterations):
        iou = wh_iou(wh, centres)
        new_assignment = iou.argmax(axis=1)
        if assignment is not None and (new_assignment == assignment).all():
            break
        assignment = new_assignment
        for cluster in range(len(centres)):
            members = wh[assignment == cluster]
            if len(members):
                centres[cluster] = np.median(members, axis=0)
            else:  # an empty cluster restarts at the box the current centres fit worst
                centres[cluster] = wh[iou.max(axis=1).argmin()]
    return centres


def _fitness(wh: np.ndarray, anchors: np.ndarray) -> float:
    """Mean over boxes of the best anchor IoU: what k-means and the genetic step maximise."""
    return float(wh_iou(wh, anchors).max(axis=1).mean())


def _evolve(
    wh: np.ndarray, anchors: np.ndarray, generations: int, rng: np.random.Generator
) -> np.ndarray:
    """Genetic refinement: random multiplicative mutations, kept only when the fitness rises."""
    best, best_fitness = anchors.copy(), _fitness(wh, anchors)
    for _ in range(generations):
        # Small steps on a few sizes at a time: k-means is already near a local optimum, where
        # changing every size at once almost never helps.
        mutate = rng.random(best.shape) < 0.2
        factor = np.exp(rng.normal(0, 0.05, best.shape) * mutate)
        candidate = best * factor
        candidate_fitness = _fitness(wh, candidate)
        if candidate_fitness > best_fitness:
            best, best_fitness = candidate, candidate_fitness
    return best


def kmeans_anchors(
    wh: np.ndarray,
    k: int = 9,
    restarts: int = 10,
    seed: int = 0,
    genetic_generations: int = 0,
    max_iterations: int = 300,
) -> np.ndarray:
    """Cluster box sizes into ``k`` anchors with the 1 - IoU distance.

    Args:
        wh: (N, 2) box widths and heights in the pixels the model sees (see :func:`letterbox_wh`);
            rows with a non-positive or non-finite size are ignored.
        k: number of anchors (9 for three levels of three, 6 for YOLOv4-tiny).
        restarts: independent k-means++ starts; the best mean IoU wins.
        seed: same seed and data, same anchors.
        genetic_generations: mutation rounds after k-means (0 turns refinement off).
        max_iterations: cap on assignment/update rounds per restart.

    Returns:
        (k, 2) anchor widths and heights, sorted by area (smallest first).

    Raises:
        ConfigError: ``k < 1`` or fewer distinct box sizes than ``k``.
    """
    wh = _check_sizes(wh, k)
    best, best_fitness = None, -1.0
    for restart in range(max(restarts, 1)):
        rng = np.random.default_rng([seed, restart])
        centres = _lloyd(wh, _initial_centres(wh, k, rng), max_iterations)
        fitness = _fitness(wh, centres)
        if fitness > best_fitness:
            best, best_fitness = centres, fitness
    if genetic_generations > 0:
        best = _evolve(wh, best, genetic_generations, np.random.default_rng([seed, restarts]))
    return best[np.argsort(box_area(_corner_boxes(best)), kind="stable")]


def anchor_metrics(wh: np.ndarray, anchors: np.ndarray, ratio_threshold: float = 4.0) -> dict:
    """How well ``anchors`` (K, 2) fit box sizes ``wh`` (N, 2).

    Returns:
        ``mean_iou``: mean over boxes of the best corner-aligned IoU with any anchor;
        ``best_possible_recall``: share of boxes with an anchor whose side ratios
        ``max(w / a_w, a_w / w, h / a_h, a_h / h)`` are below ``ratio_threshold`` (the shape match
        an anchor-based YOLO head uses to assign a box to an anchor);
        ``num_boxes``: N.
    """
    wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    anchors = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)
    if len(wh) == 0:
        return {"mean_iou": 0.0, "best_possible_recall": 0.0, "num_boxes": 0}
    ratios = wh[:, None, :] / anchors[None, :, :]  # (N, K, 2)
    worst_side = np.maximum(ratios, 1 / ratios).max(axis=2)  # (N, K)
    return {
        "mean_iou": _fitness(wh, anchors),
        "best_possible_recall": float((worst_side.min(axis=1) < ratio_threshold).mean()),
        "num_boxes": len(wh),
    }


def letterbox_wh(record_set: RecordSet, imgsz: int) -> np.ndarray:
    """(N, 2) box sizes as the model sees them after letterboxing each image to ``imgsz``.

    Each image is scaled by ``imgsz / max(width, height)`` (its annotated size), so anchors are
    clustered in input pixels. Zero-area boxes are dropped.

    Raises:
        DataError: an image with boxes has no annotated size.
    """
    sizes = []
    for record in record_set.records:
        if record.num_objects == 0:
            continue
        if record.width <= 0 or record.height <= 0:
            raise DataError(
                record.annotation_path or record.image_path,
                "image size unknown, cannot scale its boxes",
                "run edgevision data check --fix",
            )
        scale = imgsz / max(record.width, record.height)
        sizes.append(xyxy_to_xywh(order_corners(record.boxes.astype(np.float64)))[:, 2:] * scale)
    wh = np.concatenate(sizes) if sizes else np.zeros((0, 2), np.float64)
    return wh[(wh > 0).all(axis=1)]


def format_anchors(anchors: np.ndarray) -> str:
    """Anchors as darknet cfg / YOLO yaml text: ``w,h, w,h, ...`` rounded to whole pixels."""
    return ",  ".join(f"{round(w)},{round(h)}" for w, h in np.asarray(anchors))


def plot_anchors(wh: np.ndarray, anchors: np.ndarray, path: str | Path) -> Path:
    """Scatter of box sizes coloured by their best anchor, anchors marked; PNG written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot: no global state
    from matplotlib.figure import Figure

    wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    anchors = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)
    figure = Figure(figsize=(6.4, 6.4), layout="tight")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if len(wh):
        nearest = wh_iou(wh, anchors).argmax(axis=1)
        axes.scatter(wh[:, 0], wh[:, 1], c=nearest, cmap="tab10", s=4, alpha=0.4)
    axes.scatter(anchors[:, 0], anchors[:, 1], marker="x", color="red", s=80, label="anchors")
    metrics = anchor_metrics(wh, anchors)
    axes.set(
        xscale="log",
        yscale="log",
        xlabel="width (px)",
        ylabel="height (px)",
        title=f"{len(anchors)} anchors: mean IoU {metrics['mean_iou']:.3f}, "
        f"BPR {metrics['best_possible_recall']:.3f}",
    )
    axes.legend()
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=100))
