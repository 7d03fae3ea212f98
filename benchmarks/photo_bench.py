"""Detection on the photo benchmark set (``benchmarks/photo_set.py``), trained the way a user
types it, side by side with Ultralytics YOLO11n, both judged by the same pycocotools code on the
test split against its clean labels.

Each invocation trains one or more rows and appends them to ``--rows`` (JSON lines); ``--table``
prints every row recorded so far. Rows:

- ours: ``edgevision train --data SET --model nano-s --imgsz 320 --epochs 20 --batch B`` with
  every other setting at its default (``--batch 8 16 32 64`` runs the batch sweep of the
  default-recipe rule; ``--time M`` trains M minutes instead of the epochs: ``--epochs 1000
  --time M``; ``--set KEY=VALUE`` changes one training option for an experiment row);
- ``--peer``: YOLO11n from ``yolo11n.yaml`` (no weights) on the same images converted by
  ``edgevision data convert`` (dirty labels, as the user has them), ``epochs=20 imgsz=320
  batch=32``, Ultralytics' defaults otherwise (``--peer-minutes M`` gives it M minutes instead).

Both are then run on the test images (conf 0.001, each with its own NMS defaults: ours IoU 0.6,
Ultralytics' val IoU 0.7, 300 detections) and scored by pycocotools against
``test_clean.json``: mAP50-95, mAP50, AP_small and per-class AP. Wall-clock is the training
call's (validation every epoch included for both); images/s = epochs x train images / seconds.
``--latency`` times every recorded row's ONNX file in one ONNX Runtime process (batch 1, 2
threads; the models take turns in 10 blocks of 20 warm calls, median).

Ultralytics needs torchvision, so it lives in its own virtual environment:
    python3 -m venv /work/peer-venv
    /work/peer-venv/bin/pip install torch==2.14.1 torchvision==0.29.1
    /work/peer-venv/bin/pip install ultralytics onnx onnxslim
Run:
    .venv/bin/python benchmarks/photo_set.py --out runs/photo_set
    .venv/bin/python benchmarks/photo_bench.py --data runs/photo_set --batch 8 16 32 64
    .venv/bin/python benchmarks/photo_bench.py --data runs/photo_set --peer
    .venv/bin/python benchmarks/photo_bench.py --data runs/photo_set --latency --table
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from onnx_latency import alternating_latency  # benchmarks/, the script's folder
from peer_driver import experiment_option, run_peer_driver  # benchmarks/, the script's folder

PEER_DRIVER = r"""
import json, sys, time
from pathlib import Path
from ultralytics import YOLO
data, imgsz, epochs, batch, minutes, project, name, images, out = sys.argv[1:10]
options = dict(data=data, imgsz=int(imgsz), epochs=int(epochs), batch=int(batch), workers=2, device="cpu",
               project=project, name=name, exist_ok=True, plots=False, amp=False, verbose=False, seed=0)
if float(minutes) > 0:
    options["time"] = float(minutes) / 60
model = YOLO("yolo11n.yaml")
start = time.perf_counter()
model.train(**options)
seconds = time.perf_counter() - start
best = YOLO(f"{project}/{name}/weights/best.pt")
rows = []
for path in sorted(Path(images).iterdir()):
    r = best.predict(str(path), imgsz=int(imgsz), conf=0.001, iou=0.7, max_det=300, device="cpu", verbose=False)[0]
    rows.append({"file": path.name, "boxes": r.boxes.xyxy.tolist(), "scores": r.boxes.conf.tolist(),
                 "classes": r.boxes.cls.int().tolist()})
Path(out).write_text(json.dumps(rows))
onnx = best.export(format="onnx", imgsz=int(imgsz), simplify=False, dynamic=False)
done = len(open(f"{project}/{name}/results.csv").read().strip().splitlines()) - 1
print("PEER_RESULT " + json.dumps({"epochs": done, "train_seconds": seconds, "onnx": str(onnx),
                                    "names": [best.names[k] for k in sorted(best.names)]}))
"""


def test_records(data: Path):
    """The test split with its clean labels (what both models are judged against)."""
    from edgevision.data.formats import load_dataset

    records, _ = load_dataset(data / "test_clean.json", split="test")
    return records


def score(records, detections: list[dict]) -> dict:
    """pycocotools on the clean test labels: the row's accuracy columns."""
    from edgevision.eval.coco import coco_evaluate

    coco = coco_evaluate(records, detections, backend="pycocotools")
    per_class = {
        name: round(float(ap), 4)
        for name, ap in zip(records.class_names, coco["per_class_ap50_95"], strict=True)
    }
    keys = ("mAP50-95", "mAP50", "mAP_small", "mAP_medium", "mAP_large")
    return {**{k: round(coco[k], 4) for k in keys}, "per_class_ap50_95": per_class}


TIMED_EPOCH_CAP = 1000  # far beyond what any --time row reaches on a CPU


