"""The classification task on the shared trainer: transfer learning, freezing, head LR, a real run."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from edgevision import api, tasks
from edgevision.config import TrainConfig
from edgevision.core.errors import CheckpointError, ConfigError, DataError
from edgevision.data.datasets.classify import normalize_images
from edgevision.engine.checkpoint import load_checkpoint, load_pretrained, save_checkpoint
from edgevision.engine.trainer import Trainer
from edgevision.models.zoo import build_model as build_classifier
from edgevision.tasks.classify.train import (
    ClassificationTask,
    feature_modules,
    freeze_classifier,
    progressive_size,
)
from edgevision.tasks.classify.train import build_task as build_classification_task

COLOURS = ("blue", "green", "red")  # class k brightens RGB channel 2 - k: sorted names, fixed order


def _colour_set(root, per_class: dict[str, int]) -> None:
    """Noisy 48x40 images whose dominant channel is the class: learnable in a few dozen steps."""
    for split, count in per_class.items():
        for k, name in enumerate(COLOURS):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                rng = np.random.default_rng([k, i, len(split)])
                image = rng.integers(0, 140, (40, 48, 3)).astype(np.uint8)
                image[..., 2 - k] += 110
                cv2.imwrite(str(folder / f"{i:03d}.png"), image[..., ::-1])


@pytest.fixture(scope="module")
def colour_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("colours")
    _colour_set(root, {"train": 24, "val": 8})
    return root


@pytest.fixture(autouse=True)
def one_thread():
    """Other processes share this CPU; one intra-op thread avoids OpenMP spin-wait stalls."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _config(data, **overrides) -> TrainConfig:
    base = TrainConfig(
        data=str(data),
        model="cls-shufflenetv2-x0.5",
        task="classify",
        imgsz=32,
        batch=12,
        nbs=12,
        lr0=0.002,  # the learning checks below were set at this rate
        workers=0,
        epochs=1,
        verbose=False,
        plots=False,
        warmup_epochs=0.5,
    )
    return replace(base, **overrides)


