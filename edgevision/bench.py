"""``edgevision bench``: params, FLOPs, latency (PyTorch eager, ONNX Runtime FP32 and INT8) and
the fraction of this CPU's measured peak FLOP/s that the model achieves.

FLOPs are ``torch.utils.flop_counter`` counts, which are 2 x multiply-accumulates (the
detection-paper convention; convolutions and matrix products only). The peak is a float32 SGEMM
probe (512 x 512 matrices, best of 20 runs, the faster of ``torch.mm`` and ONNX Runtime's
``MatMul``) with the same thread count, cached per machine in ``~/.cache/edgevision/peak.json``
keyed by CPU model and threads (``peak_flops(threads, refresh=True)`` measures again). Every
benchmark's latencies are cached in ``latency.json`` beside it, which ``edgevision models``
reads through :func:`cached_latency`.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from edgevision.errors import ConfigError
from edgevision.fileio import atomic_write_text

SGEMM_SIZE = 512  # fits in L2: measures arithmetic, not memory bandwidth


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/edgevision`` or ``~/.cache/edgevision``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edgevision"


def cpu_name() -> str:
    """The CPU model string (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown-cpu"


def _read_cache(name: str) -> dict:
    path = cache_dir() / name
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:  # a cache is disposable: a damaged one is measured again
        return {}


def _write_cache(name: str, key: str, value: dict) -> None:
    entries = _read_cache(name)
    entries[key] = value
    atomic_write_text(cache_dir() / name, json.dumps(entries, indent=1, sort_keys=True))


def time_call(function: Callable[[], object], runs: int = 100, warmup: int = 10) -> dict:
    """Median and 90th-percentile wall time of ``function()`` over ``runs`` calls after ``warmup``."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    milliseconds = np.array(times) * 1000
    # The best run is what an idle machine gives; on a shared one it is the steadier figure.
    return {
        "median_ms": float(np.median(milliseconds)),
        "p90_ms": float(np.percentile(milliseconds, 90)),
        "best_ms": float(milliseconds.min()),
        "runs": runs,
    }


def time_session(session, imgsz: tuple[int, int], runs: int = 100, warmup: int = 10) -> dict:
    """:func:`time_call` of one batch-1 ONNX Runtime inference at ``imgsz`` (graph only)."""
    images = np.random.default_rng(0).random((1, 3, *imgsz), dtype=np.float32)
    return time_call(lambda: session.run(None, {"images": images}), runs, warmup)


class _TorchThreads:
    """Run PyTorch with ``threads`` intra-op threads and restore the previous count afterwards."""

    def __init__(self, threads: int):
        self.threads, self.previous = threads, torch.get_num_threads()

    def __enter__(self):
        torch.set_num_threads(self.threads)

    def __exit__(self, *exc):
        torch.set_num_threads(self.previous)


def _onnx_matmul(size: int, threads: int):
    """An ONNX Runtime session computing one (size x size) @ (size x size) float32 product."""
    import onnx
    from onnx import TensorProto, helper

    from edgevision.runtime.session import onnxruntime

    matrices = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [size, size]) for n in "abc"]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "sgemm", matrices[:2], matrices[2:]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(
        onnx.ModelProto.SerializeToString(model), options, providers=["CPUExecutionProvider"]
    )


def measure_peak_flops(threads: int, size: int = SGEMM_SIZE, repeats: int = 20) -> dict:
    """FLOP/s of a float32 ``size`` x ``size`` matrix product on ``threads`` threads, best run,
    by PyTorch (``torch.mm``) and by ONNX Runtime (``MatMul``, its MLAS kernels).

    Both are probed because BLAS libraries differ by up to 2x on one CPU (MKL on AMD, say); the
    faster of the two is the honest "achievable peak". 512 x 512 fits in L2, so the probe
    measures arithmetic throughput rather than memory bandwidth.

    Returns:
        ``{"torch": flops_per_s, "onnxruntime": flops_per_s}``.
    """
    rng = np.random.default_rng(0)
    a, b = (rng.random((size, size), dtype=np.float32) for _ in range(2))
    work = 2 * size**3
    session = _onnx_matmul(size, threads)
    feeds = {"a": a, "b": b}
    ort_best = time_call(lambda: session.run(None, feeds), runs=repeats, warmup=2)["best_ms"]
    a_torch, b_torch = torch.from_numpy(a), torch.from_numpy(b)
    with _TorchThreads(threads), torch.no_grad():
        torch_best = time_call(lambda: torch.mm(a_torch, b_torch), runs=repeats, warmup=2)[
            "best_ms"
        ]
    return {"torch": work / (torch_best / 1000), "onnxruntime": work / (ort_best / 1000)}


def peak_flops(threads: int, refresh: bool = False) -> float:
    """This machine's SGEMM peak (best engine) for ``threads`` threads, measured once and cached."""
    key = f"{cpu_name()}|threads={threads}"
    cached = _read_cache("peak.json").get(key)
    if cached and not refresh:
        return float(cached["flops_per_s"])
    probes = measure_peak_flops(threads)
    value = max(probes.values())
    _write_cache("peak.json", key, {"flops_per_s": value, "sgemm_size": SGEMM_SIZE, **probes})
    return value


def cached_latency(name: str, imgsz: int, threads: int = 2) -> dict | None:
    """Latencies last measured by ``bench`` for a zoo model on this machine, or None.

    Returns:
        dict of median ms per engine measured (``pytorch``, ``onnx_fp32``, ``onnx_int8``).
    """
    return _read_cache("latency.json").get(f"{cpu_name()}|threads={threads}|{name}|{imgsz}")


def _model_for(model: str | None, weights: str | None, num_classes: int):
    if weights:
        from edgevision.api import load_detector

        detector, meta = load_detector(weights)
        return detector, meta
    if not model:
        raise ConfigError("bench needs --model NAME (a zoo model) or --weights W.pt")
    from edgevision.models.zoo import build_model

    detector = build_model(model, num_classes).eval()
    meta = {
        "model_name": model,
        "class_names": [f"class{i}" for i in range(num_classes)],
        "task": "detect",
    }
    return detector, meta


def bench(
    model: str | None = None,
    weights: str | None = None,
    imgsz: int = 0,
    threads: int = 2,
    runs: int = 100,
    warmup: int = 10,
    int8: bool = True,
    data: str | None = None,
    num_classes: int = 80,
    pytorch: bool = True,
) -> dict:
    """Benchmark one detector at batch 1.

    Args:
        model: zoo name (random weights, ``num_classes`` classes) ...
        weights: ... or an edgevision checkpoint.
        imgsz: square input size (0: the checkpoint's training size or the zoo default).
        threads: intra-op threads for PyTorch and ONNX Runtime, and for the peak probe.
        runs, warmup: timed and untimed inferences per engine.
        int8: also time an INT8 model, calibrated on ``data`` (train split) or on random images.
        num_classes: classes of a zoo model built from its name (80: COCO, for comparisons).
        pytorch: also time PyTorch eager (the unfused model, as ``predict`` runs it).

    Returns:
        dict: ``model``, ``imgsz``, ``threads``, ``params``, ``flops`` (2 x MACs), ``cpu``,
        ``peak_gflops``, ``latency`` (per engine ``pytorch`` / ``onnx_fp32`` / ``onnx_int8``:
        ``median_ms``, ``p90_ms``, ``best_ms``), ``achieved_gflops`` and ``peak_fraction`` per
        engine (from the median).
    """
    import copy

    from edgevision.export.onnx import export_model
    from edgevision.models.blocks import fuse_conv_bn
    from edgevision.models.zoo import count_flops, count_parameters
    from edgevision.runtime.session import open_session

    detector, meta = _model_for(model, weights, num_classes)
    imgsz = imgsz or int(meta.get("imgsz") or detector.default_imgsz)
    if imgsz % max(detector.strides):
        raise ConfigError(f"--imgsz {imgsz} must be a multiple of {max(detector.strides)}")
    name = meta["model_name"]
    result = {
        "model": name,
        "imgsz": imgsz,
        "threads": threads,
        "cpu": cpu_name(),
        "params": count_parameters(detector),
        "flops": count_flops(detector, imgsz),
        "flops_kind": "FLOPs = 2 x MACs (torch.utils.flop_counter)",
        "latency": {},
    }
    if pytorch:
        images = torch.rand(1, 3, imgsz, imgsz)
        with _TorchThreads(threads), torch.no_grad():
            result["latency"]["pytorch"] = time_call(lambda: detector(images), runs, warmup)
    with tempfile.TemporaryDirectory() as scratch:
        fp32 = export_model(
            fuse_conv_bn(copy.deepcopy(detector)), meta, Path(scratch) / "m.onnx", imgsz
        )
        result["latency"]["onnx_fp32"] = time_session(
            open_session(fp32, threads=threads), (imgsz, imgsz), runs, warmup
        )
        if int8:
            int8_path = _quantized(fp32, data, imgsz)
            result["latency"]["onnx_int8"] = time_session(
                open_session(int8_path, threads=threads), (imgsz, imgsz), runs, warmup
            )
    _add_efficiency(result, peak_flops(threads))
    key = f"{result['cpu']}|threads={threads}|{name}|{imgsz}"
    measured = {engine: timing["median_ms"] for engine, timing in result["latency"].items()}
    _write_cache("latency.json", key, {**(cached_latency(name, imgsz, threads) or {}), **measured})
    return result


def _quantized(fp32: Path, data: str | None, imgsz: int) -> Path:
    from edgevision.export.quantize import (
        ImageCalibrationReader,
        calibration_images,
        int8_path_for,
        quantize_int8,
        random_images,
    )

    sources = calibration_images(data, 100) if data else random_images(16, imgsz)
    return quantize_int8(fp32, int8_path_for(fp32), ImageCalibrationReader(sources, (imgsz, imgsz)))


def _add_efficiency(result: dict, peak: float) -> None:
    result["peak_gflops"] = peak / 1e9
    result["achieved_gflops"], result["peak_fraction"] = {}, {}
    for engine, timing in result["latency"].items():
        achieved = result["flops"] / (timing["median_ms"] / 1000)
        result["achieved_gflops"][engine] = achieved / 1e9
        result["peak_fraction"][engine] = achieved / peak


def format_bench(result: dict) -> str:
    """The table ``edgevision bench`` prints."""
    lines = [
        f"{result['model']} @ {result['imgsz']}: {result['params'] / 1e6:.3f} M params, "
        f"{result['flops'] / 1e9:.3f} GFLOPs ({result['flops_kind']})",
        f"CPU {result['cpu']}, {result['threads']} threads, SGEMM peak {result['peak_gflops']:.1f} GFLOP/s",
        f"{'engine':<10} {'median ms':>10} {'p90 ms':>8} {'GFLOP/s':>8} {'of peak':>8}",
    ]
    for engine, timing in result["latency"].items():
        lines.append(
            f"{engine:<10} {timing['median_ms']:>10.2f} {timing['p90_ms']:>8.2f} "
            f"{result['achieved_gflops'][engine]:>8.1f} {result['peak_fraction'][engine]:>8.1%}"
        )
    return "\n".join(lines)
