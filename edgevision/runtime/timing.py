"""Wall-clock timing of calls and of ONNX Runtime sessions (numpy only: usable on a device)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


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
