"""Run an edgevision ONNX detector on a device: needs numpy, OpenCV and onnxruntime, not PyTorch.

    python examples/onnx_infer.py model.onnx images/ --out results.json --draw drawn/

Everything the model needs (classes, input size, letterbox, output layout) is read from the file.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2

from edgevision.core.image import IMAGE_SUFFIXES, read_image
from edgevision.runtime import OnnxDetector
from edgevision.viz.draw import draw_detections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the .onnx written by `edgevision export`")
    parser.add_argument("source", help="an image or a folder of images")
    parser.add_argument("--conf", type=float, default=0.25, help="score threshold")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    parser.add_argument("--out", default="", help="write detections as JSON here")
    parser.add_argument("--draw", default="", help="write annotated images into this folder")
    args = parser.parse_args()

    detector = OnnxDetector(args.model, threads=args.threads, conf=args.conf)
    source = Path(args.source)
    paths = sorted(source.iterdir()) if source.is_dir() else [source]
    paths = [path for path in paths if path.suffix.lower() in IMAGE_SUFFIXES]
    rows, start = [], time.perf_counter()
    for path in paths:
        image = read_image(path)
        result = detector.predict(image, [str(path)])[0]
        records = result.to_records()  # COCO-style: bbox x, y, w, h in original pixels
        rows.extend(records)
        print(path.name, [f"{row['category']} {row['score']:.2f}" for row in records])
        if args.draw:
            drawn = draw_detections(
                image, result.boxes, result.classes, result.scores, result.class_names
            )
            Path(args.draw).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(Path(args.draw) / f"{path.stem}.jpg"), drawn[..., ::-1])  # RGB -> BGR
    milliseconds = 1000 * (time.perf_counter() - start) / max(len(paths), 1)
    print(f"{len(paths)} images, {milliseconds:.1f} ms per image (read + detect)")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
