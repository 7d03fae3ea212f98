"""A torch-free inference path: numpy + OpenCV + onnxruntime only (letterbox, decode, NMS).

Nothing here imports torch, directly or through another edgevision module; a test imports this
package in a process where ``import torch`` fails.
"""

from edgevision.data.letterbox import letterbox
from edgevision.runtime.decode import decode, detect, postprocess
from edgevision.runtime.metadata import ModelInfo, parse_metadata, to_metadata
from edgevision.runtime.nms import batched_nms, nms
from edgevision.runtime.preprocess import to_input, unletterbox_boxes
from edgevision.runtime.session import OnnxDetector, open_session

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
