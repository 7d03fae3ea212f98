"""``edgevision analyze`` for detectors: where the AP is lost and which labels look wrong.

One run folder holds ``val``'s files (the same metrics, exactly), the error breakdown
(``errors.json``/``.txt``, ``worst_images.jpg``), the label review (``label_review.csv`` sorted by
score, ``label_review.jpg``, and ``review_copy/``: a VOC or COCO copy with the suggestions marked)
and ``report.html``. The user's files are never edited; ``edgevision data check --apply-review``
applies the rows they accept.

``folds=K`` (K >= 2) judges labels with out-of-fold predictions: the split is cut into K seeded
folds, a model with the weights' own training settings is trained on the other folds for each
one and predicts it, so no model judges a label it has learned. Without folds the given weights
predict every image (faster; a model that memorised a wrong label will not flag it).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import yaml

from edgevision.analysis.label_noise import find_label_issues, write_review_csv
from edgevision.analysis.label_review import contact_sheet, write_marked_copy
from edgevision.analysis.report import write_run_report
from edgevision.core.errors import ConfigError
from edgevision.core.fileio import atomic_write_text
from edgevision.core.issues import summarize_issues
from edgevision.core.records import RecordSet
from edgevision.data.formats import load_dataset
from edgevision.data.formats.voc import write_voc
from edgevision.engine.run_dir import prepare_run_dir
from edgevision.tasks.base import AnalyzeOptions, LoadedModel
from edgevision.tasks.detect.val import model_detections, write_report


def analyze(loaded: LoadedModel, data: str, options: AnalyzeOptions) -> dict:
    """Metrics, error breakdown, label review and report of ``loaded`` on a split.

    Returns:
        ``metrics`` and ``text`` as ``val``, ``review`` (items found, by kind) and ``run_dir``.
    """
    if options.folds == 1 or options.folds < 0:
        raise ConfigError(f"--folds {options.folds}: use 0 (no folds) or 2 or more")
    val = options.val
    record_set, issues = load_dataset(data, split=val.split, class_names=loaded.class_names)
    lines = summarize_issues(issues, f"{val.split} split")
    if lines:
        print("\n".join(lines))
    run_dir = prepare_run_dir(val.project, val.name, val.exist_ok)
    if options.folds >= 2:
        record_set, detections = out_of_fold_detections(loaded, record_set, options, run_dir)
    else:
        record_set, detections = model_detections(loaded, record_set, val)
    result = write_report(record_set, detections, run_dir, dataclasses.replace(val, plots=True))
    items = find_label_issues(record_set, detections, conf=options.review_conf)
    write_review_csv(items, run_dir / "label_review.csv")
    if items:
        contact_sheet(items, record_set, run_dir / "label_review.jpg")
    fmt = record_set.format if record_set.format in ("voc", "coco") else "voc"
    write_marked_copy(items, record_set, run_dir / "review_copy", fmt)
    write_run_report(run_dir)  # again: now with the label review
    kinds = dict(Counter(item.kind for item in items))
    result["review"] = kinds
    result["text"] += "\n" + _review_line(kinds, run_dir)
    return result


def _review_line(kinds: dict, run_dir: Path) -> str:
    found = ", ".join(f"{count} {kind}" for kind, count in kinds.items()) or "nothing"
    return (
        f"label review: {found}; see {run_dir / 'label_review.csv'} and {run_dir / 'report.html'}"
    )


def out_of_fold_detections(
    loaded: LoadedModel, record_set: RecordSet, options: AnalyzeOptions, run_dir: Path
) -> tuple[RecordSet, list[dict]]:
    """Detections for every record from a model that did not train on it (module docstring).

    The folds live under ``run_dir/folds``: one VOC copy of the split with a list file per fold,
    and one training run per fold.
    """
    from edgevision.config import TrainConfig  # PyTorch from here on: fold models are trained
    from edgevision.engine import run
    from edgevision.tasks.detect.train import build_task
    from edgevision.tasks.load import load_model

    folds = _fold_of(len(record_set), options.folds, seed=int(loaded.config.get("seed", 0)))
    root = write_voc(record_set, run_dir / "folds" / "data")
    detections: list[dict | None] = [None] * len(record_set)
    for fold in range(options.folds):
        held_out = np.flatnonzero(folds == fold)
        data_yaml = _fold_yaml(record_set, root, folds, fold)
        settings = {**loaded.config, "data": str(data_yaml), "project": str(run_dir / "folds")}
        settings.update(name=f"fold{fold}", exist_ok=True, resume=False, weights="", verbose=False)
        if options.fold_epochs:
            settings["epochs"] = options.fold_epochs
        config = TrainConfig.from_dict(settings)
        print(f"fold {fold + 1}/{options.folds}: training on {len(folds) - len(held_out)} images")
        summary = run.fit(build_task, config)
        model = load_model(Path(summary["run_dir"]) / "weights" / "best.pt")
        subset = record_set.with_records([record_set.records[i] for i in held_out])
        evaluated, found = model_detections(model, subset, options.val)
        by_path = {r.image_path: d for r, d in zip(evaluated.records, found, strict=True)}
        for i in held_out:
            detections[i] = by_path.get(record_set.records[i].image_path)
    kept = [i for i, found in enumerate(detections) if found is not None]  # unreadable: left out
    return record_set.with_records([record_set.records[i] for i in kept]), [
        detections[i] for i in kept
    ]


def _fold_of(count: int, folds: int, seed: int) -> np.ndarray:
    """(count,) fold index of each record: a seeded shuffle cut into ``folds`` near-equal parts."""
    if count < folds:
        raise ConfigError(f"--folds {folds} needs at least {folds} images; the split has {count}")
    order = np.random.default_rng(seed).permutation(count)
    fold = np.empty(count, dtype=np.int64)
    fold[order] = np.arange(count) % folds
    return fold


def _fold_yaml(record_set: RecordSet, root: Path, folds: np.ndarray, fold: int) -> Path:
    """List files ``fold{k}_train``/``fold{k}_val`` in the copy, and a data YAML naming them."""
    lists = root / "ImageSets" / "Main"
    lists.mkdir(parents=True, exist_ok=True)
    stems = [record.image_path.stem for record in record_set.records]
    for name, chosen in (("train", folds != fold), ("val", folds == fold)):
        picked = [stem for stem, keep in zip(stems, chosen, strict=True) if keep]
        atomic_write_text(lists / f"fold{fold}_{name}.txt", "\n".join(picked) + "\n")
    config = {
        "format": "voc",
        "path": str(root.resolve()),
        "train": f"fold{fold}_train",
        "val": f"fold{fold}_val",
        "names": list(record_set.class_names),
    }
    return atomic_write_text(root / f"fold{fold}.yaml", yaml.safe_dump(config, sort_keys=False))
