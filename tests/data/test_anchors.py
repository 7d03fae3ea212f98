"""k-means anchors: hand-computed IoU / BPR, recovered clusters, determinism, letterbox scaling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgevision.core.errors import ConfigError, DataError
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.anchors import (
    anchor_metrics,
    format_anchors,
    kmeans_anchors,
    letterbox_wh,
    plot_anchors,
    wh_iou,
)

CENTRES = np.array([[10.0, 12.0], [40.0, 30.0], [120.0, 160.0]])


def _clustered_sizes(seed: int = 0, per_cluster: int = 200) -> np.ndarray:
    """Sizes scattered +-5% (log-normal) around :data:`CENTRES`."""
    rng = np.random.default_rng(seed)
    noise = np.exp(rng.normal(0, 0.05, (len(CENTRES), per_cluster, 2)))
    return (CENTRES[:, None, :] * noise).reshape(-1, 2)


def test_corner_aligned_iou_by_hand():
    iou = wh_iou(np.array([[10, 10]]), np.array([[10, 10], [20, 20], [5, 20]]))
    # identical; 100 inside 400; min(10,5) * min(10,20) = 50 over 100 + 100 - 50
    np.testing.assert_allclose(iou, [[1.0, 0.25, 1 / 3]])


def test_metrics_on_a_hand_example():
    wh = np.array([[10, 10], [40, 10], [100, 5]])
    anchors = np.array([[10, 10], [20, 20]])
    metrics = anchor_metrics(wh, anchors)
    # best IoUs: 1; max(100/400, 200/600) = 1/3; max(50/550, 100/800) = 1/8
    assert metrics["mean_iou"] == pytest.approx((1 + 1 / 3 + 1 / 8) / 3)
    # worst side ratio to the best anchor: 1, 2 (40/20, 20/10), 5 (100/20): only 5 fails "< 4"
    assert metrics["best_possible_recall"] == pytest.approx(2 / 3)
    assert metrics["num_boxes"] == 3
    assert anchor_metrics(wh, anchors, ratio_threshold=6.0)["best_possible_recall"] == 1.0
    # exactly 4 is not below the threshold (the YOLO shape match is strict)
    assert anchor_metrics(np.array([[40, 10]]), np.array([[10, 10]]))["best_possible_recall"] == 0.0


def test_recovers_known_clusters_sorted_by_area():
    anchors = kmeans_anchors(_clustered_sizes(), k=3, seed=0)
    assert anchors.shape == (3, 2)
    np.testing.assert_allclose(anchors, CENTRES, rtol=0.03)
    assert anchor_metrics(_clustered_sizes(), anchors)["mean_iou"] > 0.85


def test_same_seed_same_anchors_and_refinement_raises_mean_iou():
    wh = np.random.default_rng(1).lognormal(3, 0.8, (500, 2))  # no clean clusters here
    first = kmeans_anchors(wh, k=6, restarts=3, seed=4)
    np.testing.assert_array_equal(first, kmeans_anchors(wh, k=6, restarts=3, seed=4))
    refined = kmeans_anchors(wh, k=6, restarts=3, seed=4, genetic_generations=200)
    np.testing.assert_array_equal(
        refined, kmeans_anchors(wh, k=6, restarts=3, seed=4, genetic_generations=200)
    )
    assert anchor_metrics(wh, refined)["mean_iou"] > anchor_metrics(wh, first)["mean_iou"]
    areas = refined.prod(axis=1)
    assert (np.diff(areas) >= 0).all()


def test_more_restarts_never_lower_the_mean_iou():
    wh = np.random.default_rng(2).lognormal(3, 0.8, (400, 2))
    one = anchor_metrics(wh, kmeans_anchors(wh, k=5, restarts=1))["mean_iou"]
    many = anchor_metrics(wh, kmeans_anchors(wh, k=5, restarts=6))["mean_iou"]
    assert many >= one  # restart 0 is the same start in both runs


def test_too_few_boxes_or_bad_k_is_a_config_error():
    with pytest.raises(ConfigError, match="only 2 distinct box sizes for -k 3"):
        kmeans_anchors(np.array([[10, 10], [10, 10], [20, 5], [0, 4]]), k=3)
    with pytest.raises(ConfigError, match="-k 0"):
        kmeans_anchors(_clustered_sizes(), k=0)


def _record(width: int, height: int, boxes) -> ImageRecord:
    return ImageRecord(
        Path("/d/x.jpg"), width, height, np.array(boxes, float).reshape(-1, 4), [0] * len(boxes)
    )


def test_letterbox_scales_by_the_long_side_and_drops_empty_boxes():
    records = [
        _record(200, 100, [[0, 0, 50, 20], [10, 10, 10, 30]]),  # scale 2; zero width dropped
        _record(100, 400, [[30, 40, 10, 20]]),  # scale 1; corners put in order first
        _record(50, 50, []),
    ]
    wh = letterbox_wh(RecordSet(records, ["a"], Path("/d"), "voc"), 400)
    np.testing.assert_allclose(wh, [[100, 40], [20, 20]])


def test_letterbox_needs_image_sizes():
    record = _record(0, 0, [[0, 0, 5, 5]])
    with pytest.raises(DataError, match="data check --fix"):
        letterbox_wh(RecordSet([record], ["a"], Path("/d"), "voc"), 320)


def test_format_and_plot(tmp_path):
    anchors = np.array([[10.4, 13.6], [16.0, 30.0]])
    assert format_anchors(anchors) == "10,14,  16,30"
    path = plot_anchors(_clustered_sizes(), CENTRES, tmp_path / "anchors.png")
    assert path.read_bytes().startswith(b"\x89PNG")