@pytest.fixture(scope="module")
def trained(colour_data, tmp_path_factory):
    """One short real run through the shared Trainer (reused by the val / predict tests)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        config = _config(colour_data, epochs=16, imgsz=32)
        run_dir = tmp_path_factory.mktemp("run")
        (run_dir / "weights").mkdir()
        task = build_classification_task(config, torch.device("cpu"))
        summary = Trainer(task, config, run_dir, torch.device("cpu")).fit()
    finally:
        torch.set_num_threads(threads)
    return summary, run_dir


def test_short_training_run_beats_chance_by_a_wide_margin(trained):
    summary, run_dir = trained
    assert summary["epochs"] == 16
    assert summary["best_fitness"] >= 0.9  # chance is 1/3
    assert summary["last"]["top5"] == 1.0 and summary["last"]["train_acc"] > 0.5
    state = load_checkpoint(run_dir / "weights" / "best.pt")
    assert state["meta"]["task"] == "classify" and state["meta"]["class_names"] == list(COLOURS)
    assert state["meta"]["imgsz"] == 32 and state["meta"]["model_name"] == "cls-shufflenetv2-x0.5"


def test_val_and_predict_on_the_trained_checkpoint(trained, colour_data, tmp_path):
    summary, run_dir = trained
    weights = run_dir / "weights" / "best.pt"
    result = api.evaluate(
        str(weights), str(colour_data), batch=8, workers=0, project=str(tmp_path), name="val"
    )
    assert result["metrics"]["top1"] == pytest.approx(summary["best_fitness"])
    assert (
        result["metrics"]["images"] == 24 and (tmp_path / "val" / "confusion_matrix.png").is_file()
    )
    assert "top-1" in result["text"] and set(result["metrics"]["recall"]) == set(COLOURS)
    predictions = api.predict(
        str(weights),
        str(colour_data / "val" / "red"),
        topk=5,
        save_json=True,
        project=str(tmp_path),
        name="p",
    )
    assert len(predictions) == 8 and all(
        len(p.labels) == 3 for p in predictions
    )  # k capped at 3 classes
    assert sum(p.labels[0] == "red" for p in predictions) >= 6
    assert all(abs(sum(p.probabilities) - 1) < 1e-4 for p in predictions)
    assert (tmp_path / "p" / f"{Path(predictions[0].image_path).stem}.jpg").is_file()  # drawn
    rows = list(csv.reader((tmp_path / "p" / "predictions.csv").open()))
    assert rows[0] == [
        "path",
        "label_1",
        "probability_1",
        "label_2",
        "probability_2",
        "label_3",
        "probability_3",
    ]
    assert len(rows) == 9 and rows[1][1] == predictions[0].labels[0]
    saved = json.loads((tmp_path / "p" / "predictions.json").read_text())
    assert saved[0]["topk"][0]["label"] == predictions[0].labels[0]


def test_weights_of_another_class_count_load_all_but_the_classifier(colour_data, tmp_path):
    torch.manual_seed(1)
    imagenet = build_classifier("cls-shufflenetv2-x0.5", 1000).state_dict()
    torch.save(imagenet, tmp_path / "shufflenetv2_x0.5.pth")  # a plain torchvision-style state dict
    task = build_classification_task(
        _config(colour_data, weights=str(tmp_path / "shufflenetv2_x0.5.pth")), torch.device("cpu")
    )
    own = task.model.state_dict()
    assert own["fc.weight"].shape == (3, 1024)
    for key, value in imagenet.items():
        if not key.startswith("fc."):
            assert torch.equal(own[key], value), key
    report = load_pretrained(
        build_classifier("cls-shufflenetv2-x0.5", 3), tmp_path / "shufflenetv2_x0.5.pth"
    )
    assert sorted(report.skipped) == ["fc.bias", "fc.weight"] and not report.missing
    assert len(report.loaded) == len(imagenet) - 2


def test_detector_backbone_keys_and_foreign_files(tmp_path):
    source = build_classifier("cls-shufflenetv2-x0.5", 3).state_dict()
    prefixed = {
        f"backbone.{k}": v for k, v in source.items() if not k.startswith(("fc.", "conv5."))
    }
    torch.save({"model": prefixed}, tmp_path / "detector.pt")
    model = build_classifier("cls-shufflenetv2-x0.5", 3)
    report = load_pretrained(model, tmp_path / "detector.pt")
    assert len(report.loaded) == len(prefixed) and all(
        k.startswith(("fc.", "conv5.")) for k in report.missing
    )
    assert torch.equal(
        model.state_dict()["stage4.3.branch2.0.weight"], source["stage4.3.branch2.0.weight"]
    )
    torch.save({"encoder.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no tensor matches"):
        load_pretrained(model, tmp_path / "other.pt")


@pytest.mark.parametrize(
    ("name", "freeze"), [("cls-shufflenetv2-x0.5", "backbone"), ("cls-mobilenetv2", "3")]
)
def test_frozen_parameters_do_not_move_in_a_trainer_step(colour_data, tmp_path, name, freeze):
    torch.manual_seed(0)
    config = _config(
        colour_data, model=name, freeze=freeze, optimizer="sgd", lr0=0.1, warmup_epochs=0
    )
    task = build_classification_task(config, torch.device("cpu"))
    before = {k: v.detach().clone() for k, v in task.model.named_parameters()}
    frozen = {k for k, v in task.model.named_parameters() if not v.requires_grad}
    if freeze == "backbone":
        assert frozen == {k for k in before if not k.startswith("fc.")}
    else:
        assert frozen == {
            k
            for k in before
            if k.split(".")[:2] in (["features", "0"], ["features", "1"], ["features", "2"])
        }
    trainer = Trainer(task, config, tmp_path, torch.device("cpu"))
    optimizer, scheduler = trainer._build_optimizer(task.model, 10, 2)
    scheduler.step(5)
    task.loss(task.model.train(), next(iter(task.train_loader)))["loss"].backward()
    optimizer.step()
    for key, value in task.model.named_parameters():
        assert torch.equal(value, before[key]) == (key in frozen), key


def test_head_learning_rate_multiplier_reaches_the_optimizer(colour_data, tmp_path):
    config = _config(
        colour_data, model="cls-mobilenetv2", head_lr_mult=10.0, optimizer="sgd", lr0=0.01
    )
    task = build_classification_task(config, torch.device("cpu"))
    assert task.head_prefixes == ("classifier.",) and task.head_lr_mult == 10.0
    optimizer, scheduler = Trainer(task, config, tmp_path, torch.device("cpu"))._build_optimizer(
        task.model, 400, 4
    )
    scheduler.step(300)  # past warm-up: both groups on the same cosine, the ratio stays
    head = {id(p) for p in task.model.classifier.parameters()}
    for group in optimizer.param_groups:
        is_head = all(id(p) in head for p in group["params"])
        assert is_head or not any(id(p) in head for p in group["params"])
        assert group["initial_lr"] == pytest.approx(0.1 if is_head else 0.01)
    rates = {g["name"] + str(g["initial_lr"]): g["lr"] for g in optimizer.param_groups}
    assert rates["weight0.1"] == pytest.approx(10 * rates["weight0.01"])


def test_task_interface_and_label_smoothing(colour_data):
    task = build_classification_task(_config(colour_data, label_smoothing=0.2), torch.device("cpu"))
    assert isinstance(task, ClassificationTask) and task.name == "classify"
    task.on_epoch_start(3, epochs_left=1)
    assert task.train_dataset.epoch == 3 and task.model_for_graph() is task.model
    meta = task.checkpoint_meta()
    assert (
        meta["class_names"] == list(COLOURS)
        and meta["num_classes"] == 3
        and meta["std"][0] == 0.229
    )
    batch = next(iter(task.train_loader))
    with torch.no_grad():
        losses = task.loss(task.model.eval(), batch)
        logits = task.model(normalize_images(batch["images"]))
    assert float(losses["loss"]) == pytest.approx(
        float(F.cross_entropy(logits, batch["labels"], label_smoothing=0.2))
    )


def test_progressive_size_grows_to_imgsz_by_70_percent_of_the_run():
    sides = [progressive_size(128, k / 20, 0.5) for k in range(21)]
    assert sides[:2] == [64, 64] and sides[14:] == [128] * 7  # imgsz from 70 % on
    assert sides == sorted(sides) and all(side % 16 == 0 for side in sides)
    assert progressive_size(128, 0.35, 0.5) == 96  # halfway up the ramp: 0.75 x 128
    assert progressive_size(224, 0.0, 0.5) == 112 and progressive_size(96, 0.0, 0.5) == 64
    assert progressive_size(64, 0.0, 0.5) == 64 and progressive_size(32, 0.0, 0.5) == 32  # floor
    assert {progressive_size(128, k / 10, 1.0) for k in range(11)} == {128}  # --prog-resize 1: off


def test_the_training_size_reaches_persistent_workers_and_val_keeps_imgsz(colour_data):
    config = _config(colour_data, imgsz=128, workers=1, prog_resize=0.5)
    task = build_classification_task(config, torch.device("cpu"))
    sizes = []
    for progress in (0.0, 0.35, 0.7):
        task.on_epoch_start(0, 10, progress)
        sizes.append(next(iter(task.train_loader))["images"].shape[-1])
    assert sizes == [64, 96, 128]
    task.on_epoch_start(0, 10, 0.0)
    assert next(iter(task.val_loader))["images"].shape[-1] == 128
    with pytest.raises(ConfigError, match="--prog-resize 0: use a share of --imgsz in"):
        build_classification_task(_config(colour_data, prog_resize=0.0), torch.device("cpu"))


def test_model_names_and_bad_freeze(colour_data):
    config = TrainConfig(task="classify")  # --task alone: the task's default model
    assert tasks.task_for_training(config).name == "classify"
    assert config.model == "cls-shufflenetv2-x1.0"
    config = TrainConfig(model="cls-resnet18")  # --model alone: the model's task
    assert tasks.task_for_training(config).name == "classify" and config.task == "classify"
    with pytest.raises(
        ConfigError, match="--model nano-m is a detect model but --task is classify"
    ):
        tasks.task_for_training(TrainConfig(task="classify", model="nano-m"))
    model = build_classifier("cls-resnet18", 3)
    assert [type(m).__name__ for m in feature_modules(model)][:4] == [
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "MaxPool2d",
    ]
    assert freeze_classifier(model, "2") == 3  # conv1.weight, bn1.weight, bn1.bias
    with pytest.raises(ConfigError, match="--freeze 'head'"):
        freeze_classifier(model, "head")
    with pytest.raises(DataError, match="no class folders"):
        build_classification_task(_config(colour_data / "train" / "red"), torch.device("cpu"))


def test_load_model_reads_the_task_from_the_file_and_refuses_foreign_checkpoints(trained, tmp_path):
    _, run_dir = trained
    loaded = tasks.load_model(run_dir / "weights" / "best.pt")
    assert (loaded.task, loaded.class_names, loaded.imgsz) == ("classify", list(COLOURS), 32)
    assert not loaded.model.training and loaded.config["seed"] == 0
    save_checkpoint(tmp_path / "bare.pt", {"meta": {"task": "classify"}, "model": {}})
    with pytest.raises(CheckpointError, match="not an edgevision checkpoint"):
        tasks.load_model(tmp_path / "bare.pt")
    meta = {"model_name": "cls-vgg99", "num_classes": 3, "class_names": ["a", "b", "c"]}
    save_checkpoint(tmp_path / "future.pt", {"meta": meta, "model": {}})
    with pytest.raises(CheckpointError, match="unknown model 'cls-vgg99'"):
        tasks.load_model(tmp_path / "future.pt")
