"""The Python API: one function per CLI command. The CLI only parses arguments and calls these.

Nothing here names a task: a model's task comes from the zoo (``train``) or from the file
(``tasks.load_model``), and ``tasks.TASKS`` holds what differs. PyTorch is imported only by the
commands that need it (training, ``.pt`` weights, export, zoo listings), so the data commands and
``val``/``predict``/``bench`` of an ``.onnx`` run on a machine without it.
"""

from __future__ import annotations

from pathlib import Path

from edgevision import tasks
from edgevision.analysis.report import write_run_report
from edgevision.bench import bench as run_bench
from edgevision.bench import cached_latency
from edgevision.config import TrainConfig
from edgevision.core.errors import ConfigError, DataError
from edgevision.core.issues import Issue, summarize_issues
from edgevision.core.records import RecordSet
from edgevision.core.results import Result
from edgevision.data.anchors import (
    anchor_metrics,
    format_anchors,
    kmeans_anchors,
    letterbox_wh,
    plot_anchors,
)
from edgevision.data.autoanchor import write_anchors_file
from edgevision.data.convert import convert_dataset
from edgevision.data.doctor.command import run_check
from edgevision.data.doctor.read_all import read_whole_dataset
from edgevision.data.formats import load_dataset
from edgevision.data.sigmas import sigma_report
from edgevision.data.split import format_splits, split_dataset, write_splits
from edgevision.data.stats import dataset_stats, format_stats, save_stats
from edgevision.data.synth import TASKS as SYNTH_TASKS
from edgevision.data.synth import synthesize
from edgevision.engine.run_dir import prepare_run_dir
from edgevision.tasks.base import AnalyzeOptions, ExportOptions, PredictOptions, ValOptions
from edgevision.tasks.predict import predict_source

__all__ = [
    "bench",
    "data_anchors",
    "data_check",
    "data_convert",
    "data_split",
    "data_stats",
    "data_synth",
    "evaluate",
    "export",
    "list_models",
    "load_model",
    "predict",
    "train",
]

load_model = tasks.load_model


def train(**options) -> dict:
    """Train a model; options are :class:`TrainConfig` fields (``data=``, ``model=``, ``epochs=`` ...).

    Returns:
        Summary dict: run folder, best fitness, last epoch's metrics, minutes, the trained model.
    """
    from edgevision.engine import run  # PyTorch from here on

    config = run.resolve_resume(TrainConfig.from_dict(options))
    spec = tasks.task_for_training(config)
    return run.fit(spec.build, config)


def evaluate(
    weights: str,
    data: str,
    split: str = "val",
    batch: int = 16,
    imgsz: int = 0,
    conf: float = 0.001,
    iou: float = 0.6,
    max_det: int = 300,
    device: str = "",
    workers: int = 2,
    project: str = "runs/val",
    name: str = "exp",
    exist_ok: bool = False,
    save_json: bool = True,
    plots: bool = True,
    kpt_sigmas: list[float] | None = None,
) -> dict:
    """``val``: the task's metrics for ``.pt`` or ``.onnx`` weights on a split (detection: COCO 12
    stats, VOC mAP50, per-class AP, PR curves, confusion matrix; classification: top-1/top-5,
    per-class precision/recall, confusion matrix).

    Returns:
        ``metrics``, ``text`` (the printout) and ``run_dir``.
    """
    options = ValOptions(
        split=split,
        batch=batch,
        imgsz=imgsz,
        conf=conf,
        iou=iou,
        max_det=max_det,
        device=device,
        workers=workers,
        project=project,
        name=name,
        exist_ok=exist_ok,
        save_json=save_json,
        plots=plots,
        kpt_sigmas=tuple(kpt_sigmas or ()),
    )
    loaded = load_model(weights)
    return tasks.get_task(loaded.task).validate(loaded, data, options)


def predict(
    weights: str,
    source: str,
    imgsz: int = 0,
    conf: float = 0.25,
    iou: float = 0.45,
    max_det: int = 300,
    device: str = "",
    save: bool = True,
    save_json: bool = False,
    project: str = "runs/predict",
    name: str = "exp",
    exist_ok: bool = False,
    topk: int = 5,
    strict: bool = False,
) -> list[Result]:
    """``predict``: results (``Detections``, ``Classifications`` ...) for images, folders, globs
    or videos, with ``.pt`` or ``.onnx`` weights; annotated copies and the task's files written
    into ``project/name``."""
    options = PredictOptions(
        imgsz=imgsz,
        conf=conf,
        iou=iou,
        max_det=max_det,
        topk=topk,
        device=device,
        save=save,
        save_json=save_json,
        project=project,
        name=name,
        exist_ok=exist_ok,
        strict=strict,
    )
    loaded = load_model(weights)
    return predict_source(tasks.get_task(loaded.task), loaded, source, options)


