"""The Python API: one function per CLI command. The CLI only parses arguments and calls these."""

from __future__ import annotations

import glob
import json
import random
from pathlib import Path

import numpy as np
import torch

from edgevision.config import TrainConfig
from edgevision.data.formats import load_dataset
from edgevision.data.issues import Issue
from edgevision.engine import dist
from edgevision.engine.callbacks import CSVLogger, ProgressBar, TensorBoardLogger
from edgevision.engine.checkpoint import load_checkpoint, load_matching, state_dict_from
from edgevision.engine.trainer import Trainer, prepare_run_dir, save_args
from edgevision.errors import CheckpointError, ConfigError, DataError
from edgevision.fileio import atomic_write_text
from edgevision.results import Detections


def select_device(device: str = "") -> torch.device:
    """``""`` -> CUDA when available else CPU; ``cpu``, ``cuda``, ``cuda:N`` as given."""
    if not device:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"--device {device}: CUDA is not available on this machine; use --device cpu"
        )
    try:
        return torch.device(device)
    except RuntimeError as e:
        raise ConfigError(f"--device {device!r} is not a device; use cpu, cuda or cuda:N") from e


def seed_everything(seed: int, deterministic: bool = True) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def summarize_issues(issues: list[Issue], label: str, limit: int = 10) -> None:
    """Print reader issues once, up front (never per batch): counts by kind and the first few."""
    if not issues:
        return
    counts: dict[str, int] = {}
    for issue in issues:
        counts[issue.kind] = counts.get(issue.kind, 0) + 1
    kinds = ", ".join(f"{k}: {n}" for k, n in sorted(counts.items()))
    print(
        f"{label}: {len(issues)} data issues ({kinds}); run `edgevision data check` for the full list"
    )
    for issue in issues[:limit]:
        print(f"  {issue}")


def _load_split(data: str, split: str, class_names: list[str] | None = None):
    record_set, issues = load_dataset(data, split=split, class_names=class_names)
    summarize_issues(issues, f"{split} split")
    return record_set


def _apply_freeze(model: torch.nn.Module, freeze: str) -> int:
    """Freeze ``backbone`` or the first N top-level children; returns how many tensors were frozen."""
    if not freeze:
        return 0
    if freeze == "backbone":
        modules = [model.backbone]
    elif freeze.isdigit():
        modules = list(model.children())[: int(freeze)]
    else:
        raise ConfigError(f"--freeze {freeze!r}: use 'backbone' or a number of top-level modules")
    count = 0
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(False)
            count += 1
    return count


def train(**options) -> dict:
    """Train a model; options are :class:`TrainConfig` fields (``data=``, ``model=``, ``epochs=`` ...).

    Returns:
        Summary dict: run folder, best fitness, last epoch's metrics, minutes.
    """
    config = _resolve_resume(TrainConfig.from_dict(options))
    if config.task == "detect" and config.model.startswith("cls-"):
        config.task = "classify"  # the model name implies the task
    if config.task not in ("detect", "classify"):
        raise ConfigError(f"--task {config.task!r} is not available yet; use detect or classify")
    device = select_device(config.device)
    distributed = dist.init_from_env(device)
    seed_everything(config.seed + dist.rank(), config.deterministic)
    if config.task == "classify":
        from edgevision.engine.task_classify import build_classification_task

        task = build_classification_task(
            config, device, distributed
        )  # data, model, --weights, --freeze
    else:
        task = _build_detection_task(config, device, distributed)
    run_dir = _shared_run_dir(config)
    callbacks = []
    if dist.is_main():  # one writer of logs and event files, whatever the number of processes
        save_args(run_dir, config)
        callbacks = [
            CSVLogger(run_dir / "results.csv"),
            TensorBoardLogger(run_dir, task.imgsz if config.plots else 0),
        ]
        if config.verbose:
            callbacks.insert(0, ProgressBar())
    summary = Trainer(task, config, run_dir, device, callbacks).fit()
    summary["run_dir"] = str(run_dir)
    summary["model"] = task.model  # the trained model (raw weights; best.pt holds the EMA)
    if dist.is_main() and config.plots:
        from edgevision.viz.training import plot_results

        plot_results(run_dir / "results.csv", run_dir / "results.png")
        if config.task == "classify" and task.val_loader is not None:
            from edgevision.engine.task_classify import evaluate_classifier

            evaluate_classifier(
                run_dir / "weights" / "best.pt",
                config.data,
                device=device,
                workers=config.workers,
                project=str(run_dir),
                name="val",
                exist_ok=True,
            )
    return summary


