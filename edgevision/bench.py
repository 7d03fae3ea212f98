"""``edgevision bench``: params, FLOPs, latency (PyTorch eager, ONNX Runtime FP32 and INT8) and
the fraction of this CPU's measured peak FLOP/s that the model achieves, for a zoo model, ``.pt``
weights or an exported ``.onnx`` (the last without PyTorch: ONNX Runtime only, params and FLOPs
read from the graph).

FLOPs are 2 x multiply-accumulates (the detection-paper convention; convolutions and matrix
products only): ``torch.utils.flop_counter`` for PyTorch models, the same count from the ONNX
graph's Conv / MatMul / Gemm shapes for an ``.onnx``. The peak is a float32 SGEMM probe (512 x 512
matrices, best of 20 runs, the faster of ``torch.mm`` when PyTorch is installed and ONNX Runtime's
``MatMul``) with the same thread count, cached per machine in ``~/.cache/edgevision/peak.json``
keyed by CPU model and threads (``peak_flops(threads, refresh=True)`` measures again). Every
benchmark's latencies are cached in ``latency.json`` beside it, which ``edgevision models``
reads through :func:`cached_latency`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np

from edgevision import tasks
from edgevision.core.errors import ConfigError
from edgevision.core.fileio import atomic_write_text
from edgevision.data.formats.sniff import sample_image_paths
from edgevision.runtime.session import open_model, open_session
from edgevision.runtime.timing import time_call, time_session

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


def _torch_installed() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except ImportError:  # a finder that refuses torch outright (a blocked or broken install)
        return False


def _onnx_matmul(size: int, threads: int):
    """An ONNX Runtime session computing one (size x size) @ (size x size) float32 product."""
    import onnxruntime
    from onnx import TensorProto, helper

    matrices = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [size, size]) for n in "abc"]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "sgemm", matrices[:2], matrices[2:]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def measure_peak_flops(threads: int, size: int = SGEMM_SIZE, repeats: int = 20) -> dict:
    """FLOP/s of a float32 ``size`` x ``size`` matrix product on ``threads`` threads, best run,
    by ONNX Runtime (``MatMul``, its MLAS kernels) and by PyTorch (``torch.mm``) when installed.

    Both are probed because BLAS libraries differ by up to 2x on one CPU (MKL on AMD, say); the
    faster of the two is the honest "achievable peak". 512 x 512 fits in L2, so the probe
    measures arithmetic throughput rather than memory bandwidth.

    Returns:
        ``{"onnxruntime": flops_per_s}`` plus ``"torch"`` when PyTorch is installed.
    """
    rng = np.random.default_rng(0)
    a, b = (rng.random((size, size), dtype=np.float32) for _ in range(2))
    work = 2 * size**3
    session = _onnx_matmul(size, threads)
    feeds = {"a": a, "b": b}
    ort_best = time_call(lambda: session.run(None, feeds), runs=repeats, warmup=2)["best_ms"]
    probes = {"onnxruntime": work / (ort_best / 1000)}
    if _torch_installed():
        import torch  # the second engine, when it is installed

        from edgevision.engine.threads import torch_threads

        with torch_threads(threads):
            a_t, b_t = torch.from_numpy(a), torch.from_numpy(b)
            best = time_call(lambda: torch.mm(a_t, b_t), runs=repeats, warmup=2)["best_ms"]
        probes["torch"] = work / (best / 1000)
    return probes


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


def bench(
    model: str | None = None,
    weights: str | None = None,
    imgsz: int = 0,
    threads: int = 2,
    runs: int = 100,
    warmup: int = 10,
    int8: bool = True,
    data: str | None = None,
    pytorch: bool = True,
    num_classes: int = 0,
) -> dict:
    """Benchmark one model at batch 1.

    Args:
        model: zoo name (random weights) ...
        weights: ... or a ``.pt`` checkpoint, or an exported ``.onnx`` (ONNX Runtime only).
        imgsz: square input size (0: the checkpoint's / file's / zoo default size).
        threads: intra-op threads for PyTorch and ONNX Runtime, and for the peak probe.
        runs, warmup: timed and untimed inferences per engine.
        int8: also time an INT8 model, calibrated on ``data`` (train split) or on random images.
        data: calibration images for INT8.
        pytorch: also time PyTorch eager (the unfused model, as ``predict`` runs it).
        num_classes: classes of a zoo model built from its name (0: 80 for detectors, as COCO;
            1000 for classifiers, as ImageNet).

    Returns:
        dict: ``model``, ``task``, ``imgsz``, ``threads``, ``params``, ``flops`` (2 x MACs),
        ``cpu``, ``peak_gflops``, ``latency`` (per engine ``pytorch`` / ``onnx_fp32`` /
        ``onnx_int8``: ``median_ms``, ``p90_ms``, ``best_ms``), ``achieved_gflops`` and
        ``peak_fraction`` per engine (from the median), and ``text`` (the printed table).
    """
    if weights and Path(weights).suffix.lower() == ".onnx":
        result = _bench_onnx(Path(weights), imgsz, threads, runs, warmup, int8, data)
    else:
        result = _bench_torch(
            model, weights, imgsz, threads, runs, warmup, int8, data, pytorch, num_classes
        )
    _add_efficiency(result, peak_flops(threads))
    key = f"{result['cpu']}|threads={threads}|{result['model']}|{result['imgsz']}"
    measured = {engine: timing["median_ms"] for engine, timing in result["latency"].items()}
    previous = cached_latency(result["model"], result["imgsz"], threads) or {}
    _write_cache("latency.json", key, {**previous, **measured})
    result["text"] = format_bench(result)
    return result


def _bench_onnx(
    path: Path, imgsz: int, threads: int, runs: int, warmup: int, int8: bool, data: str | None
) -> dict:
    """An exported file: ONNX Runtime FP32 (and INT8 quantized from it), graph params / FLOPs."""
    session = open_model(path, threads=threads, imgsz=imgsz or None)
    size = session.imgsz
    result = _header(session.info.model_name or path.stem, session.info.task, size[0], threads)
    result.update(onnx_graph_counts(path, size))
    engine = f"onnx_{session.info.precision}"  # an INT8 file is timed as what it is
    result["latency"][engine] = time_session(session.session, size, runs, warmup)
    if int8 and session.info.precision == "fp32":
        with tempfile.TemporaryDirectory() as scratch:
            quantized = _quantized(path, Path(scratch) / "int8.onnx", data, size[0])
            timing = time_session(open_session(quantized, threads=threads), size, runs, warmup)
        result["latency"]["onnx_int8"] = timing
    return result


def _bench_torch(
    model: str | None,
    weights: str | None,
    imgsz: int,
    threads: int,
    runs: int,
    warmup: int,
    int8: bool,
    data: str | None,
    pytorch: bool,
    num_classes: int,
) -> dict:
    """A zoo model or ``.pt`` weights: PyTorch eager, then its ONNX export (FP32, INT8)."""
    import torch  # zoo models and .pt weights need PyTorch

    from edgevision.engine.threads import torch_threads
    from edgevision.models.zoo import count_flops, count_parameters

    net, meta = _model_for(model, weights, num_classes)
    imgsz = imgsz or int(meta["imgsz"])
    multiple = getattr(net, "size_divisor", 1)
    if imgsz % multiple:
        raise ConfigError(f"--imgsz {imgsz} must be a multiple of {multiple}")
    result = _header(meta["model_name"], meta["task"], imgsz, threads)
    result["params"] = count_parameters(net)
    result["flops"] = count_flops(net, imgsz)
    if pytorch:
        with torch_threads(threads), torch.no_grad():
            images = torch.rand(1, 3, imgsz, imgsz)
            result["latency"]["pytorch"] = time_call(lambda: net(images), runs, warmup)
    spec = tasks.get_task(meta["task"])
    with tempfile.TemporaryDirectory() as scratch:
        fp32 = spec.write_onnx(net, meta, Path(scratch) / "m.onnx", imgsz)
        size = (imgsz, imgsz)
        result["latency"]["onnx_fp32"] = time_session(
            open_session(fp32, threads=threads), size, runs, warmup
        )
        if int8:
            quantized = _quantized(fp32, Path(scratch) / "m-int8.onnx", data, imgsz)
            result["latency"]["onnx_int8"] = time_session(
                open_session(quantized, threads=threads), size, runs, warmup
            )
    return result


def _header(name: str, task: str, imgsz: int, threads: int) -> dict:
    return {
        "model": name,
        "task": task,
        "imgsz": imgsz,
        "threads": threads,
        "cpu": cpu_name(),
        "flops_kind": "FLOPs = 2 x MACs (convolutions and matrix products)",
        "latency": {},
    }


def _model_for(model: str | None, weights: str | None, num_classes: int):
    if weights:
        loaded = tasks.load_model(weights)
        return loaded.model, loaded.meta
    if not model:
        raise ConfigError("bench needs --model NAME (a zoo model) or --weights W.pt / W.onnx")
    from edgevision.models.zoo import REFERENCE_CLASSES, build_model, zoo_entry

    spec = zoo_entry(model)
    classes = num_classes or REFERENCE_CLASSES[spec.task]
    meta = {
        "model_name": model,
        "task": spec.task,
        "imgsz": spec.imgsz,
        "num_classes": classes,
        "class_names": [f"class{i}" for i in range(classes)],
    }
    return build_model(model, classes).eval(), meta


def _quantized(fp32: Path, out: Path, data: str | None, imgsz: int) -> Path:
    """INT8 of ``fp32``: calibrated on ``data``'s training images, else on random images (timing
    only: the accuracy of a noise-calibrated model means nothing)."""
    # On use: onnxruntime.quantization takes a while to import, and most runs never quantize.
    from edgevision.export.quantize import ImageCalibrationReader, quantize_int8, random_images

    if data:
        sources = sample_image_paths(data, 100)
    else:
        sources = random_images(16, imgsz)
    return quantize_int8(fp32, out, ImageCalibrationReader(sources, (imgsz, imgsz)))


def onnx_graph_counts(path: Path, imgsz: tuple[int, int]) -> dict:
    """``params`` (initializer elements) and ``flops`` (2 x MACs of Conv, MatMul and Gemm) of an
    ONNX file at batch 1 and ``imgsz``, without PyTorch.

    The output shapes come from one ONNX Runtime run with every counted node's output exposed:
    static shape inference stops at data-dependent ops (the neck's ``Resize``), a run does not.
    """
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    proto = onnx.load(str(path))
    graph = proto.graph
    weights = {init.name: numpy_helper.to_array(init).shape for init in graph.initializer}
    counted = [node for node in graph.node if node.op_type in ("Conv", "MatMul", "Gemm")]
    exposed = {output.name for output in graph.output}
    for node in counted:
        for name in (node.output[0], node.input[1]):
            if name not in exposed and name not in weights:
                graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
                exposed.add(name)
    session = onnxruntime.InferenceSession(
        proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    names = [output.name for output in session.get_outputs()]
    values = session.run(names, {"images": np.zeros((1, 3, *imgsz), np.float32)})
    shapes = {**{name: value.shape for name, value in zip(names, values, strict=True)}, **weights}
    flops = 0
    for node in counted:
        out, weight = shapes[node.output[0]], shapes[node.input[1]]
        if node.op_type == "Conv":  # weight (C_out, C_in / groups, kh, kw): MACs per output
            macs_per_output = int(np.prod(weight[1:]))
        elif node.op_type == "Gemm":  # weight (K, N), or (N, K) with transB (nn.Linear)
            trans_b = any(a.name == "transB" and a.i for a in node.attribute)
            macs_per_output = int(weight[1] if trans_b else weight[0])
        else:  # (..., K) @ (K, N): K MACs per output element
            macs_per_output = int(weight[-2])
        flops += 2 * int(np.prod(out)) * macs_per_output
    params = sum(int(np.prod(shape)) for shape in weights.values())
    return {"params": params, "flops": flops}


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
        f"{result['model']} ({result['task']}) @ {result['imgsz']}: "
        f"{result['params'] / 1e6:.3f} M params, {result['flops'] / 1e9:.3f} GFLOPs "
        f"({result['flops_kind']})",
        f"CPU {result['cpu']}, {result['threads']} threads, SGEMM peak {result['peak_gflops']:.1f} GFLOP/s",
        f"{'engine':<10} {'median ms':>10} {'p90 ms':>8} {'GFLOP/s':>8} {'of peak':>8}",
    ]
    for engine, timing in result["latency"].items():
        lines.append(
            f"{engine:<10} {timing['median_ms']:>10.2f} {timing['p90_ms']:>8.2f} "
            f"{result['achieved_gflops'][engine]:>8.1f} {result['peak_fraction'][engine]:>8.1%}"
        )
    return "\n".join(lines)