def analyze(
    weights: str,
    data: str,
    split: str = "val",
    folds: int = 0,
    fold_epochs: int = 0,
    review_conf: float = 0.5,
    batch: int = 16,
    imgsz: int = 0,
    conf: float = 0.001,
    iou: float = 0.6,
    max_det: int = 300,
    device: str = "",
    workers: int = 2,
    project: str = "runs/analyze",
    name: str = "exp",
    exist_ok: bool = False,
) -> dict:
    """``analyze``: ``val``'s metrics, where the AP is lost (TIDE error types), a ranked review of
    likely wrong labels and ``report.html``, in one run folder; the data is never edited.
    ``folds >= 2`` judges labels with out-of-fold models trained here."""
    options = AnalyzeOptions(
        val=ValOptions(
            split=split,
            batch=batch,
            imgsz=imgsz,
            conf=conf,
            iou=iou,
            max_det=max_det,
            device=device,
            workers=workers,
            project=project,
            name=name,
            exist_ok=exist_ok,
        ),
        folds=folds,
        review_conf=review_conf,
        fold_epochs=fold_epochs,
    )
    loaded = load_model(weights)
    spec = tasks.get_task(loaded.task)
    if spec.analyze is None:
        raise ConfigError(f"analyze supports detection weights; {weights} is a {loaded.task} model")
    return spec.analyze(loaded, data, options)


def report(run_dir: str, title: str = "") -> Path:
    """``report``: (re)write ``run_dir/report.html``, one self-contained page of the run."""
    return write_run_report(run_dir, title or None)


def export(
    weights: str,
    format: str = "onnx",
    imgsz: int = 0,
    nms: bool = False,
    dynamic: bool = False,
    int8: bool = False,
    data: str = "",
    opset: int = 17,
    max_det: int = 100,
    conf: float = 0.25,
    iou: float = 0.45,
    out: str = "",
    simplify: bool = True,
    calibration_images: int = 100,
    verbose: bool = True,
    int8_threads: int = 2,
    int8_keep_slower: bool = False,
) -> dict:
    """``export``: ONNX (fused, parity-checked; detectors: optional NMS in the graph and INT8,
    written only when it is faster than FP32 on this CPU with ``int8_threads`` threads, unless
    ``int8_keep_slower``)."""
    if format != "onnx":
        raise ConfigError(f"--format {format!r}: only 'onnx' is supported")
    if Path(weights).suffix.lower() == ".onnx":
        raise ConfigError(f"{weights}: already an ONNX file; export takes a .pt checkpoint")
    options = ExportOptions(
        imgsz=imgsz,
        nms=nms,
        dynamic=dynamic,
        int8=int8,
        data=data,
        opset=opset,
        max_det=max_det,
        conf=conf,
        iou=iou,
        out=out,
        simplify=simplify,
        calibration_images=calibration_images,
        verbose=verbose,
        int8_threads=int8_threads,
        int8_keep_slower=int8_keep_slower,
    )
    loaded = load_model(weights)
    return tasks.get_task(loaded.task).export(loaded, options)


def bench(
    model: str = "",
    weights: str = "",
    imgsz: int = 0,
    threads: int = 2,
    runs: int = 100,
    warmup: int = 10,
    int8: bool = True,
    data: str = "",
    pytorch: bool = True,
) -> dict:
    """Params, FLOPs, latency (PyTorch, ONNX Runtime FP32/INT8) and the fraction of this CPU's peak."""
    if not model and not weights:
        raise ConfigError("bench needs --model NAME or --weights FILE (.pt or .onnx)")
    return run_bench(
        model or None, weights or None, imgsz, threads, runs, warmup, int8, data or None, pytorch
    )


def list_models(task: str = "") -> list[dict]:
    """Every zoo model (of ``task`` when given) with params, FLOPs at its default size, and the
    latencies ``bench`` last measured on this machine."""
    from edgevision.models.zoo import list_models as zoo_rows  # PyTorch: FLOPs are counted

    if task:
        tasks.get_task(task)  # a clear error for a typo
    rows = zoo_rows(task or None)
    for row in rows:
        row["latency_ms"] = cached_latency(row["name"], row["imgsz"])  # {engine: median ms} or None
    return rows


# -- data commands ---------------------------------------------------------------------------------


