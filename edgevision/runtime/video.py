"""Frame-by-frame prediction on a video file, shared by the PyTorch and ONNX Runtime predictors.

numpy + OpenCV only (no torch), so the runtime can use it on a device.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edgevision.errors import DataError
from edgevision.results import Detections

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")


def predict_video(
    path: Path, predict_frame: Callable[[np.ndarray, str], Detections], save_dir: Path | None = None
) -> list[Detections]:
    """Run ``predict_frame(rgb, name)`` on every frame; with ``save_dir``, write an annotated mp4.

    Frames are named ``video.mp4#N``. Raises DataError when OpenCV cannot open the file.
    """
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DataError(
            path, "video cannot be opened", "check the file or install codecs for OpenCV"
        )
    results, writer = [], None
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            result = predict_frame(rgb, f"{path}#{len(results)}")
            results.append(result)
            if save_dir is not None:
                if writer is None:
                    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
                    writer = cv2.VideoWriter(
                        str(save_dir / f"{path.stem}.mp4"),
                        cv2.VideoWriter_fourcc(*"mp4v"),
                        fps,
                        frame.shape[1::-1],
                    )
                writer.write(cv2.cvtColor(draw(rgb, result), cv2.COLOR_RGB2BGR))
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    return results


def draw(image: np.ndarray, result: Detections) -> np.ndarray:
    from edgevision.viz.draw import draw_detections  # drawing only when asked for

    return draw_detections(image, result.boxes, result.classes, result.scores, result.class_names)
