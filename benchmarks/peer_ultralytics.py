"""Side by side, in one run: edgevision nano-s vs Ultralytics YOLO11n (from its yaml, no weights).

Both train on the same synthetic data (ours converted to YOLO format by `edgevision data convert`),
at the same image size and the same wall-clock budget, on this machine; both are then scored on the
same val split: YOLO11n by Ultralytics' own validator, nano-s by ours (faster-coco-eval), and the
script prints throughput and mAP for both.

Ultralytics needs torchvision, so it lives in its own virtual environment:
    python3 -m venv /work/peer-venv
    /work/peer-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 && /work/peer-venv/bin/pip install ultralytics
Run:
    .venv/bin/python benchmarks/peer_ultralytics.py --minutes 10 --imgsz 320 --peer-python /work/peer-venv/bin/python
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from peer_driver import run_peer_driver  # benchmarks/, the script's folder

PEER_DRIVER = r"""
import json, sys, time
from ultralytics import YOLO
data, imgsz, minutes, project, workers = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], int(sys.argv[5])
model = YOLO("yolo11n.yaml")
start = time.perf_counter()
model.train(data=data, imgsz=imgsz, epochs=1000, time=minutes / 60, batch=32, workers=workers, device="cpu",
            project=project, name="yolo11n", exist_ok=True, plots=False, amp=False, verbose=False, seed=0)
train_seconds = time.perf_counter() - start
metrics = YOLO(f"{project}/yolo11n/weights/best.pt").val(data=data, imgsz=imgsz, batch=32, device="cpu",
                                                          plots=False, verbose=False, split="val")
epochs = len(open(f"{project}/yolo11n/results.csv").read().strip().splitlines()) - 1
print("PEER_RESULT " + json.dumps({"mAP50-95": float(metrics.box.map), "mAP50": float(metrics.box.map50),
                                    "epochs": epochs, "train_seconds": train_seconds}))
"""


def run_peer(
    peer_python: str, data_yaml: Path, imgsz: int, minutes: float, project: Path, workers: int
) -> dict:
    arguments = [str(data_yaml), str(imgsz), str(minutes), str(project), str(workers)]
    return run_peer_driver(peer_python, PEER_DRIVER, arguments)


def run_ours(data: Path, imgsz: int, minutes: float, project: Path, workers: int) -> dict:
    from edgevision import api

    start = time.perf_counter()
    summary = api.train(
        data=str(data),
        model="nano-s",
        imgsz=imgsz,
        epochs=1000,
        batch=32,
        mosaic=0.0,
        close_mosaic=0,
        time=minutes,
        workers=workers,
        cache="ram",
        project=str(project),
        name="nano-s",
        exist_ok=True,
        val_interval=5,
        verbose=False,
    )
    train_seconds = time.perf_counter() - start
    result = api.evaluate(
        str(project / "nano-s" / "weights" / "best.pt"),
        str(data),
        project=str(project),
        name="nano-s-val",
        exist_ok=True,
        plots=False,
    )
    return {
        "mAP50-95": result["metrics"]["mAP50-95"],
        "mAP50": result["metrics"]["mAP50"],
        "epochs": summary["epochs"],
        "train_seconds": train_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--minutes", type=float, default=10.0, help="training budget for each model"
    )
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n-train", type=int, default=600)
    parser.add_argument("--n-val", type=int, default=150)
    parser.add_argument("--peer-python", default="/work/peer-venv/bin/python")
    parser.add_argument("--out", default="benchmarks/out/peer")
    args = parser.parse_args()

    from edgevision import api

    out = Path(args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    voc = api.data_synth(str(out / "voc"), n_train=args.n_train, n_val=args.n_val, seed=0)
    api.data_convert(str(voc), "yolo", str(out / "yolo"))
    peer = run_peer(
        args.peer_python,
        out / "yolo" / "data.yaml",
        args.imgsz,
        args.minutes,
        out / "runs",
        args.workers,
    )
    ours = run_ours(voc, args.imgsz, args.minutes, out / "runs", args.workers)
    print(
        f"\n{'model':<10} {'epochs':>6} {'img/s':>7} {'mAP50-95':>9} {'mAP50':>7}   ({args.minutes} min budget, "
        f"imgsz {args.imgsz}, {args.n_train} train / {args.n_val} val images)"
    )
    for name, result in (("nano-s", ours), ("YOLO11n", peer)):
        rate = result["epochs"] * args.n_train / result["train_seconds"]
        print(
            f"{name:<10} {result['epochs']:>6} {rate:>7.1f} {result['mAP50-95']:>9.4f} {result['mAP50']:>7.4f}"
        )


if __name__ == "__main__":
    main()
