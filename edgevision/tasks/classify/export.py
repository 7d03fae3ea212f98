"""``edgevision export`` for classifiers: fused, normalisation and softmax in the graph, checked.

The file takes the same input as the detectors (``images``: float32 NCHW RGB in [0, 1]) so a device
pipeline needs no ImageNet constants: ``(x - mean) / std`` is the graph's first op. The output is
``probabilities`` (B, C). The preprocessing a device must do is in the metadata (``preprocess``:
resize the shorter side to ``imgsz * 256 / 224``, centre-crop ``imgsz``), and the torch-free
``OnnxClassifier`` does it. Two checks: ONNX Runtime against PyTorch on the graph's output, and
the runtime session against the PyTorch predictor on sample images (preprocessing included).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgevision.core.errors import ConfigError, ParityError
from edgevision.core.image import RESIZE_RATIO, read_image
from edgevision.core.version import __version__
from edgevision.data.datasets.classify import IMAGENET_MEAN, IMAGENET_STD
from edgevision.data.formats.imagefolder import load_classification
from edgevision.data.synth.classify import render_classification_image
from edgevision.export.onnx import check_opset, simplify, write_model
from edgevision.export.parity import check_fusion, max_abs_diff
from edgevision.export.trace import trace
from edgevision.models.blocks import fuse_conv_bn
from edgevision.runtime.metadata import ModelInfo, center_crop_preprocess
from edgevision.runtime.session import OnnxClassifier, open_session
from edgevision.tasks.base import ExportOptions, LoadedModel
from edgevision.tasks.classify.inference import ClassifierPredictor

PARITY_TOLERANCE = 1e-4  # on probabilities, which lie in [0, 1]
NUM_SAMPLES = 4
OUTPUTS = ["probabilities"]


class NormalizedClassifier(nn.Module):
    """``softmax(model((x - mean) / std))`` for x in [0, 1]: the graph a device runs."""

    def __init__(self, model: nn.Module, mean: list[float], std: list[float]):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model((images - self.mean) / self.std).softmax(dim=1)


def export_classifier(loaded: LoadedModel, options: ExportOptions) -> dict:
    """Export a classification checkpoint; raises ParityError when ONNX Runtime disagrees.

    Returns:
        dict with ``path``, ``fuse_max_abs_diff``, ``ort_max_abs_diff``,
        ``runtime_max_abs_diff`` (session vs PyTorch predictor on sample images), ``simplified``
        and ``text``.
    """
    if options.nms or options.int8:
        raise ConfigError(
            "--nms and --int8 apply to detectors; a classifier exports as probabilities"
        )
    check_opset(options.opset)
    say = print if options.verbose else (lambda text: None)
    imgsz = options.imgsz or loaded.imgsz
    path = Path(options.out) if options.out else loaded.path.with_suffix(".onnx")
    probe = torch.rand(2, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))
    fused = fuse_conv_bn(copy.deepcopy(loaded.model).eval())
    fuse_diff = check_fusion(loaded.model, fused, probe)
    graph = write_classifier(fused, loaded.meta, path, imgsz, options.dynamic, options.opset)
    images = sample_images(options.data or None, loaded.class_names)
    reference = ClassifierPredictor(loaded.model, loaded.class_names, imgsz).probabilities(images)

    def check(candidate: Path) -> dict:
        return {
            "ort": _check_graph(graph, candidate, probe[:1]),
            "runtime": _check_runtime(candidate, images, reference),
        }

    checks = check(path)
    simplified = options.simplify and simplify(path, check, say)
    checks = simplified or checks
    text = (
        f"fused Conv+BN vs trained model: max abs diff {fuse_diff:.2e}\n"
        f"ONNX Runtime vs PyTorch probabilities: max abs diff {checks['ort']:.2e}; runtime "
        f"session vs PyTorch predictor on {len(images)} images: {checks['runtime']:.2e} -> OK\n"
        f"wrote {path}"
    )
    say(text)
    return {
        "path": str(path),
        "fuse_max_abs_diff": fuse_diff,
        "ort_max_abs_diff": checks["ort"],
        "runtime_max_abs_diff": checks["runtime"],
        "simplified": bool(simplified),
        "text": text,
    }


def write_classifier(
    fused: nn.Module, meta: dict, path: Path, imgsz: int, dynamic: bool = False, opset: int = 17
) -> nn.Module:
    """Trace ``NormalizedClassifier(fused)`` to ``path`` with its metadata; returns the graph."""
    mean, std = meta.get("mean", IMAGENET_MEAN), meta.get("std", IMAGENET_STD)
    graph = NormalizedClassifier(fused, list(mean), list(std)).eval()
    axes = {"images": {0: "batch", 2: "height", 3: "width"}, "probabilities": {0: "batch"}}
    proto = trace(graph, torch.zeros(1, 3, imgsz, imgsz), OUTPUTS, axes if dynamic else None, opset)
    info = ModelInfo(
        class_names=list(meta["class_names"]),
        imgsz=(imgsz, imgsz),
        output_layout="probabilities",
        task="classify",
        dynamic=dynamic,
        model_name=meta.get("model_name", ""),
        version=__version__,
        preprocess=center_crop_preprocess(imgsz, round(imgsz * RESIZE_RATIO)),
    )
    write_model(proto, info, OUTPUTS, path)
    return graph


def sample_images(data: str | None, class_names: list[str]) -> list[np.ndarray]:
    """Images to check an export on: the first of ``data``'s val split, or drawn shapes of
    varied sizes (so resizing and cropping are exercised either way)."""
    if data:
        split, _ = load_classification(data, "val", class_names)
        return [read_image(path) for path, _ in split.samples[:NUM_SAMPLES]]
    rng = np.random.default_rng(0)
    sizes = [(int(rng.integers(100, 300)), int(rng.integers(100, 300))) for _ in range(NUM_SAMPLES)]
    return [render_classification_image(rng, i % 5, w, h) for i, (w, h) in enumerate(sizes)]


def _check_graph(graph: nn.Module, path: Path, probe: torch.Tensor) -> float:
    session = open_session(path)
    with torch.no_grad():
        reference = graph(probe).numpy()
    got = session.run(OUTPUTS, {"images": probe.numpy().astype(np.float32)})[0]
    return _within(path, max_abs_diff(reference, got), "probabilities")


def _check_runtime(path: Path, images: list[np.ndarray], reference: np.ndarray) -> float:
    got = OnnxClassifier(path, threads=1).probabilities(images)
    return _within(path, max_abs_diff(reference, got), "runtime probabilities")


def _within(path: Path, diff: float, what: str) -> float:
    if not diff <= PARITY_TOLERANCE:
        raise ParityError(
            f"{path}: ONNX {what} differ from PyTorch by {diff:.2e} (limit "
            f"{PARITY_TOLERANCE:.0e}); the file is kept for inspection"
        )
    return diff
