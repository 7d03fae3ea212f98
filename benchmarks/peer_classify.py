"""Classification side by side on the photo set's ImageFolder twin: cls-shufflenetv2-x0.5 vs
Ultralytics YOLO11n-cls (from ``yolo11n-cls.yaml``, no weights), same images, same minutes.

Both train from scratch for ``--minutes`` of wall-clock at the flags a user types
(``edgevision train --model cls-shufflenetv2-x0.5 --imgsz 128 --batch 64 --time 5`` and
``yolo train model=yolo11n-cls.yaml imgsz=128 batch=64 time=0.0833``), one after the other on the
same machine (``--set KEY=VALUE`` trains an experiment row of ours with an option changed); then
both predict the test split and the same code here scores them: top-1, mean
per-class accuracy (the small classes are where a classifier fails) and each class's accuracy.
A row per run goes to ``OUT/rows.jsonl``; ``--table`` prints them.

Ultralytics needs torchvision, so it lives in its own virtual environment (see peer_pose.py).
Run:
    .venv/bin/python benchmarks/photo_set.py --out runs/photo_set --classify-out runs/photo_cls
    .venv/bin/python benchmarks/peer_classify.py --data runs/photo_cls --minutes 5
    .venv/bin/python benchmarks/peer_classify.py --data runs/photo_cls --table
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from peer_driver import experiment_option, run_peer_driver  # benchmarks/, the script's folder

PEER_DRIVER = r"""
import json, sys, time
from pathlib import Path
from ultralytics import YOLO
data, imgsz, batch, minutes, project, out = sys.argv[1:7]
model = YOLO("yolo11n-cls.yaml")
start = time.perf_counter()
model.train(data=data, imgsz=int(imgsz), epochs=1000, time=float(minutes) / 60, batch=int(batch),
            workers=2, device="cpu", project=project, name="yolo11n-cls", exist_ok=True, plots=False,
            amp=False, verbose=False, seed=0)
seconds = time.perf_counter() - start
best = YOLO(f"{project}/yolo11n-cls/weights/best.pt")
predicted = {}
for path in sorted(Path(data, "test").glob("*/*")):
    r = best.predict(str(path), imgsz=int(imgsz), device="cpu", verbose=False)[0]
    predicted[str(path.relative_to(data))] = r.names[int(r.probs.top1)]
Path(out).write_text(json.dumps(predicted))
epochs = len(open(f"{project}/yolo11n-cls/results.csv").read().strip().splitlines()) - 1
print("PEER_RESULT " + json.dumps({"epochs": epochs, "train_seconds": seconds}))
"""


def score(truth: dict[str, str], predicted: dict[str, str], names: list[str]) -> dict:
    """Top-1, mean per-class accuracy and each class's accuracy (its recall, from the confusion
    matrix ``edgevision val`` uses) of ``predicted`` (image -> class name) against ``truth``;
    every test image must have a prediction, naming one of ``names``."""
    from edgevision.eval.classify import class_confusion_matrix, precision_recall

    missing = sorted(set(truth) - set(predicted))
    if missing:
        raise SystemExit(f"{len(missing)} test images without a prediction, e.g. {missing[0]}")
    unknown = sorted({predicted[key] for key in truth} - set(names))
    if unknown:
        raise SystemExit(f"predictions name classes the set does not have: {unknown}")
    index = {name: i for i, name in enumerate(names)}
    keys = sorted(truth)
    matrix = class_confusion_matrix(
        [index[predicted[key]] for key in keys], [index[truth[key]] for key in keys], len(names)
    )
    _, recall = precision_recall(matrix)
    return {
        "top1": round(float(matrix.trace() / matrix.sum()), 4),
        "mean_class_acc": round(float(recall.mean()), 4),
        "per_class_acc": {
            name: round(float(value), 4) for name, value in zip(names, recall, strict=True)
        },
        "test_images": len(truth),
    }


def test_truth(data: Path) -> dict[str, str]:
    """Test image (path relative to the set) -> its folder's class name."""
    return {
        str(path.relative_to(data)): path.parent.name
        for path in sorted(data.glob("test/*/*"))
        if path.is_file()
    }