def _load_split(data: str, split: str, class_names: list[str] | None = None) -> RecordSet:
    record_set, issues = load_dataset(data, split=split, class_names=class_names)
    lines = summarize_issues(issues, f"{split} split")
    if lines:
        print("\n".join(lines))
    return record_set


def data_check(
    data: str,
    deep: bool = False,
    fix: bool = False,
    out: str = "",
    in_place: bool = False,
    workers: int = 2,
    json_path: str = "",
    apply_review: str = "",
) -> tuple[int, str]:
    """The data doctor. Returns (exit code: 0 clean, 1 defects remain; report text).

    ``apply_review``: a ``label_review.csv`` from ``analyze``; its rows marked accept=yes are
    applied to a copy (``out``) or in place with backups."""
    return run_check(data, deep, fix, out, in_place, workers, json_path, apply_review)


def data_stats(
    data: str,
    split: str = "all",
    project: str = "runs/data",
    name: str = "stats",
    exist_ok: bool = False,
    plots: bool = True,
) -> tuple[str, Path]:
    """Class counts, objects per image, box size / aspect distributions; text + PNG plots."""
    record_set = _load_split(data, split)
    out = prepare_run_dir(project, name, exist_ok)
    save_stats(record_set, out, plots=plots)
    return format_stats(dataset_stats(record_set)), out


def data_split(
    data: str, val: float = 0.1, test: float = 0.1, seed: int = 0, force: bool = False
) -> str:
    """Deterministic, class-stratified train/val/test lists written beside the data."""
    record_set = _load_split(data, "all")
    splits = split_dataset(record_set, val=val, test=test, seed=seed)
    written = write_splits(record_set, splits, force=force)
    return format_splits(record_set, splits) + "\nwritten: " + ", ".join(str(p) for p in written)


def data_convert(data: str, to: str, out: str) -> tuple[Path, list[Issue]]:
    """Every split of ``data`` written in another format; reader issues are returned, not dropped."""
    issues: list[Issue] = []
    return convert_dataset(data, to, out, issues=issues), issues


def data_anchors(
    data: str,
    k: int = 9,
    imgsz: int = 416,
    restarts: int = 10,
    generations: int = 300,
    seed: int = 0,
    split: str = "all",
    project: str = "runs/data",
    name: str = "anchors",
    exist_ok: bool = False,
) -> str:
    """k-means (1 - IoU) anchors on letterbox-scaled box sizes, with mean IoU, BPR and a plot."""
    wh = letterbox_wh(_load_split(data, split), imgsz)
    if len(wh) < k:
        raise DataError(data, f"{len(wh)} boxes cannot make {k} anchors", "lower -k or add data")
    anchors = kmeans_anchors(wh, k=k, restarts=restarts, seed=seed, genetic_generations=generations)
    metrics = anchor_metrics(wh, anchors)
    out = prepare_run_dir(project, name, exist_ok)
    plot = plot_anchors(wh, anchors, out / "anchors.png")
    saved = write_anchors_file(out / "anchors.txt", anchors, note=f"imgsz {imgsz}, k {k}")
    return (
        f"{format_anchors(anchors)}\nmean IoU {metrics['mean_iou']:.4f}, best possible recall "
        f"{metrics['best_possible_recall']:.4f} (ratio threshold 4.0), {len(wh)} boxes at imgsz {imgsz}\n"
        f"plot: {plot}\nanchors file: {saved} (train --anchors FILE uses it; -k must match the model)"
    )


def data_synth(
    out: str,
    task: str = "detect",
    n_train: int = 600,
    n_val: int = 150,
    seed: int = 0,
    force: bool = False,
    num_keypoints: int | None = None,
) -> Path:
    """The embedded demo dataset for ``task`` (generated, no download); ``num_keypoints`` sets
    K for ``task="pose"`` (default 5)."""
    return synthesize(
        out,
        task=task,
        n_train=n_train,
        n_val=n_val,
        seed=seed,
        force=force,
        num_keypoints=num_keypoints,
    )


def data_sigmas(data: str, split: str = "all", sigmas: list[float] | None = None) -> str:
    """``data sigmas``: the per-keypoint OKS sigmas evaluation will use and where they come from
    (yours, the data's, COCO person's, or the documented default), and an estimate from objects
    annotated twice when the data has any (COCO's recipe), or why it cannot estimate."""
    if split == "all":
        record_set, _ = read_whole_dataset(data)  # every split file once, COCO included
    else:
        record_set = _load_split(data, split)
    return sigma_report(record_set, sigmas)


def synth_tasks() -> tuple[str, ...]:
    """The tasks ``data synth`` knows (the CLI's ``--task`` choices)."""
    return SYNTH_TASKS