def _shared_run_dir(config: TrainConfig) -> Path:
    """The run folder: ``--resume``'s, or a new one created by rank 0 alone and shared with all ranks."""
    if config.resume:
        return Path(config.resume)
    path = prepare_run_dir(config.project, config.name, config.exist_ok) if dist.is_main() else None
    return Path(dist.broadcast_object(path))


def _build_detection_task(config: TrainConfig, device: torch.device, distributed: bool):
    """Data splits, zoo model, ``--weights`` (shape-matched) and ``--freeze`` for detection."""
    from edgevision.engine.task_detect import DetectionTask
    from edgevision.models.zoo import build_model, default_imgsz

    train_set, train_issues = load_dataset(config.data, split="train")
    summarize_issues(
        train_issues, "train split"
    )  # kept: the summary counts objects the reader dropped
    val_set = _load_optional_split(config.data, "val", train_set.class_names)
    model = build_model(config.model, num_classes=len(train_set.class_names))
    if config.weights and not config.resume:
        loaded = load_matching(model, state_dict_from(load_checkpoint(config.weights)))
        print(f"weights {config.weights}: {loaded.summary()}")
    _apply_freeze(model, config.freeze)
    imgsz = config.imgsz or default_imgsz(config.model)
    task = DetectionTask(
        model, config.model, train_set, val_set, config, imgsz, device, distributed
    )
    if dist.is_main():
        _print_data_summary(task, train_set, train_issues)
    return task


def _print_data_summary(task, train_set, train_issues: list[Issue] = ()) -> None:
    """One summary up front, never per batch: images and objects used out of annotated, and each
    skipped image named once (the first few, then a count). Images found undecodable later are
    named at the end of the epoch that found them (``task_detect.report_new_skips``)."""
    from edgevision.data import issues as kinds
    from edgevision.engine.task_detect import format_skips

    train, val = task.train_dataset, task.val_dataset
    usage, report = train.usage(), train.sanitize_report
    # Objects the reader left out (unknown class, malformed box) were annotated too.
    by_reader = sum(
        i.object_index is not None and i.kind in (kinds.UNKNOWN_CLASS, kinds.CORRUPT_ANNOTATION)
        for i in train_issues
    )
    unused = {
        "in skipped images": usage["objects_annotated"]
        - report["zero_area"]
        - report["crowd"]
        - usage["objects_used"],
        "zero area": report["zero_area"],
        "crowd": report["crowd"],
        "unknown class or malformed": by_reader,
    }
    why = ", ".join(f"{count} {reason}" for reason, count in unused.items() if count)
    skipped = f" ({usage['images_skipped']} skipped)" if usage["images_skipped"] else ""
    val_usage = val.usage() if val is not None else {"images_used": 0, "images_skipped": 0}
    val_skipped = f" ({val_usage['images_skipped']} skipped)" if val_usage["images_skipped"] else ""
    print(
        f"train: {usage['images_used']} images used{skipped}, {usage['objects_used']}/"
        f"{usage['objects_annotated'] + by_reader} objects used{f' (not used: {why})' if why else ''}; "
        f"val: {val_usage['images_used']} images{val_skipped}; classes: {train_set.class_names}"
    )
    lines = format_skips("train", train.take_unreported_skips())
    lines += format_skips("val", val.take_unreported_skips()) if val is not None else []
    for label, dataset in (("train", train), ("val", val)):
        if dataset is not None and dataset.exif_rotated:
            lines.append(
                f"{label}: EXIF orientation ignored for {len(dataset.exif_rotated)} image(s): pixels used "
                "as stored, like their annotations (`edgevision data check` lists them)"
            )
    if lines:
        print("\n".join(lines))


