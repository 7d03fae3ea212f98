"""ONNX export with parity checks, and INT8 quantization (PyTorch side; the runtime is torch-free)."""

from edgevision.export.onnx import export_model, export_onnx, read_info
from edgevision.export.parity import ParityError
from edgevision.export.quantize import evaluate_onnx, quantize_int8

__all__ = [
    "ParityError",
    "evaluate_onnx",
    "export_model",
    "export_onnx",
    "quantize_int8",
    "read_info",
]
