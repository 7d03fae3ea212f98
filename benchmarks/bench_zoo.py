"""One table for the whole detection zoo: size, speed and accuracy after the same CPU minutes.

Run:  .venv/bin/python benchmarks/bench_zoo.py [--minutes 10] [--models nano-s rep-n ...]
      [--out runs/bench_zoo] [--threads 2]
(needs edgevision importable: the editable install `make` does, or PYTHONPATH=.)

Per model, one row:

- params and FLOPs at 320 px and 80 classes (``edgevision models``' basis; FLOPs = 2 x MACs);
- ONNX Runtime latency, FP32 and INT8 (calibrated on the training images), batch 1, 320 px,
  ``--threads`` threads, median of ``edgevision bench``'s runs, on the BN-fused (and for rep-*
  re-parameterised) graph that ``export`` writes; rep-* also unfused, to show what fusion buys;
- training images/s end to end (loader, forward, backward, optimiser, the periodic val), from the
  run's epochs and wall-clock;
- COCO mAP50-95 / mAP50 (pycocotools-exact) and VOC2007 11-point mAP50 on the demo's val split,
  after ``--minutes`` of training with the demo's recipe (batch 4, no accumulation, flat LR after
  warm-up, no mosaic, images cached in RAM), the same for every model.

Models train one after another, never side by side, so each gets the same machine; the machine's
load is printed with the table. Each model's run folder stays under ``--out``.

``--latency-only`` measures the speed columns alone, every model in turn, ``--rounds`` times
(the median per model is kept): a shared machine's load changes within minutes, so take the
latency from a quiet pass like this one and the accuracy from the training pass.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from edgevision import api
from edgevision.data.synth.detect import synthesize_detection
from edgevision.models.zoo import model_names

IMGSZ = 320


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _train(name: str, data: Path, minutes: float, out: Path) -> dict:
    """The demo's recipe (see ``edgevision/demo.py``) for ``minutes``; the same for every model."""
    return api.train(
        data=str(data), model=name, imgsz=IMGSZ, epochs=300, batch=4, nbs=4, lr0=0.002, lrf=1.0,
        mosaic=0.0, close_mosaic=0, time=minutes, workers=2, cache="ram", project=str(out), name=name,
        exist_ok=True, val_interval=5, plots=False, verbose=False,
    )  # fmt: skip


def _unfused_latency_ms(name: str, threads: int) -> float:
    """ONNX Runtime FP32 latency of a rep-* graph exported WITHOUT re-parameterisation (its three
    branches per block as trained), to compare with the fused figure. BN is not folded here
    (``fuse_conv_bn`` re-parameterises too); ONNX Runtime folds Conv + BN itself when it loads
    the graph."""
    import torch

    from edgevision.models.zoo import build_model
    from edgevision.runtime.session import open_session
    from edgevision.runtime.timing import time_session

    model = build_model(name, 80).eval()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "unfused.onnx"
        torch.onnx.export(
            model, (torch.rand(1, 3, IMGSZ, IMGSZ),), str(path), opset_version=17, dynamo=False,
            input_names=["images"], output_names=["raw"],
        )  # fmt: skip
        return time_session(open_session(path, threads=threads), (IMGSZ, IMGSZ), 100, 10)[
            "median_ms"
        ]


def bench_model(name: str, data: Path, args: argparse.Namespace) -> dict:
    row: dict = {"model": name, "load_before": _load()}
    speed = api.bench(model=name, imgsz=IMGSZ, threads=args.threads, data=str(data), pytorch=False)
    row["params_M"] = speed["params"] / 1e6
    row["gflops"] = speed["flops"] / 1e9
    row["onnx_fp32_ms"] = speed["latency"]["onnx_fp32"]["median_ms"]
    row["onnx_int8_ms"] = speed["latency"]["onnx_int8"]["median_ms"]
    if name.startswith("rep-"):
        row["onnx_fp32_unfused_ms"] = _unfused_latency_ms(name, args.threads)
    start = time.perf_counter()
    summary = _train(name, data, args.minutes, args.out)
    seconds = time.perf_counter() - start
    row["epochs"] = summary["epochs"]
    row["train_minutes"] = summary["minutes"]
    row["train_images_per_s"] = summary["epochs"] * args.n_train / max(seconds, 1e-9)
    best = Path(summary["run_dir"]) / "weights" / "best.pt"
    metrics = api.evaluate(
        str(best), str(data), imgsz=IMGSZ, project=str(args.out), name=f"{name}-val",
        exist_ok=True, plots=False, save_json=False,
    )["metrics"]  # fmt: skip
    row["mAP50-95"], row["mAP50"] = metrics["mAP50-95"], metrics["mAP50"]
    row["voc07_mAP50"] = metrics["voc07_mAP50"]
    row["load_after"] = _load()
    return row


