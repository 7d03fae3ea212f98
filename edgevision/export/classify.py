"""Classifier checkpoints -> ONNX: fused, normalisation in the graph, softmax output, parity-checked.

The file takes the same input as the detectors (``images``: float32 NCHW RGB in [0, 1]) so a device
pipeline needs no ImageNet constants: ``(x - mean) / std`` is the graph's first op. The output is
``probabilities`` (B, C). Preprocessing a device must do is written in the metadata: resize the
shorter side to ``imgsz * 256 / 224`` and centre-crop ``imgsz`` (the val transform).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from edgevision import __version__
from edgevision.errors import ConfigError
from edgevision.export.parity import ParityError, check_fusion, max_abs_diff
from edgevision.fileio import atomic_write_bytes
from edgevision.models.blocks import fuse_conv_bn

PARITY_TOLERANCE = 1e-4  # on probabilities, which lie in [0, 1]


class NormalizedClassifier(nn.Module):
    """``softmax(model((x - mean) / std))`` for x in [0, 1]: the graph a device runs."""

    def __init__(self, model: nn.Module, mean: list[float], std: list[float]):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model((images - self.mean) / self.std).softmax(dim=1)


def export_classifier(
    weights: str | Path,
    imgsz: int = 0,
    dynamic: bool = False,
    opset: int = 17,
    out: str | Path | None = None,
    verbose: bool = True,
) -> dict:
    """Export a classification checkpoint; raises ParityError when ONNX Runtime disagrees.

    Returns:
        dict with ``path``, ``fuse_max_abs_diff``, ``ort_max_abs_diff`` and ``text``.
    """
    from edgevision.engine.classify_predict import load_classifier

    if opset < 17:
        raise ConfigError(f"--opset {opset}: edgevision exports opset 17 or newer")
    model, meta, _ = load_classifier(weights)
    imgsz = imgsz or int(meta["imgsz"])
    path = Path(out) if out else Path(weights).with_suffix(".onnx")
    probe = torch.rand(2, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))
    fused = fuse_conv_bn(copy.deepcopy(model).eval())
    fuse_diff = check_fusion(model, fused, probe)
    graph = NormalizedClassifier(fused, meta["mean"], meta["std"]).eval()
    _write_onnx(graph, path, imgsz, dynamic, opset, _metadata(meta, imgsz))
    ort_diff = _check_onnx(graph, path, probe)
    text = (
        f"fused Conv+BN vs trained model: max abs diff {fuse_diff:.2e}\n"
        f"ONNX Runtime vs PyTorch probabilities: max abs diff {ort_diff:.2e} -> OK\nwrote {path}"
    )
    if verbose:
        print(text)
    return {
        "path": str(path),
        "fuse_max_abs_diff": fuse_diff,
        "ort_max_abs_diff": ort_diff,
        "text": text,
    }


def _metadata(meta: dict, imgsz: int) -> dict[str, str]:
    return {
        "edgevision_version": __version__,
        "task": "classify",
        "model_name": meta["model_name"],
        "class_names": json.dumps(list(meta["class_names"])),
        "imgsz": json.dumps([imgsz, imgsz]),
        "input": json.dumps(
            {
                "name": "images",
                "layout": "NCHW",
                "dtype": "float32",
                "range": [0, 1],
                "channels": "RGB",
                "normalisation": "inside the graph",
            }
        ),
        "preprocess": json.dumps(
            {"resize_shorter": round(imgsz * 256 / 224), "center_crop": imgsz}
        ),
        "output_layout": json.dumps({"probabilities": "(B, C) softmax over class_names"}),
    }


def _write_onnx(
    graph: nn.Module, path: Path, imgsz: int, dynamic: bool, opset: int, metadata: dict
) -> None:
    tmp = path.with_name(f".{path.name}.export")
    axes = (
        {"images": {0: "batch", 2: "height", 3: "width"}, "probabilities": {0: "batch"}}
        if dynamic
        else None
    )
    torch.onnx.export(
        graph,
        torch.zeros(1, 3, imgsz, imgsz),
        str(tmp),
        input_names=["images"],
        output_names=["probabilities"],
        opset_version=opset,
        dynamic_axes=axes,
        dynamo=False,
    )
    proto = onnx.load(str(tmp))
    tmp.unlink()
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    atomic_write_bytes(path, proto.SerializeToString())


def _check_onnx(graph: nn.Module, path: Path, probe: torch.Tensor) -> float:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        reference = graph(probe[:1]).numpy()
    got = session.run(["probabilities"], {"images": probe[:1].numpy().astype(np.float32)})[0]
    diff = max_abs_diff(reference, got)
    if not diff <= PARITY_TOLERANCE:
        raise ParityError(
            f"{path}: ONNX Runtime probabilities differ from PyTorch by {diff:.2e} "
            f"(limit {PARITY_TOLERANCE:.0e}); the file is kept for inspection"
        )
    return diff
