"""Numerical checks that every export runs: fused vs unfused, ONNX Runtime vs PyTorch, detections.

A failed check raises :class:`ParityError`; an exported file that silently disagrees with its
checkpoint is worse than no file. Tolerances (float32 rounding differs between fused/unfused
graphs and between ONNX Runtime's kernels and PyTorch's, and grows with the output scale, so the
raw tolerances are relative to ``max(1, max |reference|)``):

- Conv+BN folding: 1e-4 of the raw-output scale (a trained nano-s differs by ~5e-7).
- ONNX Runtime vs PyTorch graph outputs: 1e-3 of the output scale.
- Detections after NMS on sample images: the same detections, boxes within 1 px, scores within
  1e-3. A detection found by one side only is accepted when it sits on a decision boundary (score
  within 1e-3 of ``conf``, IoU within 5e-3 of the NMS threshold with a better box of its class, or
  the last places of a full ``max_det`` list), where a 1e-6 difference legitimately flips it; any
  other difference fails.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgevision.core.errors import ParityError
from edgevision.core.results import Detections
from edgevision.ops.boxes import box_iou_numpy

FUSE_TOLERANCE = 1e-4
RAW_TOLERANCE = 1e-3
BOX_TOLERANCE_PX = 1.0
SCORE_TOLERANCE = 1e-3
IOU_BOUNDARY = 5e-3


def max_abs_diff(reference, candidate) -> float:
    """Largest absolute difference of two arrays/tensors of the same shape (0 for empty ones)."""
    reference, candidate = _numpy(reference), _numpy(candidate)
    if reference.shape != candidate.shape:
        raise ParityError(
            f"output shapes differ: PyTorch {reference.shape}, ONNX {candidate.shape}"
        )
    if reference.size == 0:
        return 0.0
    return float(np.abs(reference.astype(np.float64) - candidate.astype(np.float64)).max())


def _numpy(value) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def output_scale(reference) -> float:
    """``max(1, max |reference|)``: the scale relative tolerances are multiplied by."""
    values = _numpy(reference)
    return max(1.0, float(np.abs(values).max())) if values.size else 1.0


@torch.no_grad()
def check_fusion(unfused: nn.Module, fused: nn.Module, images: torch.Tensor) -> float:
    """Max abs difference of raw outputs before and after Conv+BN folding.

    Args:
        images: (B, 3, H, W) float in [0, 1].

    Raises:
        ParityError: the difference exceeds ``FUSE_TOLERANCE`` of the output scale.
    """
    reference = unfused.eval()(images)
    diff = max_abs_diff(reference, fused.eval()(images))
    limit = FUSE_TOLERANCE * output_scale(reference)
    if not diff <= limit:  # also catches NaN
        raise ParityError(
            f"fused Conv+BN model differs from the trained one by {diff:.3g} (> {limit:.3g}); "
            "the checkpoint may hold non-finite BatchNorm statistics"
        )
    return diff


def check_outputs(reference: list, candidate: list, nms: bool) -> float:
    """Compare graph outputs (ONNX Runtime) with the module's (PyTorch); returns max abs diff.

    For an ``nms`` graph ``num_dets`` and ``classes`` must match exactly and boxes/scores are
    compared on the rows both sides filled; for a raw graph the whole tensor is compared.

    Raises:
        ParityError: a difference beyond ``RAW_TOLERANCE`` of the output scale.
    """
    if not nms:
        diff = max_abs_diff(reference[0], candidate[0])
        limit = RAW_TOLERANCE * output_scale(reference[0])
    else:
        counts = _numpy(candidate[0])[:, 0]
        if not np.array_equal(counts, _numpy(reference[0])[:, 0]):
            # NMS near a boundary can flip one box; leave that verdict to the detection check.
            return float("nan")
        diff = max(
            (
                _rows_diff(
                    [_numpy(r)[i, :count] for r in reference[1:]],
                    [_numpy(c)[i, :count] for c in candidate[1:]],
                )
                for i, count in enumerate(counts)
            ),
            default=0.0,
        )
        limit = RAW_TOLERANCE * output_scale(_numpy(reference[1]))
    if not diff <= limit:
        raise ParityError(f"ONNX Runtime output differs from PyTorch by {diff:.3g} (> {limit:.3g})")
    return diff


def _rows_diff(reference: list[np.ndarray], candidate: list[np.ndarray]) -> float:
    """Order-free difference of one image's NMS rows (boxes (K, 4), scores (K,), classes (K,),
    and keypoints (K, P, 3) for pose graphs): near-equal scores may swap places between engines,
    so each reference row is compared with the closest candidate row of its class (its keypoints
    with that row's), and the sorted score lists with each other."""
    (ref_boxes, ref_scores, ref_classes), (boxes, scores, classes) = reference[:3], candidate[:3]
    ref_points, points = (reference[3], candidate[3]) if len(reference) > 3 else (None, None)
    if not len(ref_scores):
        return 0.0
    diff = float(np.abs(np.sort(ref_scores) - np.sort(scores)).max())
    for row, (box, cls) in enumerate(zip(ref_boxes, ref_classes, strict=True)):
        same = np.flatnonzero(classes == cls)
        if not len(same):
            return float("inf")
        gaps = np.abs(boxes[same] - box).max(axis=1)
        diff = max(diff, float(gaps.min()))
        if ref_points is not None:
            closest = same[int(gaps.argmin())]
            diff = max(diff, float(np.abs(points[closest] - ref_points[row]).max()))
    return diff


def compare_detections(
    reference: list[Detections], candidate: list[Detections], conf: float, iou: float, max_det: int
) -> dict:
    """Match detections image by image (see the module docstring for the rules).

    Returns:
        dict: ``images``, ``reference`` / ``candidate`` detection counts, ``matched``,
        ``borderline`` (unmatched but on a decision boundary), ``unexplained`` (failures),
        ``max_box_diff_px``, ``max_score_diff`` and ``ok``.
    """
    report = {
        "images": len(reference),
        "reference": 0,
        "candidate": 0,
        "matched": 0,
        "borderline": 0,
        "unexplained": 0,
        "max_box_diff_px": 0.0,
        "max_score_diff": 0.0,
    }
    for ref, cand in zip(reference, candidate, strict=True):
        pairs = _match(ref, cand)
        report["reference"] += len(ref)
        report["candidate"] += len(cand)
        report["matched"] += len(pairs)
        for i, j in pairs:
            report["max_box_diff_px"] = max(
                report["max_box_diff_px"], float(np.abs(ref.boxes[i] - cand.boxes[j]).max())
            )
            report["max_score_diff"] = max(
                report["max_score_diff"], float(abs(ref.scores[i] - cand.scores[j]))
            )
        for side, other, used in (
            (ref, cand, {i for i, _ in pairs}),
            (cand, ref, {j for _, j in pairs}),
        ):
            for k in sorted(set(range(len(side))) - used):
                key = (
                    "borderline"
                    if _on_boundary(side, k, other, conf, iou, max_det)
                    else "unexplained"
                )
                report[key] += 1
    report["ok"] = report["unexplained"] == 0
    return report


def _match(ref: Detections, cand: Detections) -> list[tuple[int, int]]:
    """Greedy pairs (reference index, candidate index): same class, boxes and scores in tolerance."""
    pairs, taken = [], set()
    for i in np.argsort(-ref.scores, kind="stable"):
        close = (
            (cand.classes == ref.classes[i])
            & (np.abs(cand.boxes - ref.boxes[i]).max(axis=1, initial=0) <= BOX_TOLERANCE_PX)
            & (np.abs(cand.scores - ref.scores[i]) <= SCORE_TOLERANCE)
        )
        free = [j for j in np.flatnonzero(close) if j not in taken]
        if free:
            best = min(free, key=lambda j: abs(cand.scores[j] - ref.scores[i]))
            pairs.append((int(i), int(best)))
            taken.add(best)
    return pairs


def _on_boundary(
    side: Detections, k: int, other: Detections, conf: float, iou: float, max_det: int
) -> bool:
    """Could a tiny numerical difference explain why detection ``k`` of ``side`` is missing in ``other``?"""
    score = side.scores[k]
    if abs(score - conf) <= SCORE_TOLERANCE:
        return True
    if len(other) >= max_det and len(other) and score <= other.scores.min() + SCORE_TOLERANCE:
        return True
    better = (other.classes == side.classes[k]) & (other.scores >= score - SCORE_TOLERANCE)
    if not better.any():
        return False
    overlaps = box_iou_numpy(
        side.boxes[k : k + 1].astype(np.float64), other.boxes[better].astype(np.float64)
    )
    return bool((np.abs(overlaps - iou) <= IOU_BOUNDARY).any())


def format_report(report: dict) -> str:
    """One line per check, as printed after every export."""
    lines = [f"fused Conv+BN vs trained model: max abs diff {report['fuse_max_abs_diff']:.2e}"]
    for name, check in report["checks"].items():
        detections = check["detections"]
        lines.append(
            f"{name}: ONNX Runtime vs PyTorch max abs diff {check['raw_max_abs_diff']:.2e}; "
            f"detections on {detections['images']} images: {detections['matched']}/"
            f"{detections['reference']} matched (boxes within {detections['max_box_diff_px']:.3f} px, "
            f"scores within {detections['max_score_diff']:.1e}), {detections['borderline']} "
            f"on a threshold boundary -> {'OK' if detections['ok'] else 'FAILED'}"
        )
    return "\n".join(lines)