def latency_rows(models: list[str], data: Path, args: argparse.Namespace) -> list[dict]:
    """Speed columns only, ``args.rounds`` passes over all models (interleaved), medians."""
    runs: dict[str, list[dict]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name in models:
            speed = api.bench(
                model=name, imgsz=IMGSZ, threads=args.threads, data=str(data), pytorch=False
            )
            run = {
                "fp32": speed["latency"]["onnx_fp32"]["median_ms"],
                "int8": speed["latency"]["onnx_int8"]["median_ms"],
            }
            if name.startswith("rep-"):
                run["unfused"] = _unfused_latency_ms(name, args.threads)
            runs[name].append(run)
            params, gflops = speed["params"] / 1e6, speed["flops"] / 1e9
            runs[name][-1].update(params_M=params, gflops=gflops)
    rows = []
    for name, measured in runs.items():
        row = {"model": name, "params_M": measured[0]["params_M"], "gflops": measured[0]["gflops"]}
        row["onnx_fp32_ms"] = statistics.median(m["fp32"] for m in measured)
        row["onnx_int8_ms"] = statistics.median(m["int8"] for m in measured)
        if "unfused" in measured[0]:
            row["onnx_fp32_unfused_ms"] = statistics.median(m["unfused"] for m in measured)
        rows.append(row)
    return rows


def _fp32_cell(r: dict) -> str:
    fp32 = f"{r['onnx_fp32_ms']:.2f}"
    if "onnx_fp32_unfused_ms" in r:
        fp32 += f" (unfused {r['onnx_fp32_unfused_ms']:.2f})"
    return fp32


def format_latency(rows: list[dict]) -> str:
    lines = [
        "| model | params (M) | GFLOPs | ORT FP32 ms | ORT INT8 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        fp32 = _fp32_cell(r)
        lines.append(
            f"| {r['model']} | {r['params_M']:.2f} | {r['gflops']:.2f} | {fp32} | "
            f"{r['onnx_int8_ms']:.2f} |"
        )
    return "\n".join(lines)


def format_table(rows: list[dict], minutes: float) -> str:
    lines = [
        f"| model | params (M) | GFLOPs | ORT FP32 ms | ORT INT8 ms | train img/s | epochs in "
        f"{minutes:g} min | mAP50-95 | mAP50 | VOC07 mAP50 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        fp32 = _fp32_cell(r)
        lines.append(
            f"| {r['model']} | {r['params_M']:.2f} | {r['gflops']:.2f} | {fp32} | "
            f"{r['onnx_int8_ms']:.2f} | {r['train_images_per_s']:.1f} | {r['epochs']} | "
            f"{r['mAP50-95']:.3f} | {r['mAP50']:.3f} | {r['voc07_mAP50']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=model_names("detect"))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-train", type=int, default=600)
    parser.add_argument("--n-val", type=int, default=150)
    parser.add_argument("--out", type=Path, default=Path("runs/bench_zoo"))
    parser.add_argument("--latency-only", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = args.out / "data"
    if not (data / "ImageSets/Main/val.txt").is_file():
        synthesize_detection(data, n_train=args.n_train, n_val=args.n_val, seed=0, force=True)
    print(f"load {_load()}", flush=True)
    if args.latency_only:
        rows = latency_rows(args.models, data, args)
        (args.out / "latency.json").write_text(json.dumps(rows, indent=1))
        print(format_latency(rows))
        print(f"load {_load()}")
        return
    rows = []
    for name in args.models:
        rows.append(bench_model(name, data, args))
        print(json.dumps(rows[-1]), flush=True)
        (args.out / "zoo.json").write_text(json.dumps(rows, indent=1))
    print(format_table(rows, args.minutes))


if __name__ == "__main__":
    main()
