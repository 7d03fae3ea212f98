"""Drawing keypoints and skeletons (numeric: pixels where points and edges are, none elsewhere)."""

from __future__ import annotations

import numpy as np

from edgevision.viz.draw import draw_keypoints


def test_keypoints_and_skeleton_are_drawn_where_they_are_and_only_when_shown():
    image = np.zeros((100, 100, 3), np.uint8)
    points = np.array([[[20, 20, 0.9], [80, 20, 0.9], [50, 80, 0.1]]])
    draw_keypoints(image, points, skeleton=[(0, 1), (1, 2)], min_score=0.5)
    assert image[20, 20].any() and image[20, 80].any()  # both confident points
    assert image[20, 50].any()  # the edge between them
    assert not image[80, 50].any() and not image[50, 65].any()  # hidden point, its edge
