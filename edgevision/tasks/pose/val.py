"""``edgevision val`` for pose models: the COCO keypoint 10 stats (OKS AP) on the sigmas the
data calls for, box AP beside them, a sigma-free per-keypoint table, and the sigmas named.
No torch at import: an ``.onnx`` is validated without PyTorch."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from edgevision.analysis.report import write_run_report
from edgevision.core.fileio import atomic_write_text
from edgevision.core.issues import summarize_issues
from edgevision.core.records import RecordSet
from edgevision.data.formats import load_dataset
from edgevision.data.sigmas import resolve_sigmas
from edgevision.engine.run_dir import prepare_run_dir
from edgevision.eval.keypoints import KEYPOINT_STAT_NAMES, keypoint_evaluate, per_keypoint_errors
from edgevision.tasks.base import LoadedModel, ValOptions
from edgevision.tasks.detect.val import model_detections, write_report


def validate(loaded: LoadedModel, data: str, options: ValOptions) -> dict:
    """Box metrics (as detection ``val``) plus OKS AP with the data's sigmas, into a new folder.

    Returns:
        ``metrics`` (flat numbers, box and OKS), ``text`` (the printout) and ``run_dir``.
    """
    record_set, issues = load_dataset(data, split=options.split, class_names=loaded.class_names)
    lines = summarize_issues(issues, f"{options.split} split")
    if lines:
        print("\n".join(lines))
    sigmas, source = resolve_sigmas(record_set, list(options.kpt_sigmas) or None)
    run_dir = prepare_run_dir(options.project, options.name, options.exist_ok)
    record_set, detections = model_detections(loaded, record_set, options)
    boxes = write_report(record_set, detections, run_dir, options)  # box AP, plots, errors
    return write_keypoint_report(record_set, detections, run_dir, options, boxes, (sigmas, source))


def write_keypoint_report(
    record_set: RecordSet,
    detections: list[dict],
    run_dir: Path,
    options: ValOptions,
    boxes: dict,
    sigmas: tuple[np.ndarray, str],
) -> dict:
    """OKS stats and the per-keypoint table added to ``val``'s box files; the report last."""
    values, source = sigmas
    oks = keypoint_evaluate(record_set, detections, values)
    table = per_keypoint_errors(record_set, detections)
    text = "\n".join([format_keypoint_metrics(oks, table, record_set, source), "", boxes["text"]])
    metrics = {**boxes["metrics"], **{name: oks[name] for name in KEYPOINT_STAT_NAMES}}
    clean = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in metrics.items()}
    clean["kpt_sigmas"], clean["kpt_sigmas_source"] = [float(v) for v in values], source
    atomic_write_text(run_dir / "metrics.json", json.dumps(clean, indent=2))
    atomic_write_text(run_dir / "metrics.txt", text + "\n")
    if options.plots:
        write_run_report(run_dir)  # again, with the keypoint numbers
    return {"metrics": metrics, "text": text, "run_dir": str(run_dir)}


def format_keypoint_metrics(oks: dict, table: dict, record_set: RecordSet, source: str) -> str:
    """The OKS numbers (each naming its sigmas) and one row per keypoint."""
    sigmas = oks["sigmas"]
    names = record_set.kpt_names or [f"kp{i}" for i in range(len(sigmas))]
    lines = [f"keypoints: COCO OKS by {oks['backend']}, sigmas from {source}"]
    lines += [f"{name:<16} {oks[name]:.3f}" for name in KEYPOINT_STAT_NAMES]
    lines.append(
        f"per keypoint ({table['matched']} objects matched at box IoU >= 0.5; sigma-free columns):"
    )
    lines.append(f"{'keypoint':<14} {'sigma':>6} {'err/scale':>9} {'PCK@.05':>8} {'PCK@.1':>7}")
    for index, name in enumerate(names):
        row = (table["error_per_scale"][index], table["pck_0.05"][index], table["pck_0.1"][index])
        lines.append(
            f"{name:<14} {sigmas[index]:>6.3f} {row[0]:>9.3f} {row[1]:>8.3f} {row[2]:>7.3f}"
        )
    return "\n".join(lines)
