"""The ``predict`` loop, the same for every task and for ``.pt`` or ``.onnx`` weights: list the
``--source`` (``core.sources``), run the task's predictor on each image and video frame, save
annotated copies, and let the task write its files. No torch at import.

An image that cannot be read is named once (``skipped: path: reason``), listed in
``skipped.json`` beside the predictions, and the others are still predicted; only a source where
nothing at all could be read is an error. ``strict`` stops at the first unreadable file instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from edgevision.core.errors import DataError
from edgevision.core.fileio import atomic_write_text
from edgevision.core.image import read_image
from edgevision.core.results import Result
from edgevision.core.sources import VideoFrames, is_video, list_sources
from edgevision.engine.run_dir import prepare_run_dir
from edgevision.tasks.base import LoadedModel, PredictOptions, Predictor, TaskSpec


def predict_source(
    spec: TaskSpec, loaded: LoadedModel, source: str, options: PredictOptions
) -> list[Result]:
    """Results for every image and video frame of ``source``, in file order.

    Raises:
        DataError: ``source`` names nothing, or nothing it names could be read.
    """
    predictor = spec.predictor(loaded, options)
    writes = options.save or options.save_json
    run_dir = prepare_run_dir(options.project, options.name, options.exist_ok) if writes else None
    save_dir = run_dir if options.save else None
    results: list[Result] = []
    skipped: list[dict] = []
    files = list_sources(source)
    for path in files:
        try:
            if is_video(path):
                results += _predict_video(path, predictor, spec, save_dir)
            else:
                results.append(_predict_image(path, predictor, spec, save_dir))
        except DataError as e:
            if options.strict:
                raise
            skipped.append({"file": str(path), "reason": e.reason})
            print(f"skipped: {e}")
    if len(skipped) == len(files):
        raise DataError(
            source, f"none of the {len(files)} files could be read", "see the list above"
        )
    if run_dir is not None:
        spec.write_predictions(results, run_dir, options)
        if skipped:
            # Beside the predictions, not inside: COCO results files must stay a plain list.
            atomic_write_text(run_dir / "skipped.json", json.dumps(skipped, indent=1))
        print(f"results written to {run_dir}")
    if skipped:
        print(
            f"{len(skipped)} of {len(files)} files skipped (unreadable); --strict stops at the first"
        )
    return results


def _predict_image(path: Path, predictor: Predictor, spec: TaskSpec, save_dir: Path | None):
    image = read_image(path)
    result = predictor.predict_images([image], [str(path)])[0]
    if save_dir is not None:
        drawn = spec.draw(image, result)
        # In place: on an 8000x6000 photo each extra copy is 144 MB.
        cv2.imwrite(
            str(save_dir / f"{path.stem}.jpg"), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR, dst=drawn)
        )
    return result


def _predict_video(
    path: Path, predictor: Predictor, spec: TaskSpec, save_dir: Path | None
) -> list[Result]:
    """Every frame of a video (``video.mp4#N``); with ``save_dir``, an annotated mp4."""
    frames = VideoFrames(path)
    results, writer = [], None
    try:
        for index, rgb in enumerate(frames):
            result = predictor.predict_images([rgb], [frames.name(index)])[0]
            results.append(result)
            if save_dir is None:
                continue
            if writer is None:
                fourcc = cv2.VideoWriter_fourcc(*"mp4v")
                size = (rgb.shape[1], rgb.shape[0])
                writer = cv2.VideoWriter(
                    str(save_dir / f"{path.stem}.mp4"), fourcc, frames.fps, size
                )
            writer.write(
                cv2.cvtColor(np.ascontiguousarray(spec.draw(rgb, result)), cv2.COLOR_RGB2BGR)
            )
    finally:
        if writer is not None:
            writer.release()
    return results
