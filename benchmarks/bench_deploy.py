"""Deployment speed table: zoo detectors at several sizes, ONNX Runtime FP32 vs INT8 (batch 1).

Run:  .venv/bin/python benchmarks/bench_deploy.py [--models nano-s nano-m yolo-n]
      [--sizes 320 416 640] [--threads 2] [--runs 100] [--pytorch]
      [--ultralytics-python /work/peer-venv/bin/python] [--out benchmarks/out/deploy.md]
      [--refresh-peak]

Each cell comes from :func:`edgevision.bench.bench` (random weights, 80 classes, BN fused for
ONNX, INT8 calibrated on random images: fine for speed, meaningless for accuracy). With
``--ultralytics-python`` the same table gets a YOLO11n row per size, exported by that
environment's Ultralytics (random weights from ``yolo11n.yaml``, no download) and timed here by
the same ONNX Runtime code, so the comparison is one machine at one time. FLOPs are 2 x MACs.
On a shared machine medians are inflated; the ``best`` column is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from edgevision.bench import bench, cpu_name, peak_flops
from edgevision.runtime.session import open_session
from edgevision.runtime.timing import time_session

ULTRALYTICS_EXPORT = """
import json, sys
from ultralytics import YOLO
from ultralytics.utils.torch_utils import get_flops
model = YOLO("yolo11n.yaml")
imgsz = int(sys.argv[1])
params = sum(p.numel() for p in model.model.parameters())
gflops = get_flops(model.model, imgsz)
path = model.export(format="onnx", imgsz=imgsz, simplify=False, dynamic=False, opset=17)
print(json.dumps({"path": str(path), "params": params, "gflops": gflops}))
"""

HEADER = (
    "| model | imgsz | params (M) | GFLOPs | PyTorch ms | ORT FP32 ms median / p90 / best "
    "| ORT INT8 ms median / p90 / best | INT8 speed-up | FP32 % of peak |"
)


def _cell(timing: dict | None) -> str:
    if timing is None:
        return "-"
    return f"{timing['median_ms']:.2f} / {timing['p90_ms']:.2f} / {timing['best_ms']:.2f}"


def zoo_row(name: str, imgsz: int, args) -> str:
    result = bench(
        name,
        imgsz=imgsz,
        threads=args.threads,
        runs=args.runs,
        warmup=args.warmup,
        pytorch=args.pytorch,
    )
    latency = result["latency"]
    fp32, int8 = latency["onnx_fp32"], latency["onnx_int8"]
    torch_ms = f"{latency['pytorch']['median_ms']:.2f}" if "pytorch" in latency else "-"
    return (
        f"| {name} | {imgsz} | {result['params'] / 1e6:.2f} | {result['flops'] / 1e9:.2f} | "
        f"{torch_ms} | {_cell(fp32)} | {_cell(int8)} | "
        f"{fp32['median_ms'] / int8['median_ms']:.2f}x | {result['peak_fraction']['onnx_fp32']:.0%} |"
    )


def ultralytics_row(python: str, imgsz: int, args, peak: float) -> str:
    with tempfile.TemporaryDirectory() as scratch:
        completed = subprocess.run(
            [python, "-c", ULTRALYTICS_EXPORT, str(imgsz)],
            cwd=scratch,
            capture_output=True,
            text=True,
            check=True,
        )
        exported = json.loads(completed.stdout.strip().splitlines()[-1])
        path = Path(scratch) / exported["path"]
        timing = time_session(
            open_session(path, threads=args.threads), (imgsz, imgsz), args.runs, args.warmup
        )
    fraction = exported["gflops"] * 1e9 / (timing["median_ms"] / 1000) / peak
    return (
        f"| YOLO11n (Ultralytics) | {imgsz} | {exported['params'] / 1e6:.2f} | "
        f"{exported['gflops']:.2f} | - | {_cell(timing)} | - | - | {fraction:.0%} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["nano-s", "nano-m", "yolo-n"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[320, 416, 640])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--pytorch", action="store_true", help="also time PyTorch eager")
    parser.add_argument("--ultralytics-python", default="", help="python of an Ultralytics env")
    parser.add_argument("--out", default="", help="also write the table to this file")
    parser.add_argument("--refresh-peak", action="store_true", help="re-measure the SGEMM peak")
    args = parser.parse_args()

    peak = peak_flops(args.threads, refresh=args.refresh_peak)
    lines = [
        f"CPU {cpu_name()}, {args.threads} threads, SGEMM peak {peak / 1e9:.1f} GFLOP/s, "
        f"{args.runs} runs after {args.warmup} warm-up",
        "",
        HEADER,
        "|---" * 9 + "|",
    ]
    print("\n".join(lines), flush=True)
    for imgsz in args.sizes:
        rows = [zoo_row(name, imgsz, args) for name in args.models]
        if args.ultralytics_python:
            rows.append(ultralytics_row(args.ultralytics_python, imgsz, args, peak))
        print("\n".join(rows), flush=True)
        lines += rows
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
