"""ONNX Runtime latency of several exported models, timed so that they can be compared."""

from __future__ import annotations

import time

import numpy as np


def alternating_latency(
    paths: dict[str, str], imgsz: int, blocks: int = 10, runs: int = 20
) -> dict[str, float]:
    """Median ms per ONNX file, batch 1, 2 threads. The models take turns in blocks of ``runs``
    calls (one uncounted call first), so a load change on a shared machine hits all alike while
    each still runs warm, as a deployed model does. Calls interleaved one by one run cold and
    read 2x slower; files timed one after the other drift with the load."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
    sessions = {}
    for name, path in paths.items():
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        sessions[name] = (session, session.get_inputs()[0].name)
    image = np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(blocks):
        for name, (session, input_name) in sessions.items():
            session.run(None, {input_name: image})
            for _ in range(runs):
                start = time.perf_counter()
                session.run(None, {input_name: image})
                times[name].append((time.perf_counter() - start) * 1000)
    return {name: float(np.median(t)) for name, t in times.items()}
