"""Tracing a module into an in-memory ONNX model: the one place export touches ``torch.onnx``.

The TorchScript exporter, opset >= 17: the torch.export-based exporter needs onnxscript, which is
not a dependency.
"""

from __future__ import annotations

import io
import warnings

import onnx
import torch
from torch import nn

from edgevision.export.onnx import MIN_OPSET


def trace(
    module: nn.Module,
    example: torch.Tensor,
    outputs: list[str],
    axes: dict | None = None,
    opset: int = MIN_OPSET,
) -> onnx.ModelProto:
    """Trace ``module`` (eval mode) on ``example`` into an in-memory ONNX model with input
    ``images`` and the given output names and dynamic axes.

    The exporter's deprecation and tracer notes are expected here and would only confuse a user,
    so they are filtered for this call only.
    """
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx.*")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=r".*The feature will be removed.*")
        # NmsDetector indexes with NMS output rows, which are never negative.
        warnings.filterwarnings("ignore", message=r".*advanced indexing.*negative values.*")
        torch.onnx.export(
            module.eval(),
            (example,),
            buffer,
            input_names=["images"],
            output_names=outputs,
            opset_version=opset,
            dynamic_axes=axes,
            do_constant_folding=True,
            dynamo=False,
        )
    return onnx.load_from_string(buffer.getvalue())
