"""What ``--source`` means, for every task: the image and video files to predict on, and frames.

One rule for detection and classification alike: a file is itself; a folder is searched
recursively (hidden folders such as ``.ipynb_checkpoints`` skipped) for images and videos; anything
else is a glob pattern (``**`` recurses). The list is sorted, so runs are repeatable.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from edgevision.core.errors import DataError
from edgevision.core.image import IMAGE_SUFFIXES

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")
MEDIA_SUFFIXES = IMAGE_SUFFIXES + VIDEO_SUFFIXES


def is_video(path: str | Path) -> bool:
    """Whether ``path`` names a video file (by suffix)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts[:-1])


def list_sources(source: str | Path) -> list[Path]:
    """The images and videos ``source`` names (see the module docstring), sorted.

    Raises:
        DataError: nothing matched.
    """
    path = Path(source)
    if path.is_dir():
        files = [
            p
            for p in path.rglob("*")
            if p.suffix.lower() in MEDIA_SUFFIXES and p.is_file() and not _hidden(p, path)
        ]
    elif path.is_file():
        files = [path]
    else:
        matches = (Path(p) for p in glob.glob(str(source), recursive=True))
        files = [p for p in matches if p.suffix.lower() in MEDIA_SUFFIXES and p.is_file()]
    if not files:
        raise DataError(
            source, "no images or videos found", "pass an image, a video, a folder or a glob"
        )
    return sorted(files)


class VideoFrames:
    """The frames of a video file as (H, W, 3) uint8 RGB arrays, with its frame rate.

    Iterate it once; frames are named ``video.mp4#N`` by :meth:`name`.

    Raises:
        DataError: OpenCV cannot open the file.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._capture = cv2.VideoCapture(str(self.path))
        if not self._capture.isOpened():
            raise DataError(
                self.path, "video cannot be opened", "check the file or install codecs for OpenCV"
            )
        self.fps = self._capture.get(cv2.CAP_PROP_FPS) or 25.0

    def name(self, index: int) -> str:
        return f"{self.path}#{index}"

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            while True:
                ok, frame = self._capture.read()
                if not ok:
                    return
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            self._capture.release()
