"""Checkpoints of every task in the format the first release wrote (the keys the trainer saved
then), and their ONNX exports: what the round-trip and compatibility tests run on."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from edgevision import api
from edgevision.config import TrainConfig
from edgevision.core.image import read_image
from edgevision.core.sources import list_sources
from edgevision.data.synth.classify import synthesize_classification
from edgevision.data.synth.detect import synthesize_detection
from edgevision.engine.checkpoint import save_checkpoint
from edgevision.models.zoo import build_model
from tests.detector import CLASS_NAMES, IMGSZ, biased_detector

CLASSIFIER = "cls-shufflenetv2-x0.5"
CLASSIFIER_NAMES = ["circle", "cross", "square", "star", "triangle"]  # the synth set's classes
CLASSIFIER_IMGSZ = 64


def first_release_checkpoint(path, model: nn.Module, meta: dict, task: str, model_name: str):
    """Exactly the keys ``Trainer._save`` wrote in the first release (no ``head`` in ``meta``)."""
    state = model.state_dict()
    config = TrainConfig(model=model_name, task=task).to_dict()
    return save_checkpoint(
        path,
        {
            "task": task,
            "meta": meta,
            "model": state,
            "ema": {"module": state, "updates": 10},
            "optimizer": {"state": {}, "param_groups": []},
            "scaler": {},
            "epoch": 3,
            "best_fitness": 0.5,
            "elapsed": 12.0,
            "rng": {"python": list(random.getstate()[1]), "torch": torch.get_rng_state()},
            "config": config,
            "metrics": {"fitness": 0.5},
        },
    )


def classifier_model() -> nn.Module:
    torch.manual_seed(0)
    model = build_model(CLASSIFIER, len(CLASSIFIER_NAMES))
    with torch.no_grad():  # real BN statistics, so a wrong fold or normalisation shows
        model.train()(torch.rand(8, 3, CLASSIFIER_IMGSZ, CLASSIFIER_IMGSZ))
    return model.eval()


@pytest.fixture(scope="session")
def release_checkpoints(tmp_path_factory):
    """``{"detect": path, "classify": path}`` in the first release's checkpoint format."""
    folder = tmp_path_factory.mktemp("release")
    detect_meta = {
        "model_name": "nano-s",
        "num_classes": len(CLASS_NAMES),
        "class_names": CLASS_NAMES,
        "imgsz": IMGSZ,
        "task": "detect",
    }
    classify_meta = {
        "model_name": CLASSIFIER,
        "num_classes": len(CLASSIFIER_NAMES),
        "class_names": CLASSIFIER_NAMES,
        "imgsz": CLASSIFIER_IMGSZ,
        "task": "classify",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    }
    return {
        "detect": first_release_checkpoint(
            folder / "detect.pt", biased_detector(), detect_meta, "detect", "nano-s"
        ),
        "classify": first_release_checkpoint(
            folder / "classify.pt", classifier_model(), classify_meta, "classify", CLASSIFIER
        ),
    }


@pytest.fixture(scope="session")
def task_data(tmp_path_factory):
    """``{"detect": VOC root, "classify": ImageFolder root}``: small synthetic sets."""
    folder = tmp_path_factory.mktemp("task_data")
    return {
        "detect": str(synthesize_detection(folder / "voc", n_train=4, n_val=4, seed=1)),
        "classify": str(synthesize_classification(folder / "cls", n_train=5, n_val=10, seed=1)),
    }


@pytest.fixture(scope="session")
def exported(release_checkpoints, tmp_path_factory):
    """``{"detect": .onnx, "classify": .onnx}`` written by ``edgevision export`` (checked)."""
    folder = tmp_path_factory.mktemp("exported")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # two OpenMP threads on a shared 2-core machine stall each other
    try:
        return {
            task: api.export(str(path), out=str(folder / f"{task}.onnx"), verbose=False)["path"]
            for task, path in release_checkpoints.items()
        }
    finally:
        torch.set_num_threads(previous)


def images_of(data: str) -> list[np.ndarray]:
    """The first three images of a dataset folder."""
    return [read_image(path) for path in list_sources(data)[:3]]
