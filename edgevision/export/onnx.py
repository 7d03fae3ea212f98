"""``edgevision export --format onnx``: checkpoint -> fused, parity-checked ONNX (+ optional INT8).

The steps, each reported: load the checkpoint; fold Conv+BN and check the folded model against the
trained one; trace to ONNX (TorchScript exporter, opset >= 17: the torch.export-based exporter
needs onnxscript, which is not a dependency) with the metadata the runtime reads
(:mod:`edgevision.runtime.metadata`); check ONNX Runtime against PyTorch on raw outputs and on
detections of sample images; simplify with onnxslim when installed (re-checked, and reverted
if the check fails); quantize to INT8 when asked (:mod:`edgevision.export.quantize`).

Output layouts (also written into the file, key ``output_layout``): ``raw`` (default) is the
detector's raw tensor (B, A, 4 + C), decoded by the numpy runtime; ``nms`` (``--nms``) holds decode
and NMS in the graph (see :mod:`edgevision.export.graph`).
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from edgevision import __version__
from edgevision.data.letterbox import GREY
from edgevision.errors import ConfigError
from edgevision.export.graph import NmsDetector
from edgevision.export.parity import ParityError, check_fusion, format_report
from edgevision.export.samples import check_file, letterboxed_batch, sample_images, torch_reference
from edgevision.fileio import atomic_write_bytes
from edgevision.models.blocks import fuse_conv_bn
from edgevision.runtime.metadata import ModelInfo, to_metadata

MIN_OPSET = 17
RAW_OUTPUTS = ["raw"]
NMS_OUTPUTS = ["num_dets", "boxes", "scores", "classes"]


def export_onnx(
    weights: str | Path,
    imgsz: int = 0,
    nms: bool = False,
    dynamic: bool = False,
    int8: bool = False,
    data: str | None = None,
    opset: int = MIN_OPSET,
    max_det: int = 100,
    conf: float = 0.25,
    iou: float = 0.45,
    out: str | Path | None = None,
    simplify: bool = True,
    calibration_images: int = 100,
    verbose: bool = True,
) -> dict:
    """Export a detection checkpoint to ONNX, check it, and optionally quantize it to INT8.

    Args:
        weights: an edgevision ``.pt`` checkpoint.
        imgsz: square input size (0: the size the checkpoint was trained at).
        nms: put decode + NMS in the graph (outputs ``num_dets, boxes, scores, classes``).
        dynamic: dynamic batch, height and width instead of a fixed (1, 3, imgsz, imgsz) input.
        int8: also write ``<name>-int8.onnx`` by ONNX Runtime static quantization.
        data: dataset for INT8 calibration (train split) and for parity / accuracy samples (val
            split); without it, synthetic images are used.
        opset: ONNX opset (>= 17).
        max_det, conf, iou: detections per image and thresholds; baked into an ``nms`` graph, and
            used by the parity check of both layouts.
        out: output path (default: ``weights`` with suffix ``.onnx``).
        simplify: run onnxslim when it is installed.
        calibration_images: training images used to calibrate INT8.
        verbose: print each step's result.

    Returns:
        dict with ``path``, ``int8_path`` (or None), ``parity`` (fusion diff and per-file checks),
        ``simplified``, ``int8`` (INT8 report or None) and ``text`` (the printed summary).

    Raises:
        CheckpointError: missing, non-edgevision or newer-format checkpoint (names the file).
        ConfigError: an invalid option (opset, imgsz, max_det) or ``int8`` without ``data``.
        ParityError: a numerical check failed; the file is left on disk for inspection.
    """
    from edgevision.api import load_detector  # api imports the package's heavy parts; import on use

    weights = Path(weights)
    if weights.suffix.lower() == ".onnx":
        raise ConfigError(f"{weights}: already an ONNX file; export takes a .pt checkpoint")
    model, meta = load_detector(weights)
    imgsz = _check_options(model, imgsz or int(meta["imgsz"]), opset, max_det)
    if int8 and not data:
        raise ConfigError("--int8 needs --data DATA: INT8 is calibrated on your training images")
    path = Path(out) if out else weights.with_suffix(".onnx")
    images, names = sample_images(data, seed=0)
    fused = fuse_conv_bn(copy.deepcopy(model).eval())
    fuse_diff = check_fusion(model, fused, letterboxed_batch(images, imgsz))
    report = {"fuse_max_abs_diff": fuse_diff, "checks": {}}
    options = {
        "imgsz": imgsz,
        "nms": nms,
        "dynamic": dynamic,
        "opset": opset,
        "max_det": max_det,
        "conf": conf,
        "iou": iou,
    }
    export_model(fused, meta, path, **options)
    reference = torch_reference(fused, list(meta["class_names"]), images, names, options)
    report["checks"]["fp32"] = check_file(path, reference, options)
    simplified = simplify and _simplify(path, reference, options, verbose)
    if simplified:
        report["checks"]["fp32"] = simplified
    result = {
        "path": str(path),
        "int8_path": None,
        "parity": report,
        "simplified": bool(simplified),
        "int8": None,
        "text": format_report(report),
    }
    _say(verbose, result["text"])
    if int8:
        from edgevision.export.quantize import format_int8, quantize_export

        result["int8"] = quantize_export(path, data, calibration_images, options, images, names)
        result["int8_path"] = result["int8"]["path"]
        result["text"] += "\n" + format_int8(result["int8"])
        _say(verbose, format_int8(result["int8"]))
    _say(verbose, f"wrote {path}" + (f" and {result['int8_path']}" if int8 else ""))
    return result


def _check_options(model: nn.Module, imgsz: int, opset: int, max_det: int) -> int:
    largest = max(model.strides)
    if imgsz <= 0 or imgsz % largest:
        raise ConfigError(f"--imgsz {imgsz} must be a positive multiple of {largest}")
    if opset < MIN_OPSET:
        raise ConfigError(f"--opset {opset}: use {MIN_OPSET} or newer")
    if max_det < 1:
        raise ConfigError(f"--max_det {max_det} must be at least 1")
    return imgsz


def _say(verbose: bool, text: str) -> None:
    if verbose:
        print(text)


def model_info(
    meta: dict,
    model: nn.Module,
    imgsz: int,
    nms: bool,
    dynamic: bool,
    max_det: int,
    conf: float,
    iou: float,
    precision: str = "fp32",
) -> ModelInfo:
    """The metadata written into the file, from checkpoint ``meta`` and the export options."""
    keypoints = meta.get("keypoints")
    if keypoints is None and meta.get("num_keypoints"):
        keypoints = {"num_keypoints": meta["num_keypoints"], "flip_idx": meta.get("flip_idx", [])}
    return ModelInfo(
        class_names=list(meta["class_names"]),
        imgsz=(imgsz, imgsz),
        strides=tuple(model.strides),
        output_layout="nms" if nms else "raw",
        dynamic=dynamic,
        nms={"conf": conf, "iou": iou, "max_det": max_det} if nms else None,
        precision=precision,
        task=meta.get("task", "detect"),
        model_name=meta.get("model_name", ""),
        version=__version__,
        letterbox={
            "color": GREY,
            "center": True,
            "scaleup": True,
            "resize": "INTER_LINEAR; INTER_AREA when shrinking 2x or more",
        },
        keypoints=keypoints,
    )


def export_model(
    model: nn.Module,
    meta: dict,
    path: str | Path,
    imgsz: int,
    nms: bool = False,
    dynamic: bool = False,
    opset: int = MIN_OPSET,
    max_det: int = 100,
    conf: float = 0.25,
    iou: float = 0.45,
) -> Path:
    """Trace ``model`` (already fused, eval mode) to ``path`` with edgevision metadata.

    Args:
        model: a ``Detector``; meta: checkpoint metadata (``class_names``, ``model_name``, ...).
        Other arguments as :func:`export_onnx`.

    Returns:
        ``path``, written atomically.
    """
    module = NmsDetector(model, conf, iou, max_det) if nms else model
    outputs = NMS_OUTPUTS if nms else RAW_OUTPUTS
    axes = None
    if dynamic:
        axes = {"images": {0: "batch", 2: "height", 3: "width"}}
        axes.update({name: {0: "batch"} for name in outputs})
        if not nms:
            axes["raw"][1] = "anchors"
    proto = _trace(module.eval(), torch.rand(1, 3, imgsz, imgsz), outputs, axes, opset)
    if nms:
        _declare_nms_shapes(proto, "batch" if dynamic else 1, max_det)
    info = model_info(meta, model, imgsz, nms, dynamic, max_det, conf, iou)
    return save_with_metadata(proto, info, outputs, path)


def _declare_nms_shapes(proto: onnx.ModelProto, batch: int | str, max_det: int) -> None:
    """Write the fixed output shapes into the graph (the trace leaves them symbolic), so a
    reader sees ``boxes (batch, max_det, 4)`` without running the model."""
    shapes = {
        "num_dets": [batch, 1],
        "boxes": [batch, max_det, 4],
        "scores": [batch, max_det],
        "classes": [batch, max_det],
    }
    for output in proto.graph.output:
        dims = output.type.tensor_type.shape.dim
        del dims[:]
        for size in shapes[output.name]:
            dim = dims.add()
            if isinstance(size, str):
                dim.dim_param = size
            else:
                dim.dim_value = size


def _trace(
    module: nn.Module, example: torch.Tensor, outputs: list[str], axes: dict | None, opset: int
) -> onnx.ModelProto:
    """TorchScript-exporter trace into memory (the exporter's deprecation and tracer notes are
    expected here and would only confuse a user, so they are filtered for this call only)."""
    import io

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx.*")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export.*")
        # NmsDetector indexes with NMS output rows, which are never negative.
        warnings.filterwarnings("ignore", message=r".*advanced indexing.*negative values.*")
        torch.onnx.export(
            module,
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


def save_with_metadata(
    proto: onnx.ModelProto, info: ModelInfo, outputs: list[str], path: str | Path
) -> Path:
    """Replace the file's ``metadata_props`` with ``info`` and write it atomically."""
    del proto.metadata_props[:]
    for key, value in to_metadata(info, outputs).items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name = "edgevision"
    proto.producer_version = __version__
    onnx.checker.check_model(proto)
    return atomic_write_bytes(path, proto.SerializeToString())


