"""A torch-free inference path: numpy + OpenCV + onnxruntime only (letterbox, decode, NMS).

Nothing here imports torch, directly or through another edgevision module; a test imports this
package in a process where ``import torch`` fails.
"""

from ..data.letterbox import letterbox
from .decode import decode, detect, postprocess
from .metadata import ModelInfo, parse_metadata, to_metadata
from .nms import batched_nms, nms
from .preprocess import to_input, unletterbox_boxes
from .session import OnnxDetector, open_session

__all__ = [
    "ModelInfo",
    "OnnxDetector",
    "batched_nms",
    "decode",
    "detect",
    "letterbox",
    "nms",
    "open_session",
    "parse_metadata",
    "postprocess",
    "to_input",
    "to_metadata",
    "unletterbox_boxes",
]
