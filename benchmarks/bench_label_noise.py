"""How well ``edgevision analyze`` finds wrong labels: inject known noise, train, review, score.

The demo data (600 train / 150 val synthetic images) gets label noise in its train split: 5 % of
the boxes removed, 5 % relabelled, 5 % shifted or scaled (IoU 0.35-0.65 with the truth), 2 %
duplicated (``analysis.noise_injection``). nano-s trains on the noisy copy with the demo recipe
for ``--minutes``; ``analyze`` reviews the train split (``--folds K`` for out-of-fold models,
each trained ``--fold-minutes``); the label review's top ``--top`` items are scored against the
injected truth, per kind (precision = right items / items of that kind flagged in the top N,
recall = found / injected).

    python benchmarks/bench_label_noise.py --out /tmp/label_noise --minutes 6

Run on a quiet machine; the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from edgevision import api
from edgevision.analysis.label_noise import read_review_csv
from edgevision.analysis.noise_injection import inject_label_noise, score_finder
from edgevision.data.formats import load_dataset
from edgevision.data.formats.voc import write_voc
from edgevision.data.synth.detect import synthesize_detection

RECIPE = {
    "batch": 4, "nbs": 4, "lr0": 0.002, "lrf": 1.0, "mosaic": 0.0, "close_mosaic": 0, "cache": "ram",
}  # fmt: skip


def noisy_copy(out: Path, seed: int) -> tuple[Path, list[dict]]:
    """The demo data with noise injected into its train split; (VOC root, truth)."""
    clean = synthesize_detection(out / "clean", n_train=600, n_val=150, seed=0, force=True)
    train, _ = load_dataset(clean, split="train")
    val, _ = load_dataset(clean, split="val", class_names=train.class_names)
    noisy, truth = inject_label_noise(train, seed=seed)
    root = out / "noisy"
    write_voc(noisy, root, split="train")
    write_voc(val, root, split="val")  # judged on clean labels; only train is reviewed
    return root, truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/label_noise")
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--folds", type=int, default=0)
    parser.add_argument("--fold-minutes", type=float, default=3.0)
    parser.add_argument("--top", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    out = Path(args.out)
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
    root, truth = noisy_copy(out, args.seed)
    counts = {
        kind: sum(t["kind"] == kind for t in truth) for kind in sorted({t["kind"] for t in truth})
    }
    print(f"injected into the train split: {counts}")
    start = time.perf_counter()
    summary = api.train(
        data=str(root), model="nano-s", imgsz=320, epochs=300, time=args.minutes,
        project=str(out), name="train", exist_ok=True, verbose=False, seed=args.seed, **RECIPE,
    )  # fmt: skip
    weights = Path(summary["run_dir"]) / "weights" / "best.pt"
    trained = time.perf_counter() - start
    result = api.analyze(
        str(weights), str(root), split="train", folds=args.folds,
        project=str(out), name="analyze", exist_ok=True,
    )  # fmt: skip
    analysed = time.perf_counter() - start - trained
    record_set, _ = load_dataset(root, split="train")
    items = read_review_csv(Path(result["run_dir"]) / "label_review.csv", record_set)
    scores = score_finder(items, truth, top=args.top)
    print(f"trained {summary['epochs']} epochs in {trained / 60:.1f} min; analyze {analysed:.0f} s")
    val_map = json.loads((Path(summary["run_dir"]) / "val" / "metrics.json").read_text())
    val_map = {k: v for k, v in val_map.items() if k in ("mAP50-95", "mAP50")}
    print(f"val split (clean labels), best.pt: {val_map}")
    print(f"top {args.top} of {len(items)} review items, scored against the injected truth:")
    print(
        f"{'kind':<12} {'flagged':>7} {'right':>6} {'injected':>8} {'precision':>9} {'recall':>7}"
    )
    for kind, row in scores.items():
        precision = "-" if row["precision"] is None else f"{row['precision']:.2f}"
        recall = "-" if row["recall"] is None else f"{row['recall']:.2f}"
        print(
            f"{kind:<12} {row['flagged']:>7} {row['hits']:>6} {row['injected']:>8} "
            f"{precision:>9} {recall:>7}"
        )
    if args.json:
        payload = {"injected": counts, "scores": scores, "epochs": summary["epochs"]}
        Path(args.json).write_text(json.dumps(payload, indent=1, default=str))


if __name__ == "__main__":
    main()