def read_info(path: str | Path) -> ModelInfo:
    """The :class:`ModelInfo` stored in an ONNX file (for tools that hold a path, not a session)."""
    from edgevision.runtime.metadata import parse_metadata

    proto = onnx.load(str(path), load_external_data=False)
    return parse_metadata({prop.key: prop.value for prop in proto.metadata_props}, path)


def _simplify(path: Path, reference: dict, options: dict, verbose: bool):
    """onnxslim the file in place and re-check it; returns the new parity check, or None when
    onnxslim is missing or the simplified graph failed its check (the original file is kept)."""
    try:
        import onnxslim
    except ImportError:
        _say(verbose, "onnxslim not installed: graph left unsimplified (pip install onnxslim)")
        return None
    original = path.read_bytes()
    proto = onnx.load_from_string(original)
    props = {prop.key: prop.value for prop in proto.metadata_props}
    slim = onnxslim.slim(proto)
    slim.metadata_props.extend(
        onnx.StringStringEntryProto(key=k, value=v) for k, v in props.items()
    )
    atomic_write_bytes(path, slim.SerializeToString())
    try:
        check = check_file(path, reference, options)
    except ParityError as e:
        atomic_write_bytes(path, original)
        _say(verbose, f"onnxslim output failed the parity check ({e}); kept the unsimplified graph")
        return None
    _say(
        verbose,
        f"simplified with onnxslim: {len(proto.graph.node)} -> {len(slim.graph.node)} nodes",
    )
    return check
