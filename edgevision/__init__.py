"""edgevision: lightweight vision models on your own data, trained on a laptop, shipped to the edge.

The Python API (the CLI calls the same functions)::

    import edgevision as ev

    ev.train(data="demo_data", model="nano-s", epochs=50, imgsz=320)
    metrics = ev.evaluate("runs/train/exp/weights/best.pt", "demo_data")
    results = ev.predict("runs/train/exp/weights/best.onnx", "photos/")  # Detections per image
    model = ev.load_model("best.pt")  # task, model, class names, input size

Names are resolved on first use, so ``import edgevision`` imports neither PyTorch nor OpenCV.
``export`` and ``bench`` share their names with subpackages, so they are reached as
``edgevision.api.export`` and ``edgevision.api.bench`` (``import edgevision.api as ev``).
"""

from __future__ import annotations

import importlib

from edgevision.core.version import __version__

# name -> module that defines it; read on first access (PEP 562), never at import time.
_EXPORTS = {
    "train": "edgevision.api",
    "evaluate": "edgevision.api",
    "predict": "edgevision.api",
    "load_model": "edgevision.api",
    "list_models": "edgevision.api",
    "Detections": "edgevision.core.results",
    "Classifications": "edgevision.core.results",
    "LoadedModel": "edgevision.tasks.base",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'edgevision' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)
