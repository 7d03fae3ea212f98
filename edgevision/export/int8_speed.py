"""Is the INT8 model faster than FP32 here? Time both, and write INT8 only when it is (or when
asked to anyway).

Why measure instead of assuming: ONNX Runtime's int8 CPU kernels win on dense convolutions but
lose on depthwise convs, on activations other than ReLU (a separate lookup instead of a fused
one) and on layouts that force NHWC <-> NCHW transposes. On the small detectors of the zoo the
result goes either way (at 320, 2 threads: nano-s INT8 0.81x of FP32, yolo-n 1.14x; see
:mod:`edgevision.export.quantize`), and an INT8 file is only worth shipping if it is faster on the
CPU it is for.

The two models are timed alternately in one process (FP32, INT8, INT8, FP32, ...): on a shared
machine a burst of load then slows both alike, and the ratio of the medians stays fair where two
separate timing passes (``bench``'s) can be off by 2x.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgevision.runtime.session import open_session

if TYPE_CHECKING:  # onnxruntime.quantization is slow to import: only where a model is quantized
    from onnxruntime.quantization import CalibrationDataReader

DEFAULT_THREADS = 2  # the edge targets' usual intra-op threads, as ``bench``
DEFAULT_RUNS = 30  # timed runs per model (after warm-up), alternating


def compare_speed(
    fp32_path: str | Path,
    int8_path: str | Path,
    imgsz: int | tuple[int, int],
    threads: int = DEFAULT_THREADS,
    runs: int = DEFAULT_RUNS,
    warmup: int = 5,
) -> dict:
    """Median batch-1 latency of both models with ONNX Runtime on ``threads`` intra-op threads.

    Args:
        imgsz: input side, or (height, width).
        runs: timed runs per model, interleaved (the order alternates every round, so neither
            model always runs on the other's warm caches).

    Returns:
        dict: ``fp32_ms``, ``int8_ms`` (medians), ``speedup`` (``fp32_ms / int8_ms``: above 1
        means INT8 is faster), ``fp32_best_ms``, ``int8_best_ms`` (fastest runs: what an idle
        machine gives), ``threads``, ``runs``.
    """
    height, width = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    images = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    sessions = [open_session(path, threads=threads) for path in (fp32_path, int8_path)]
    for session in sessions:
        for _ in range(warmup):
            session.run(None, {"images": images})
    times: list[list[float]] = [[], []]
    for round_index in range(runs):
        order = (0, 1) if round_index % 2 == 0 else (1, 0)
        for which in order:
            start = time.perf_counter()
            sessions[which].run(None, {"images": images})
            times[which].append(time.perf_counter() - start)
    fp32_ms, int8_ms = (float(np.median(t)) * 1000 for t in times)
    fp32_best_ms, int8_best_ms = (float(np.min(t)) * 1000 for t in times)
    return {
        "fp32_ms": fp32_ms,
        "int8_ms": int8_ms,
        "speedup": fp32_ms / int8_ms,
        "fp32_best_ms": fp32_best_ms,
        "int8_best_ms": int8_best_ms,
        "threads": threads,
        "runs": runs,
    }


def int8_verdict(speed: dict, keep_slower: bool = False) -> dict:
    """Whether to write the INT8 file, and the sentence that says so.

    INT8 is kept when it is at least as fast as FP32 (``speedup >= 1``, from the medians), or
    when the caller asks for it anyway (``keep_slower``: a device whose CPU differs from this one,
    say). When the fastest runs (``*_best_ms``, if given) rank the two the other way, the machine
    was too busy for a firm answer and the text says so: on a shared 2-core machine the medians
    of two small models swapped order from one minute to the next.

    Returns:
        dict: ``keep``, ``faster`` and ``text``, e.g. "INT8 12.9 ms vs FP32 6.2 ms (0.48x, 2
        threads): slower on this CPU, not written; --int8-keep-slower writes it anyway".
    """
    faster = speed["speedup"] >= 1.0
    keep = faster or keep_slower
    figures = (
        f"INT8 {_ms(speed['int8_ms'])} ms vs FP32 {_ms(speed['fp32_ms'])} ms "
        f"({speed['speedup']:.2f}x, {speed['threads']} thread{'s' * (speed['threads'] != 1)})"
    )
    if faster:
        outcome = "faster on this CPU, written"
    elif keep_slower:
        outcome = "slower on this CPU, written anyway (--int8-keep-slower)"
    else:
        outcome = "slower on this CPU, not written; --int8-keep-slower writes it anyway"
    text = f"{figures}: {outcome}"
    if "fp32_best_ms" in speed and (speed["fp32_best_ms"] >= speed["int8_best_ms"]) != faster:
        text += (
            f" (but the fastest runs, INT8 {_ms(speed['int8_best_ms'])} ms vs FP32 "
            f"{_ms(speed['fp32_best_ms'])} ms, say the opposite: the CPU is busy; export again "
            "on an idle machine for a firm answer)"
        )
    return {"keep": keep, "faster": faster, "text": text}


def settle_int8(candidate: str | Path, int8_path: str | Path, verdict: dict) -> Path | None:
    """Move the timed ``candidate`` file to ``int8_path`` if the verdict keeps it; else delete it,
    and delete an ``int8_path`` left by an earlier export (it belongs to another FP32 model).

    Returns:
        ``int8_path`` when written, else None.
    """
    candidate, int8_path = Path(candidate), Path(int8_path)
    if verdict["keep"]:
        os.replace(candidate, int8_path)  # same folder: atomic
        return int8_path
    candidate.unlink(missing_ok=True)
    int8_path.unlink(missing_ok=True)
    return None


def quantize_if_faster(
    fp32_path: str | Path,
    int8_path: str | Path,
    calibration: CalibrationDataReader,
    imgsz: int | tuple[int, int],
    threads: int = DEFAULT_THREADS,
    keep_slower: bool = False,
    runs: int = DEFAULT_RUNS,
) -> dict:
    """Quantize ``fp32_path`` (:func:`~edgevision.export.quantize.quantize_int8`) into a scratch
    file beside ``int8_path``, time it against FP32, and put it in place only if it is kept
    (:func:`int8_verdict`). A slower model never appears at ``int8_path``, even for a moment,
    and one left there by an earlier export is removed (the text says so).

    Args:
        calibration: an ``onnxruntime.quantization.CalibrationDataReader``
            (:class:`~edgevision.export.quantize.ImageCalibrationReader`).
        threads: the deployment's intra-op threads, for the timing.

    Returns:
        dict: ``path`` (str, or None when not written), ``speed`` (:func:`compare_speed`'s dict
        plus ``keep``, ``faster``, ``text``).
    """
    # On use: onnxruntime.quantization takes a while to import.
    from edgevision.export.quantize import quantize_int8

    int8_path = Path(int8_path)
    int8_path.parent.mkdir(parents=True, exist_ok=True)
    # A scratch folder beside the target: the final move stays on one file system (atomic).
    scratch = Path(tempfile.mkdtemp(prefix=f".{int8_path.stem}.", dir=int8_path.parent))
    earlier = int8_path.exists()
    try:
        candidate = quantize_int8(fp32_path, scratch / int8_path.name, calibration)
        speed = compare_speed(fp32_path, candidate, imgsz, threads, runs)
        verdict = int8_verdict(speed, keep_slower)
        written = settle_int8(candidate, int8_path, verdict)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if earlier and written is None:
        verdict["text"] += f"; removed {int8_path.name} of an earlier export"
    return {"path": str(written) if written else None, "speed": {**speed, **verdict}}


def _ms(milliseconds: float) -> str:
    """One decimal, two below 1 ms (a 0.4 ms model would read "0.4 vs 0.4")."""
    return f"{milliseconds:.2f}" if milliseconds < 1 else f"{milliseconds:.1f}"
