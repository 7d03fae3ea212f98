"""A torch-free inference path: numpy + OpenCV + onnxruntime only.

Nothing here imports torch, or any edgevision module outside ``core``; a test imports this package
in a process where ``import torch`` fails. ``open_model(path)`` returns the session of an exported
file's task; the numpy twins of the head codecs and of NMS live in ``codecs/`` and ``nms.py``.
"""

from edgevision.core.image import letterbox, to_input, unletterbox_boxes
from edgevision.runtime.metadata import ModelInfo, parse_metadata, to_metadata
from edgevision.runtime.nms import batched_nms, nms, postprocess
from edgevision.runtime.session import (
    OnnxClassifier,
    OnnxDetector,
    OnnxModel,
    open_model,
    open_session,
)
from edgevision.runtime.timing import time_call, time_session

__all__ = [
    "ModelInfo",
    "OnnxClassifier",
    "OnnxDetector",
    "OnnxModel",
    "batched_nms",
    "letterbox",
    "nms",
    "open_model",
    "open_session",
    "parse_metadata",
    "postprocess",
    "time_call",
    "time_session",
    "to_input",
    "to_metadata",
    "unletterbox_boxes",
]