def _resolve_resume(config: TrainConfig) -> TrainConfig:
    """``--resume RUN`` continues with the run's saved config (its epochs, data, seed...)."""
    if not config.resume:
        return config
    path = Path(config.resume)
    run_dir = path if path.is_dir() else path.parent.parent
    last = run_dir / "weights" / "last.pt"
    if not last.is_file():
        raise ConfigError(
            f"--resume {config.resume}: no {last}; pass the run folder of an earlier training"
        )
    saved = TrainConfig.from_dict(load_checkpoint(last)["config"])
    saved.resume = str(run_dir)
    saved.device = config.device or saved.device
    return saved


def _load_optional_split(data: str, split: str, class_names: list[str]):
    from edgevision.data.formats import list_splits

    if split not in list_splits(data):
        print(
            f"no {split} split in {data}: training without validation (run `edgevision data split`)"
        )
        return None
    return _load_split(data, split, class_names)


def _checkpoint_task(weights: str | Path) -> str:
    return (load_checkpoint(weights).get("meta") or {}).get("task", "detect")


def load_detector(weights: str | Path) -> tuple[torch.nn.Module, dict]:
    """A detection model and its metadata (class names, imgsz) from an edgevision checkpoint."""
    from edgevision.models.zoo import build_model

    state = load_checkpoint(weights)
    meta = state.get("meta")
    if not meta or "model_name" not in meta:
        raise CheckpointError(
            f"{weights}: not an edgevision checkpoint (no model metadata); "
            "use a last.pt/best.pt written by `edgevision train`"
        )
    model = build_model(meta["model_name"], num_classes=meta["num_classes"])
    model.load_state_dict(state_dict_from(state))
    return model.eval(), meta


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
) -> dict:
    """COCO 12 stats, VOC mAP50 (area and 11-point), per-class AP; PR curves, confusion matrix, JSON.

    A classification checkpoint is evaluated with top-1/top-5 and per-class precision/recall instead.
    """
    from edgevision.engine.validator import validate_detector

    if _checkpoint_task(weights) == "classify":
        from edgevision.engine.task_classify import evaluate_classifier

        return evaluate_classifier(
            weights,
            data,
            split=split,
            batch=batch,
            imgsz=imgsz,
            device=select_device(device),
            workers=workers,
            project=project,
            name=name,
            exist_ok=exist_ok,
            plots=plots,
        )

    model, meta = load_detector(weights)
    record_set = _load_split(data, split, meta["class_names"])
    run_dir = prepare_run_dir(project, name, exist_ok)
    return validate_detector(
        model,
        record_set,
        run_dir,
        imgsz or meta["imgsz"],
        batch,
        conf,
        iou,
        max_det,
        select_device(device),
        workers,
        save_json,
        plots,
    )