def run_ours(args, batch: int, records) -> dict:
    from edgevision import api
    from edgevision.tasks.base import ValOptions
    from edgevision.tasks.detect.val import model_detections
    from edgevision.tasks.load import load_model

    extra = dict(experiment_option(text) for text in args.set)
    name = f"{args.model}-b{batch}" + (f"-{args.time:g}min" if args.time else "")
    name += "".join(f"-{k}={v}" for k, v in extra.items())
    # `--time` is a budget and `--epochs` still applies (the trainer's rule), so a timed row
    # needs an epoch cap the clock reaches first; a 46.5-minute row once stopped at epoch 20.
    epochs = TIMED_EPOCH_CAP if args.time else args.epochs
    flags = dict(imgsz=args.imgsz, epochs=epochs, batch=batch, time=args.time, **extra)
    start = time.perf_counter()
    summary = api.train(
        data=str(args.data), model=args.model, **flags, project=str(args.out), name=name,
        exist_ok=True, plots=False, verbose=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    best = Path(summary["run_dir"]) / "weights" / "best.pt"
    evaluated, found = model_detections(load_model(best), records, ValOptions(workers=0))
    assert len(evaluated) == len(records)
    onnx = api.export(str(best), imgsz=args.imgsz, verbose=False)["path"]
    return {
        "row": name,
        "command": f"edgevision train --model {args.model} "
        # every flag except a --time left at 0; an experiment's 0 (``--set mosaic=0``) is a flag
        + " ".join(
            f"--{k.replace('_', '-')} {_flag_value(v)}" for k, v in flags.items() if v or k in extra
        ),
        "epochs": summary["epochs"],
        "optimizer_steps": summary["optimizer_steps"],
        "train_seconds": round(seconds, 1),
        "onnx": str(onnx),
        **score(records, found),
    }


def _flag_value(value) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def run_peer(args, records) -> dict:
    from edgevision import api

    yolo = args.out / "yolo_format"
    if not (yolo / "data.yaml").is_file():
        api.data_convert(str(args.data), "yolo", str(yolo))
    name = "yolo11n" + (f"-{args.peer_minutes:g}min" if args.peer_minutes else "")
    predictions = args.out / f"{name}_test_predictions.json"
    images = records.records[0].image_path.parent
    arguments = [str(yolo / "data.yaml"), str(args.imgsz), str(args.epochs), "32"]
    arguments += [str(args.peer_minutes), str(args.out), name, str(images), str(predictions)]
    result = run_peer_driver(args.peer_python, PEER_DRIVER, arguments)
    if result["names"] != list(records.class_names):
        raise SystemExit(f"class order differs: {result['names']} vs {records.class_names}")
    by_name = {row["file"]: row for row in json.loads(predictions.read_text())}
    found = [_arrays(by_name[r.image_path.name]) for r in records.records]
    clock = (
        f"time={args.peer_minutes / 60:.3f} (h)" if args.peer_minutes else f"epochs={args.epochs}"
    )
    return {
        "row": name,
        "command": f"yolo train model=yolo11n.yaml imgsz={args.imgsz} {clock} batch=32",
        "epochs": result["epochs"],
        "train_seconds": round(result["train_seconds"], 1),
        "onnx": result["onnx"],
        **score(records, found),
    }


def _arrays(row: dict) -> dict:
    return {
        "boxes": np.asarray(row["boxes"], dtype=np.float64).reshape(-1, 4),
        "scores": np.asarray(row["scores"], dtype=np.float64),
        "classes": np.asarray(row["classes"], dtype=np.int64),
    }


def print_table(rows: list[dict], n_train: int) -> None:
    print("| row | command | epochs | train s | images/s | mAP50-95 | mAP50 | AP_small | ONNX ms |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        speed = row["epochs"] * n_train / row["train_seconds"]
        print(
            f"| {row['row']} | `{row['command']}` | {row['epochs']} | {row['train_seconds']:.0f} | "
            f"{speed:.1f} | {row['mAP50-95']:.3f} | {row['mAP50']:.3f} | {row['mAP_small']:.3f} | "
            f"{row.get('onnx_ms', '–')} |"
        )
    for row in rows:
        print(row["row"], "per-class AP50-95:", json.dumps(row["per_class_ap50_95"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("runs/photo_set"))
    parser.add_argument("--out", type=Path, default=Path("runs/photo_bench"))
    parser.add_argument("--rows", type=Path, default=None, help="default: OUT/rows.jsonl")
    parser.add_argument("--model", default="nano-s")
    parser.add_argument("--batch", type=int, nargs="*", default=[], help="our rows to train")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--time", type=float, default=0.0, help="our rows: minutes instead")
    parser.add_argument("--set", action="append", default=[], help="our rows: KEY=VALUE option")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--peer", action="store_true", help="train the YOLO11n row")
    parser.add_argument("--peer-minutes", type=float, default=0.0)
    parser.add_argument("--peer-python", default="/work/peer-venv/bin/python")
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    args.data, args.out = args.data.resolve(), args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    rows_file = args.rows or args.out / "rows.jsonl"
    records = test_records(args.data)
    n_train = len((args.data / "ImageSets" / "Main" / "train.txt").read_text().split())
    jobs = [lambda b=b: run_ours(args, b, records) for b in args.batch]
    jobs += [lambda: run_peer(args, records)] if args.peer else []
    for job in jobs:
        load, started = os.getloadavg()[0], time.strftime("%Y-%m-%d %H:%M")
        row = {**job(), "load_at_start": round(load, 2), "started": started}
        with rows_file.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps({k: v for k, v in row.items() if k != "per_class_ap50_95"}))
    lines = rows_file.read_text().splitlines() if rows_file.is_file() else []
    rows = list({row["row"]: row for row in map(json.loads, lines)}.values())  # latest per name
    if args.latency and rows:
        print(f"latency pass, load {os.getloadavg()[0]:.2f}")
        measured = alternating_latency({row["row"]: row["onnx"] for row in rows}, args.imgsz)
        for row in rows:
            row["onnx_ms"] = round(measured[row["row"]], 2)
    if args.table:
        print_table(rows, n_train)


if __name__ == "__main__":
    main()
