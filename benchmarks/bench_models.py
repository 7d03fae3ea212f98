"""Speed table for every zoo detector: params, FLOPs, CPU latency (PyTorch, ONNX Runtime), training
throughput.

Run:  .venv/bin/python benchmarks/bench_models.py [--models nano-s yolo-n] [--imgsz 320]
      [--threads 2] [--clock wall|cpu]
(needs edgevision importable: the editable install `make` does, or PYTHONPATH=.)

Latency is batch 1 on a BN-fused eval model. Training throughput is forward + backward of a dummy
loss (``raw.float().mean()``) on a fresh train-mode model at ``--train-batch`` images of
``--imgsz``, in NCHW and in channels_last (NHWC) layout. FLOPs are 2 x MACs
(``torch.utils.flop_counter``: convs and matmuls only).

Two clocks:

- ``--clock wall`` (default): wall time with ``--threads`` intra-op threads in both runtimes; cells
  are ``best (median)``. This is what a user sees on an idle machine, and it is badly inflated
  when other processes compete for the cores.
- ``--clock cpu``: one thread, process CPU time (``time.process_time``). Time the process spends
  waiting for a core is not counted, so the figure holds up on a shared machine; it estimates the
  single-core latency (2 threads are at best ~2x faster). Cells are medians.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from edgevision.models.blocks import fuse_conv_bn
from edgevision.models.zoo import build_model, count_flops, count_parameters, model_names


def _time_ms(
    step: Callable[[], object], clock: Callable[[], float], warmup: int, runs: int, seconds: float
) -> tuple[float, float]:
    """(median, best) time of ``step`` in ms by ``clock``: ``warmup`` untimed calls, then at least
    ``runs`` timed calls and at least ``seconds`` of wall time. The best run approximates an
    idle CPU when other processes compete for it; the median is the typical figure."""
    for _ in range(warmup):
        step()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < runs or time.perf_counter() - start < seconds:
        t0 = clock()
        step()
        times.append((clock() - t0) * 1000)
    return statistics.median(times), min(times)


def torch_latency_ms(model: torch.nn.Module, imgsz: int, clock) -> tuple[float, float]:
    images = torch.rand(1, 3, imgsz, imgsz)
    with torch.inference_mode():
        return _time_ms(lambda: model(images), clock, warmup=10, runs=50, seconds=6.0)


def onnx_latency_ms(model: torch.nn.Module, imgsz: int, threads: int, clock) -> tuple[float, float]:
    import onnxruntime as ort

    images = torch.rand(1, 3, imgsz, imgsz)
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        path = Path(folder) / "model.onnx"
        torch.onnx.export(
            model, (images,), str(path), opset_version=17, dynamo=False,
            input_names=["images"], output_names=["raw"],
        )  # fmt: skip
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {"images": images.numpy()}
    return _time_ms(lambda: session.run(None, feed), clock, warmup=10, runs=50, seconds=6.0)


def train_images_per_second(
    name: str, batch: int, imgsz: int, channels_last: bool, clock, seconds: float
) -> tuple[float, float]:
    """(median, best) forward + backward images/s of a fresh model in train mode.

    ``channels_last`` runs model and images in NHWC, the layout oneDNN's CPU convolutions (and
    especially their depthwise backward) prefer.
    """
    model = build_model(name, num_classes=80).train()
    images = torch.rand(batch, 3, imgsz, imgsz)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(images).float().mean().backward()

    median, best = _time_ms(step, clock, warmup=1, runs=2, seconds=seconds)
    return batch * 1000 / median, batch * 1000 / best


def bench(name: str, args: argparse.Namespace) -> dict:
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    model = build_model(name, num_classes=80).eval()
    row = {
        "params_m": count_parameters(model) / 1e6,
        "gflops": count_flops(model, args.imgsz) / 1e9,
    }
    fused = fuse_conv_bn(copy.deepcopy(model))
    row["torch_ms"] = torch_latency_ms(fused, args.imgsz, clock)
    row["onnx_ms"] = onnx_latency_ms(fused, args.imgsz, args.threads, clock)
    train_seconds = 15.0 if args.clock == "wall" else 0.0
    for key, channels_last in (("train_nchw", False), ("train_nhwc", True)):
        row[key] = train_images_per_second(
            name, args.train_batch, args.imgsz, channels_last, clock, train_seconds
        )
    return row


def _format_row(name: str, row: dict, clock: str) -> str:
    def cell(pair: tuple[float, float], digits: int) -> str:
        median, best = pair
        return (
            f"{median:.{digits}f}" if clock == "cpu" else f"{best:.{digits}f} ({median:.{digits}f})"
        )

    cells = [f"{row['params_m']:.3f}", f"{row['gflops']:.3f}"]
    cells += [cell(row["torch_ms"], 2), cell(row["onnx_ms"], 2)]
    cells += [cell(row["train_nchw"], 1), cell(row["train_nhwc"], 1)]
    return f"| {name} | {' | '.join(cells)} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=model_names("detect"))
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-batch", type=int, default=32)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args()
    if args.clock == "cpu":
        args.threads = 1  # CPU time of several threads would count their spin-waiting too
    torch.set_num_threads(args.threads)
    print(
        f"imgsz {args.imgsz}, {args.threads} thread(s), {args.clock} clock, torch "
        f"{torch.__version__}, 80 classes, train batch {args.train_batch}\n"
    )
    print(
        "| model | params (M) | GFLOPs | torch ms | ORT ms | train img/s NCHW "
        "| train img/s channels_last |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in args.models:
        print(_format_row(name, bench(name, args), args.clock), flush=True)
    legend = "median" if args.clock == "cpu" else "best (median)"
    print(f"\ncells: {legend} of the timed runs")


if __name__ == "__main__":
    main()