def _source_files(source: str) -> list[Path]:
    """Images and videos named by a file, a folder (sorted) or a glob."""
    from edgevision.data.imageio import IMAGE_SUFFIXES
    from edgevision.runtime.video import VIDEO_SUFFIXES

    path = Path(source)
    if path.is_dir():
        files = sorted(
            p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES
        )
    elif path.is_file():
        files = [path]
    else:
        files = sorted(Path(p) for p in glob.glob(source, recursive=True))
    if not files:
        raise DataError(
            source, "no images or videos found", "pass an image, a folder, a glob or a video"
        )
    return files


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
) -> list:
    """Detect objects in images, folders, globs or videos; draw and/or write COCO-style JSON.

    A classification checkpoint predicts the ``topk`` classes per image (CSV and JSON) instead.
    """
    from edgevision.engine.predictor import Predictor

    if Path(weights).suffix.lower() != ".onnx" and _checkpoint_task(weights) == "classify":
        from edgevision.engine.classify_predict import predict_classifier

        return predict_classifier(
            weights,
            source,
            topk=topk,
            imgsz=imgsz,
            device=select_device(device),
            save_csv=save,
            save_json=save_json,
            project=project,
            name=name,
            exist_ok=exist_ok,
        )

    if Path(weights).suffix.lower() == ".onnx":  # the torch-free runtime, as on a device
        from edgevision.runtime import OnnxDetector

        predictor = OnnxDetector(weights, conf=conf, iou=iou, max_det=max_det, imgsz=imgsz or None)
    else:
        model, meta = load_detector(weights)
        predictor = Predictor(
            model,
            meta["class_names"],
            imgsz or meta["imgsz"],
            select_device(device),
            conf,
            iou,
            max_det,
        )
    run_dir = prepare_run_dir(project, name, exist_ok) if (save or save_json) else None
    results: list[Detections] = []
    for path in _source_files(source):
        results.extend(predictor.predict_file(path, run_dir if save else None))
    if save_json and run_dir is not None:
        rows = [row for r in results for row in r.to_records()]
        atomic_write_text(run_dir / "predictions.json", json.dumps(rows, indent=1))
    return results


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
) -> dict:
    """ONNX export (fused, parity-checked; optional NMS in the graph and INT8); prints its report."""
    if format != "onnx":
        raise ConfigError(f"--format {format!r}: only 'onnx' is supported")
    if _checkpoint_task(weights) == "classify":
        if nms or int8:
            raise ConfigError(
                "--nms and --int8 apply to detectors; a classifier exports as probabilities"
            )
        from edgevision.export.classify import export_classifier

        return export_classifier(
            weights, imgsz=imgsz, dynamic=dynamic, opset=opset, out=out or None
        )
    from edgevision.export.onnx import export_onnx

    return export_onnx(
        weights,
        imgsz=imgsz,
        nms=nms,
        dynamic=dynamic,
        int8=int8,
        data=data or None,
        opset=opset,
        max_det=max_det,
        conf=conf,
        iou=iou,
        out=out or None,
        simplify=simplify,
        calibration_images=calibration_images,
    )


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
    from edgevision.bench import bench as run_bench

    if not model and not weights:
        raise ConfigError("bench needs --model NAME or --weights FILE")
    return run_bench(
        model or None,
        weights or None,
        imgsz,
        threads,
        runs,
        warmup,
        int8,
        data or None,
        pytorch=pytorch,
    )


def list_models() -> list[dict]:
    """Every zoo model (detectors, then classifiers) with params and FLOPs at its default size."""
    from edgevision.bench import cached_latency
    from edgevision.models.classifier_zoo import (
        CLASSIFIER_ZOO,
        build_classifier,
        default_classifier_imgsz,
    )
    from edgevision.models.zoo import count_flops, count_parameters
    from edgevision.models.zoo import list_models as detector_rows

    rows = detector_rows()
    for row in rows:
        row["latency_ms"] = cached_latency(row["name"], row["imgsz"])  # {engine: median ms} or None
    for name in CLASSIFIER_ZOO:
        with torch.device("meta"):  # shapes only: nothing allocated or computed
            model = build_classifier(name, 1000)
        imgsz = default_classifier_imgsz(name)
        flops = count_flops(model, imgsz)
        rows.append(
            {
                "name": name,
                "task": "classify",
                "params": count_parameters(model),
                "flops": flops,
                "gflops": flops / 1e9,
                "imgsz": imgsz,
            }
        )
    return rows


# -- data commands ---------------------------------------------------------------------------------


