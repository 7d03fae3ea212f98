"""Side by side, in one run: edgevision nano-s-pose vs Ultralytics YOLO11n-pose (from its yaml).

Both train on the same synthetic pose data (ours, K keypoints, converted to YOLO-pose by
`edgevision data convert`; by default the pose demo's figures, ``--figures full`` for the full
task of ``data synth --task pose``), at the same image size and the same wall-clock budget on this
machine, each with its own default recipe (ours: the demo's; Ultralytics: its defaults, batch
16). Both are then judged by the same code: their predictions on the val images (conf 0.001)
are scored by pycocotools' keypoint evaluation (``edgevision.eval.keypoints``, backend
pycocotools) at sigma 0.05 for every point, 0.1, and the data's sigmas. Both are exported to
ONNX at the same size and timed in one ONNX Runtime process (batch 1, 2 threads, median).

Ultralytics needs torchvision, so it lives in its own virtual environment:
    python3 -m venv /work/peer-venv
    /work/peer-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 && /work/peer-venv/bin/pip install ultralytics onnx
Run:
    .venv/bin/python benchmarks/peer_pose.py --minutes 7.5 --imgsz 320 --peer-python /work/peer-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
from onnx_latency import alternating_latency  # benchmarks/, the script's folder
from peer_driver import run_peer_driver  # benchmarks/, the script's folder

PEER_DRIVER = r"""
import json, sys, time
from pathlib import Path
from ultralytics import YOLO
data, imgsz, minutes, project, images, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
model = YOLO("yolo11n-pose.yaml")
start = time.perf_counter()
model.train(data=data, imgsz=imgsz, epochs=1000, time=minutes / 60, workers=2, device="cpu",
            project=project, name="yolo11n-pose", exist_ok=True, plots=False, amp=False, verbose=False, seed=0)
seconds = time.perf_counter() - start
best = YOLO(f"{project}/yolo11n-pose/weights/best.pt")
rows = []
for path in sorted(Path(images).iterdir()):
    r = best.predict(str(path), imgsz=imgsz, conf=0.001, iou=0.6, max_det=300, device="cpu", verbose=False)[0]
    rows.append({"file": path.name, "boxes": r.boxes.xyxy.tolist(), "scores": r.boxes.conf.tolist(),
                 "classes": r.boxes.cls.int().tolist(), "keypoints": r.keypoints.data.tolist()})
