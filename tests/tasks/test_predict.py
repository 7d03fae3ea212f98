"""The predict loop every task shares: one meaning of --source, videos frame by frame, unreadable
files named once and skipped, the task's drawing and files."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edgevision.core.errors import DataError
from edgevision.core.results import Classifications, Detections
from edgevision.tasks import TASKS
from edgevision.tasks.base import LoadedModel, PredictOptions
from edgevision.tasks.predict import predict_source


class _Brightness:
    """A predictor whose answer is the image's mean grey value: order and content are visible."""

    def __init__(self, task: str):
        self.task, self.seen = task, []

    def predict_images(self, images, names):
        self.seen += names
        out = []
        for image, name in zip(images, names, strict=True):
            value = float(image.mean()) / 255
            if self.task == "detect":
                box = np.array([[4.0, 4.0, 30.0, 30.0]], np.float32)
                out.append(
                    Detections(
                        box,
                        np.array([value], np.float32),
                        np.array([0]),
                        ["thing"],
                        name,
                        image.shape[:2],
                    )
                )
            else:
                out.append(Classifications(name, [0, 1], ["bright", "dark"], [value, 1 - value]))
        return out


def _spec(task, predictor):
    return TASKS[task].__class__(
        **{**TASKS[task].__dict__, "predictor": lambda loaded, options: predictor}
    )


@pytest.fixture
def source(tmp_path):
    """Two images (one in a sub-folder), a 3-frame video, a broken JPEG and a text file."""
    root = tmp_path / "source"
    (root / "sub").mkdir(parents=True)
    (root / ".hidden").mkdir()
    cv2.imwrite(str(root / "a.png"), np.full((40, 50, 3), 10, np.uint8))
    cv2.imwrite(str(root / "sub" / "b.jpg"), np.full((40, 50, 3), 200, np.uint8))
    cv2.imwrite(str(root / ".hidden" / "c.png"), np.zeros((8, 8, 3), np.uint8))
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    (root / "notes.txt").write_text("not an image")
    writer = cv2.VideoWriter(str(root / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for value in (0, 120, 240):
        writer.write(np.full((48, 64, 3), value, np.uint8))
    writer.release()
    return root


@pytest.mark.parametrize("task", ["detect", "classify"])
def test_one_meaning_of_source_for_every_task(task, source, tmp_path, capsys):
    predictor = _Brightness(task)
    loaded = LoadedModel(task, tmp_path / "m.pt", None, {"class_names": ["thing"], "imgsz": 64})
    options = PredictOptions(project=str(tmp_path / "runs"), name="p", save_json=True)
    results = predict_source(_spec(task, predictor), loaded, str(source), options)
    video = [f"{source / 'clip.mp4'}#{i}" for i in range(3)]
    assert predictor.seen == [str(source / "a.png"), *video, str(source / "sub" / "b.jpg")]
    assert [r.image_path for r in results] == predictor.seen
    out = capsys.readouterr().out
    assert out.count("broken.jpg") == 1 and "skipped:" in out and "notes.txt" not in out
    run = tmp_path / "runs" / "p"
    assert (
        (run / "a.jpg").is_file()
        and (run / "b.jpg").is_file()
        and (run / "clip.mp4").stat().st_size
    )
    rows = json.loads((run / "predictions.json").read_text())
    assert len(rows) == 5
    if task == "classify":
        assert (run / "predictions.csv").read_text().count("\n") == 6  # header + 5


def test_nothing_readable_is_an_error_and_nothing_found_too(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_bytes(b"")
    loaded = LoadedModel("detect", tmp_path / "m.pt", None, {"class_names": ["thing"], "imgsz": 64})
    spec = _spec("detect", _Brightness("detect"))
    with pytest.raises(DataError, match="none of the 1 files could be read"):
        predict_source(spec, loaded, str(bad), PredictOptions(save=False))
    with pytest.raises(DataError, match="no images or videos found"):
        predict_source(spec, loaded, str(tmp_path / "*.png"), PredictOptions(save=False))
    assert not (tmp_path / "runs").exists()  # nothing written when nothing is saved


def test_unreadable_video_is_named_and_skipped(tmp_path, capsys):
    folder = tmp_path / "v"
    folder.mkdir()
    (folder / "bad.mp4").write_bytes(b"not a video")
    cv2.imwrite(str(folder / "ok.png"), np.zeros((8, 8, 3), np.uint8))
    loaded = LoadedModel("detect", tmp_path / "m.pt", None, {"class_names": ["thing"], "imgsz": 64})
    results = predict_source(
        _spec("detect", _Brightness("detect")), loaded, str(folder), PredictOptions(save=False)
    )
    assert len(results) == 1 and "bad.mp4: video cannot be opened" in capsys.readouterr().out