def data_check(
    data: str,
    deep: bool = False,
    fix: bool = False,
    out: str = "",
    in_place: bool = False,
    workers: int = 2,
    json_path: str = "",
) -> tuple[int, str]:
    """The data doctor. Returns (exit code: 0 clean, 1 defects remain; report text)."""
    from edgevision.data.check import check_dataset
    from edgevision.data.classify import is_classification_data
    from edgevision.data.fix import fix_dataset

    if is_classification_data(data):
        if fix:
            raise ConfigError(
                "--fix repairs detection annotations; for a classification set replace or "
                "remove the files listed"
            )
        from edgevision.data.check_classify import check_classification

        report = check_classification(data, deep=deep, workers=workers)
        if json_path:
            atomic_write_text(json_path, json.dumps({"check": report.to_json()}, indent=1))
        return report.exit_code, report.format_text()
    if fix and not (out or in_place):
        raise ConfigError(
            "--fix needs --out DIR (a fixed copy) or --in-place (edits with .bak backups)"
        )
    if (out or in_place) and not fix:
        raise ConfigError("--out/--in-place only apply with --fix")
    report = check_dataset(data, deep=deep, workers=workers)
    text = report.format_text()
    payload = {"check": report.to_json()}
    code = report.exit_code
    if fix:
        fixed = fix_dataset(
            data, out=out or None, in_place=in_place, deep=deep, workers=workers, report=report
        )
        text += "\n\n" + fixed.format_text()
        payload["fix"] = fixed.to_json()
        # Exit code and "after" report describe the fixed data: what is left is what --fix could not do.
        after = check_dataset(fixed.data, deep=deep, workers=workers)
        text += "\n\nafter the fix:\n" + after.format_text()
        payload["after_fix"] = after.to_json()
        code = after.exit_code
    if json_path:
        atomic_write_text(json_path, json.dumps(payload, indent=1, default=str))
    return code, text


def data_stats(
    data: str,
    split: str = "all",
    project: str = "runs/data",
    name: str = "stats",
    exist_ok: bool = False,
    plots: bool = True,
) -> tuple[str, Path]:
    """Class counts, objects per image, box size / aspect distributions; text + PNG plots."""
    from edgevision.data.stats import dataset_stats, format_stats, save_stats

    record_set = _load_split(data, split)
    out = prepare_run_dir(project, name, exist_ok)
    save_stats(record_set, out, plots=plots)
    return format_stats(dataset_stats(record_set)), out


def data_split(
    data: str, val: float = 0.1, test: float = 0.1, seed: int = 0, force: bool = False
) -> str:
    """Deterministic, class-stratified train/val/test lists written beside the data."""
    from edgevision.data.split import format_splits, split_dataset, write_splits

    record_set = _load_split(data, "all")
    splits = split_dataset(record_set, val=val, test=test, seed=seed)
    written = write_splits(record_set, splits, force=force)
    return format_splits(record_set, splits) + "\nwritten: " + ", ".join(str(p) for p in written)


def data_convert(data: str, to: str, out: str) -> tuple[Path, list[Issue]]:
    """Every split of ``data`` written in another format; reader issues are returned, not dropped."""
    from edgevision.data.convert import convert_dataset

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
    from edgevision.data.anchors import (
        anchor_metrics,
        format_anchors,
        kmeans_anchors,
        letterbox_wh,
        plot_anchors,
    )

    wh = letterbox_wh(_load_split(data, split), imgsz)
    if len(wh) < k:
        raise DataError(data, f"{len(wh)} boxes cannot make {k} anchors", "lower -k or add data")
    anchors = kmeans_anchors(wh, k=k, restarts=restarts, seed=seed, genetic_generations=generations)
    metrics = anchor_metrics(wh, anchors)
    out = prepare_run_dir(project, name, exist_ok)
    plot = plot_anchors(wh, anchors, out / "anchors.png")
    return (
        f"{format_anchors(anchors)}\nmean IoU {metrics['mean_iou']:.4f}, best possible recall "
        f"{metrics['best_possible_recall']:.4f} (ratio threshold 4.0), {len(wh)} boxes at imgsz {imgsz}\n"
        f"plot: {plot}"
    )


def data_synth(
    out: str,
    task: str = "detect",
    n_train: int = 600,
    n_val: int = 150,
    seed: int = 0,
    force: bool = False,
) -> Path:
    """The embedded demo dataset (generated, no download)."""
    from edgevision.data.synth import synthesize

    return synthesize(out, task=task, n_train=n_train, n_val=n_val, seed=seed, force=force)
