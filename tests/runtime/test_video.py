"""The shared video loop: every frame predicted once, in order, and an annotated copy written."""

import cv2
import numpy as np
import pytest

from edgevision.errors import DataError
from edgevision.results import Detections
from edgevision.runtime.video import predict_video


def test_every_frame_in_order_and_annotated_copy(tmp_path):
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for value in (0, 120, 240):
        writer.write(np.full((48, 64, 3), value, np.uint8))
    writer.release()
    seen = []

    def predict_frame(rgb, name):
        seen.append((name, rgb.shape, int(rgb.mean())))
        box = np.array([[4.0, 4.0, 30.0, 30.0]], np.float32)
        return Detections(
            box, np.array([0.9], np.float32), np.array([0]), ["thing"], name, rgb.shape[:2]
        )

    out = tmp_path / "out"
    out.mkdir()
    results = predict_video(path, predict_frame, out)
    assert [name for name, _, _ in seen] == [f"{path}#0", f"{path}#1", f"{path}#2"]
    assert all(shape == (48, 64, 3) for _, shape, _ in seen)
    assert [m for _, _, m in seen] == sorted(m for _, _, m in seen)  # dark -> bright: order kept
    assert len(results) == 3 and (out / "clip.mp4").stat().st_size > 0


def test_unreadable_video_is_a_data_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(DataError, match="video cannot be opened"):
        predict_video(bad, lambda rgb, name: None)
