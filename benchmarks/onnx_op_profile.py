"""Where an ONNX model's time goes in ONNX Runtime: kernel milliseconds per operator type.

ONNX Runtime's profiler records every node's kernel time; this sums, per operator type, each
node's median over the timed runs (batch 1, random input), for several files side by side —
FP32 against its INT8 twin, say. Convs are split by shape (stem, depthwise, 1x1, grouped, kxk)
from the optimised graph ONNX Runtime actually runs. The sum leaves out the time between
kernels, so it reads a little under a wall-clock latency; on a shared machine it is the steadier
of the two.

    .venv/bin/python benchmarks/onnx_op_profile.py best.onnx best-int8.onnx --threads 1 2
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import tempfile
from pathlib import Path

import numpy as np
import onnx

CONV_OPS = ("Conv", "QLinearConv", "FusedConv", "NhwcFusedConv")


def conv_kind(node: onnx.NodeProto, initializers: dict[str, onnx.TensorProto]) -> str:
    """stem / dw / 1x1 / groupedN / kxk, from the weight's shape and the group attribute."""
    weight = initializers.get(node.input[3 if node.op_type == "QLinearConv" else 1])
    if weight is None:
        return "?"
    out_channels, in_per_group, kernel_h, kernel_w = weight.dims
    groups = next((a.i for a in node.attribute if a.name == "group"), 1)
    if groups > 1:
        return "dw" if in_per_group == 1 else f"grouped{groups}"
    if in_per_group == 3:
        return "stem"
    return "1x1" if (kernel_h, kernel_w) == (1, 1) else f"{kernel_h}x{kernel_w}"


def profile(path: str, threads: int, runs: int, scratch: Path) -> dict[str, tuple[float, int]]:
    """{operator type (convs by kind): (ms, node count)} for one file."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.enable_profiling = True
    options.profile_file_prefix = str(scratch / "profile")
    optimised = scratch / f"{Path(path).stem}.optimised.onnx"
    options.optimized_model_filepath = str(optimised)
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    input_meta = session.get_inputs()[0]
    shape = [dim if isinstance(dim, int) else 1 for dim in input_meta.shape]
    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    for _ in range(10 + runs):
        session.run(None, {input_meta.name: image})
    events = json.loads(Path(session.end_profiling()).read_text())
    durations: dict[str, list[float]] = collections.defaultdict(list)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            durations[event["name"].removesuffix("_kernel_time")].append(event["dur"])
    graph = onnx.load(str(optimised)).graph
    initializers = {init.name: init for init in graph.initializer}
    totals: dict[str, list] = collections.defaultdict(lambda: [0.0, 0])
    for node in graph.node:
        if node.name not in durations:
            continue
        kind = node.op_type
        if node.op_type in CONV_OPS:
            kind = f"{node.op_type}:{conv_kind(node, initializers)}"
        totals[kind][0] += statistics.median(durations[node.name][-runs:]) / 1000
        totals[kind][1] += 1
    return {kind: (ms, count) for kind, (ms, count) in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--threads", type=int, nargs="+", default=[2])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    for threads in args.threads:
        with tempfile.TemporaryDirectory() as scratch:
            tables = [profile(path, threads, args.runs, Path(scratch)) for path in args.files]
        kinds = sorted(
            set().union(*tables), key=lambda kind: -max(t.get(kind, (0, 0))[0] for t in tables)
        )
        names = [Path(path).name for path in args.files]
        print(f"\n{threads} thread(s): kernel ms (nodes)")
        print(f"| op | {' | '.join(names)} |\n|---|{'---:|' * len(names)}")
        for kind in kinds:
            cells = [f"{t[kind][0]:.3f} ({t[kind][1]})" if kind in t else "—" for t in tables]
            print(f"| {kind} | {' | '.join(cells)} |")
        totals = [f"**{sum(ms for ms, _ in t.values()):.2f}**" for t in tables]
        print(f"| total | {' | '.join(totals)} |")


if __name__ == "__main__":
    main()