Path(out).write_text(json.dumps(rows))
onnx = best.export(format="onnx", imgsz=imgsz, simplify=False, dynamic=False)
epochs = len(open(f"{project}/yolo11n-pose/results.csv").read().strip().splitlines()) - 1
print("PEER_RESULT " + json.dumps({"epochs": epochs, "train_seconds": seconds, "onnx": str(onnx)}))
"""


def run_peer(args, data_yaml: Path, images: Path, out: Path) -> tuple[dict, list[dict]]:
    predictions = out / "peer_predictions.json"
    arguments = [str(data_yaml), str(args.imgsz), str(args.minutes), str(out / "runs")]
    arguments += [str(images), str(predictions)]
    result = run_peer_driver(args.peer_python, PEER_DRIVER, arguments)
    return result, json.loads(predictions.read_text())


def run_ours(data: Path, args, out: Path) -> dict:
    from edgevision import api

    start = time.perf_counter()
    summary = api.train(
        data=str(data), model="nano-s-pose", imgsz=args.imgsz, epochs=1000, batch=4, nbs=4,
        lr0=0.002, lrf=1.0, mosaic=0.0, close_mosaic=0, time=args.minutes, workers=2, cache="ram",
        project=str(out / "runs"), name="nano-s-pose", exist_ok=True, val_interval=5,
        verbose=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    best = Path(summary["run_dir"]) / "weights" / "best.pt"
    onnx = api.export(str(best), imgsz=args.imgsz, verbose=False)["path"]
    return {"epochs": summary["epochs"], "train_seconds": seconds, "best": best, "onnx": onnx}


def our_detections(best: Path, record_set) -> list[dict]:
    from edgevision.tasks.base import ValOptions
    from edgevision.tasks.detect.val import model_detections
    from edgevision.tasks.load import load_model

    evaluated, found = model_detections(load_model(best), record_set, ValOptions(workers=0))
    assert len(evaluated) == len(record_set)
    return found


def peer_detections(rows: list[dict], record_set) -> list[dict]:
    by_name = {row["file"]: row for row in rows}
    found = []
    for record in record_set.records:
        row = by_name[record.image_path.name]
        found.append(
            {
                "boxes": np.asarray(row["boxes"], dtype=np.float64).reshape(-1, 4),
                "scores": np.asarray(row["scores"], dtype=np.float64),
                "classes": np.asarray(row["classes"], dtype=np.int64),
                "keypoints": np.asarray(row["keypoints"], dtype=np.float64),
            }
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=7.5, help="training budget for each")
    parser.add_argument(
        "--figures", choices=("demo", "full"), default="demo",
        help="demo: the pose demo's figures (DEMO_FIGURES); full: data synth --task pose's",
    )  # fmt: skip
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--num-keypoints", type=int, default=5)
    parser.add_argument("--n-train", type=int, default=600)
    parser.add_argument("--n-val", type=int, default=150)
    parser.add_argument("--peer-python", default="/work/peer-venv/bin/python")
    parser.add_argument("--out", default="benchmarks/out/peer_pose")
    parser.add_argument("--json", default="")
    parser.add_argument(
        "--latency-only", nargs=2, metavar=("OURS_ONNX", "PEER_ONNX"),
        help="only time two exported files (e.g. a finished run's, on a quiet machine)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.latency_only:
        print(f"load average {os.getloadavg()[0]:.2f}")
        files = dict(zip(("nano-s-pose", "YOLO11n-pose"), args.latency_only, strict=True))
        measured = alternating_latency(files, args.imgsz)
        print({name: round(ms, 2) for name, ms in measured.items()})
        print(f"ratio {measured['nano-s-pose'] / measured['YOLO11n-pose']:.2f}")
        return

    from edgevision import api
    from edgevision.data.formats import load_dataset
    from edgevision.data.sigmas import resolve_sigmas
    from edgevision.data.synth.pose import DEMO_FIGURES, FigureSampling, synthesize_pose
    from edgevision.eval.keypoints import keypoint_evaluate

    out = Path(args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
    figures = DEMO_FIGURES if args.figures == "demo" else FigureSampling()
    coco = synthesize_pose(
        out / "coco", n_train=args.n_train, n_val=args.n_val, num_keypoints=args.num_keypoints,
        seed=0, force=True, pose=figures,
    )  # fmt: skip
    api.data_convert(str(coco), "yolo", str(out / "yolo"))
    val, _ = load_dataset(coco, split="val")
    peer, peer_rows = run_peer(args, out / "yolo" / "data.yaml", coco / "images" / "val", out)
    ours = run_ours(coco, args, out)
    data_sigmas, source = resolve_sigmas(val)
    judged = {
        "nano-s-pose": our_detections(ours["best"], val),
        "YOLO11n-pose": peer_detections(peer_rows, val),
    }
    k = args.num_keypoints
    sigma_sets = {"0.05": [0.05] * k, "0.1": [0.1] * k, f"data ({source})": data_sigmas}
    table = {}
    for name, detections in judged.items():
        run = ours if name == "nano-s-pose" else peer
        row = {"epochs": run["epochs"], "train_seconds": round(run["train_seconds"], 1)}
        for label, sigmas in sigma_sets.items():
            stats = keypoint_evaluate(val, detections, sigmas, backend="pycocotools")
            row[f"OKS mAP50-95 @{label}"] = round(stats["OKS mAP50-95"], 4)
            row[f"OKS mAP50 @{label}"] = round(stats["OKS mAP50"], 4)
        table[name] = row
    onnx = {"nano-s-pose": ours["onnx"], "YOLO11n-pose": peer["onnx"]}
    print(f"latency pass, load {os.getloadavg()[0]:.2f}")
    for name, ms in alternating_latency(onnx, args.imgsz).items():
        table[name]["onnx_ms"] = round(ms, 2)
    print(
        f"\n{args.minutes} min each, imgsz {args.imgsz}, K={k}, {args.n_train}/{args.n_val} images, "
        f"{args.figures} figures ({figures})"
    )
    for name, row in table.items():
        print(name, json.dumps(row))
    ratio = table["nano-s-pose"]["onnx_ms"] / table["YOLO11n-pose"]["onnx_ms"]
    print(f"ONNX Runtime latency ratio nano-s-pose / YOLO11n-pose: {ratio:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "table": table}, indent=1))


if __name__ == "__main__":
    main()