def run_ours(args, truth: dict[str, str]) -> dict:
    from edgevision import api
    from edgevision.data.datasets.classify import (
        ClassificationDataset,
        build_classification_loader,
    )
    from edgevision.data.formats.imagefolder import load_classification
    from edgevision.engine.run import select_device
    from edgevision.tasks.classify.inference import predict_loader
    from edgevision.tasks.load import load_model

    extra = dict(experiment_option(text) for text in args.set)
    flags = {**dict(imgsz=args.imgsz, epochs=1000, batch=args.batch, time=args.minutes), **extra}
    name = args.model + "".join(f" {k}={v}" for k, v in extra.items())
    start = time.perf_counter()
    summary = api.train(
        data=str(args.data), model=args.model, **flags, project=str(args.out),
        name=name.replace(" ", "_"), exist_ok=True, plots=False, verbose=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    loaded = load_model(Path(summary["run_dir"]) / "weights" / "best.pt")
    test_set, _ = load_classification(args.data, "test", loaded.meta["class_names"])
    dataset = ClassificationDataset(test_set, args.imgsz, augment=False)
    loader = build_classification_loader(dataset, 64, 0, shuffle=False)
    logits, _, paths = predict_loader(loaded.model, loader, select_device("cpu"))
    predicted = {
        str(Path(path).relative_to(args.data)): loaded.meta["class_names"][int(k)]
        for path, k in zip(paths, logits.argmax(1), strict=True)
    }
    return {
        "row": name,
        "command": f"edgevision train --model {args.model} "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in flags.items() if k != "epochs"),
        "epochs": summary["epochs"],
        "optimizer_steps": summary["optimizer_steps"],
        "train_seconds": round(seconds, 1),
        **score(truth, predicted, loaded.meta["class_names"]),
    }


def run_peer(args, truth: dict[str, str], names: list[str]) -> dict:
    predictions = args.out / "yolo11n-cls_test_predictions.json"
    arguments = [str(args.data.resolve()), str(args.imgsz), str(args.batch), str(args.minutes)]
    arguments += [str(args.out.resolve()), str(predictions)]
    result = run_peer_driver(args.peer_python, PEER_DRIVER, arguments)
    return {
        "row": "yolo11n-cls",
        "command": f"yolo train model=yolo11n-cls.yaml imgsz={args.imgsz} batch={args.batch} "
        f"time={args.minutes / 60:.4f}",
        "epochs": result["epochs"],
        "train_seconds": round(result["train_seconds"], 1),
        **score(truth, json.loads(predictions.read_text()), names),
    }


def print_table(rows: list[dict]) -> None:
    names = list(rows[0]["per_class_acc"])
    print("| row | epochs | train s | top-1 | mean per-class | " + " | ".join(names) + " |")
    print("| --- " * (5 + len(names)) + "|")
    for row in rows:
        cells = [row["row"], row["epochs"], row["train_seconds"], row["top1"]]
        cells += [row["mean_class_acc"], *(row["per_class_acc"][n] for n in names)]
        print("| " + " | ".join(str(c) for c in cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("runs/photo_cls"))
    parser.add_argument("--out", type=Path, default=Path("runs/peer_classify"))
    parser.add_argument("--model", default="cls-shufflenetv2-x0.5")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--imgsz", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--set", action="append", default=[], help="our row: KEY=VALUE option")
    parser.add_argument("--skip-ours", action="store_true")
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--peer-python", default="/work/peer-venv/bin/python")
    parser.add_argument("--table", action="store_true", help="print the recorded rows and stop")
    args = parser.parse_args()
    rows_path = args.out / "rows.jsonl"
    if args.table:
        lines = rows_path.read_text().splitlines() if rows_path.is_file() else []
        rows = list({row["row"]: row for row in map(json.loads, lines)}.values())
        print_table(rows) if rows else print(f"no rows in {rows_path}")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    truth = test_truth(args.data)
    names = sorted({label for label in truth.values()})
    rows = [] if args.skip_ours else [run_ours(args, truth)]
    if not args.skip_peer:
        rows.append(run_peer(args, truth, names))
    with rows_path.open("a") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    print_table(rows)


if __name__ == "__main__":
    main()
