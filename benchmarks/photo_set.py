"""A realistic, dirty detection benchmark set, unlike the demo set: drawn objects and real
handwritten digits on real photos, imbalanced, mostly small, occluded, with labelled dirt.

The demo set (``edgevision/data/synth/detect.py``) is clean and balanced on smooth backgrounds;
a model that scores well there may still fail on what users bring. This set is built to look like
their data, and to be judged against clean labels:

- **backgrounds** are the real photos that ship inside scikit-image (:data:`PHOTOS`), randomly
  cropped, zoomed, flipped and colour-jittered (grey photos get a random tint), so images are
  320-800 px on a side with aspect ratios up to 1.9;
- **8 classes**, alphabetical (= id order everywhere): ``ball``, ``car``, ``cone``, ``person`` are
  drawn (shaded, outlined, sometimes blurred or see-through, random colours); ``digit0``,
  ``digit3``, ``digit4``, ``digit7`` are scikit-learn's real 8x8 handwritten digits
  (``load_digits``), upscaled with cubic interpolation, inked in a random colour, tilted, some
  blurred. Train images draw digits from 4/5 of the samples, val/test from the other 1/5, so a
  model cannot pass val by remembering one scan;
- **imbalanced**: each object's class is drawn with the shares of :data:`CLASS_SHARES`
  (car 30%, person 20%, cone 15%, ball 12%, digit0 8%, digit3 7%, digit4 5%, digit7 3%);
- **mostly small**: about 47% of the boxes are COCO-small (area < 32^2 in the image), the rest
  medium or large (up to half the shorter image side); a quarter of the images hold a cluster of
  small objects of one class;
- **occlusion**: a later object may hide up to 65% of an earlier one (boxes stay the full, amodal
  object), some objects sit next to an earlier one, and about 1 in 10 is cut by the image border
  (its box is clipped to the image);
- **distractors** that are never labelled: handwritten digits 1, 2, 5, 6, 8, 9, letters, blobs,
  bars and open arcs, and whatever the photos hold (the astronaut photo shows a real person);
- **annotation dirt** in every split (:data:`DIRT_RATES`: ~2% of boxes moved 2-6 px, ~1% left
  out, ~0.5% given a similar wrong class), listed in ``dirt.json``; val and test also get clean
  labels (``Annotations_clean/*.xml`` and ``{val,test}_clean.json``, COCO) to judge against.

Layout written under ``--out`` (Pascal VOC, written by edgevision's own ``write_voc``)::

    JPEGImages/{split}_NNNNNN.jpg   Annotations/{split}_NNNNNN.xml  (dirty, as a user would have)
    ImageSets/Main/{train,val,test,trainval}.txt
    Annotations_clean/{val,test}_NNNNNN.xml   val_clean.json   test_clean.json
    data.yaml  (format: voc + the class order)   dirt.json   stats.json

``load_dataset(out, split="train")`` reads the dirty labels; ``load_dataset(out / "test_clean.json",
split="test")`` the clean ones. ``--classify-out DIR`` also writes the matching classification set
(ImageFolder ``{train,val,test}/CLASS/*.jpg``, one object per 96-320 px image, same shares).

Every image has its own generator seeded by ``(seed, split, index)``: the same seed gives
byte-identical files, and an image does not change when another split's size does.

    .venv/bin/python benchmarks/photo_set.py --out runs/photo_set [--classify-out runs/photo_cls]

The code is in three files: ``photo_sprites.py`` draws one object, ``photo_scenes.py`` composes
the images, and this file adds the dirt, writes the sets and their stats. Functions the tests
use: :func:`photo_scenes.render_scene` (one image and its clean labels, nothing written),
:func:`add_dirt` / :func:`apply_changes`, :func:`write_detection_set`,
:func:`write_classification_set`.

Needs ``scikit-image`` and ``scikit-learn`` (benchmark-only requirements; nothing is downloaded:
only the photos bundled with scikit-image and the digits bundled with scikit-learn are used).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

# Siblings in benchmarks/: a script's folder is first on sys.path.
from photo_scenes import (
    CLASS_NAMES,
    CLASS_SHARES,
    CLASSIFY_CODE,
    SPLIT_CODES,
    PhotoScene,
    Sources,
    load_sources,
    render_classification_image,
    render_scene,
    split_rng,
)
from photo_sprites import DIGIT_CLASSES

from edgevision.core.errors import ConfigError, EdgevisionError
from edgevision.core.fileio import atomic_write_text
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.formats.coco import to_coco_dict
from edgevision.data.formats.voc import record_to_xml, write_voc
from edgevision.data.synth.common import clear_earlier_synth

SPLITS = ("train", "val", "test")
DIRT_CODE = 7  # the dirt of an image comes from its own stream: dirt rates never move pixels
DEFAULT_COUNTS = {"train": 1200, "val": 200, "test": 300}
DIRT_RATES = {"shifted": 0.02, "missing": 0.01, "wrong_class": 0.005}
SMALL_AREA, MEDIUM_AREA = 32**2, 96**2  # COCO size bins, image pixels
_FILE_PATTERN = re.compile(r"(train|val|test)_\d{6}\.(jpg|xml)")


# ----------------------------------------------------------------------------- dirt


def _similar_class(rng: np.random.Generator, label: int) -> int:
    """Another class an annotator could confuse ``label`` with: a digit for a digit, else a
    drawn object for a drawn object."""
    is_digit = CLASS_NAMES[label] in DIGIT_CLASSES
    pool = [
        i
        for i, name in enumerate(CLASS_NAMES)
        if (name in DIGIT_CLASSES) == is_digit and i != label
    ]
    return pool[int(rng.integers(len(pool)))]


def _step(rng: np.random.Generator) -> int:
    """2-6 px either way: an annotator's slip, not a different object."""
    return int(rng.integers(2, 7)) * (1 if rng.uniform() < 0.5 else -1)


def _shifted_box(rng: np.random.Generator, box: np.ndarray, width: int, height: int) -> np.ndarray:
    """The box moved 2-6 px (whole box, or one edge), kept inside the image and >= 2 px wide."""
    for _ in range(10):
        moved = box.copy()
        if rng.uniform() < 0.5:
            moved += np.array([1, 0, 1, 0]) * _step(rng) + np.array([0, 1, 0, 1]) * _step(rng)
        else:
            moved[int(rng.integers(4))] += _step(rng)
        moved = np.clip(moved, 0, [width, height, width, height])
        if moved[2] - moved[0] >= 2 and moved[3] - moved[1] >= 2 and not np.array_equal(moved, box):
            return moved
    return box


def add_dirt(
    rng: np.random.Generator,
    boxes: np.ndarray,
    labels: np.ndarray,
    width: int,
    height: int,
    rates: dict[str, float] = DIRT_RATES,
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Annotation mistakes as people make them: each object, independently, is left out, given a
    similar wrong class or has its box moved a few px, with the probabilities in ``rates``.

    Returns:
        (dirty boxes (M, 4), dirty labels (M,), changes): one dict per change with ``kind``,
        ``object`` (index in the clean list), the clean ``class`` and ``box``, and the written
        ``new_class`` / ``new_box`` (absent for "missing").
    """
    unknown = set(rates) - set(DIRT_RATES)
    if unknown:
        raise ConfigError(f"unknown dirt kinds {sorted(unknown)}; known: {sorted(DIRT_RATES)}")
    keep, new_boxes, new_labels, changes = [], boxes.copy(), labels.copy(), []
    missing, wrong = rates.get("missing", 0.0), rates.get("wrong_class", 0.0)
    shifted = rates.get("shifted", 0.0)
    for k in range(len(labels)):
        draw = rng.uniform()
        change = {"object": k, "class": CLASS_NAMES[labels[k]], "box": boxes[k].tolist()}
        if draw < missing:
            changes.append({"kind": "missing", **change})
            continue
        keep.append(k)
        if draw < missing + wrong:
            new_labels[k] = _similar_class(rng, int(labels[k]))
            changes.append(
                {"kind": "wrong_class", **change, "new_class": CLASS_NAMES[new_labels[k]]}
            )
        elif draw < missing + wrong + shifted:
            new_boxes[k] = _shifted_box(rng, boxes[k], width, height)
            if not np.array_equal(new_boxes[k], boxes[k]):
                changes.append({"kind": "shifted", **change, "new_box": new_boxes[k].tolist()})
    return new_boxes[keep], new_labels[keep], changes


def apply_changes(
    boxes: np.ndarray, labels: np.ndarray, changes: list[dict]
) -> tuple[np.ndarray, np.ndarray]:
    """The dirty labels rebuilt from the clean ones and a ``dirt.json`` entry's changes: the
    inverse check that clean and dirty differ only where the file says."""
    boxes, labels = np.array(boxes, np.float32).reshape(-1, 4).copy(), np.array(labels).copy()
    dropped = set()
    for change in changes:
        k = change["object"]
        if change["kind"] == "missing":
            dropped.add(k)
        elif change["kind"] == "wrong_class":
            labels[k] = CLASS_NAMES.index(change["new_class"])
        else:
            boxes[k] = change["new_box"]
    keep = [k for k in range(len(labels)) if k not in dropped]
    return boxes[keep], labels[keep]


# ----------------------------------------------------------------------------- writing


def _write_jpeg(path: Path, image: np.ndarray, quality: int) -> None:
    _, encoded = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    path.write_bytes(encoded.tobytes())


def _prepare_folder(root: Path, folders: tuple[str, ...], force: bool) -> None:
    """Refuse to mix into a folder that holds images; with ``force`` delete only earlier
    photo-set files (``{split}_NNNNNN.jpg|xml``)."""
    existing = sorted(
        path
        for folder in folders
        if (root / folder).is_dir()
        for path in (root / folder).rglob("*")
        if path.is_file()
    )
    clear_earlier_synth(root, existing, _FILE_PATTERN, force, f"in {', '.join(folders)}")
    for folder in folders:
        (root / folder).mkdir(parents=True, exist_ok=True)


class _Tally:
    """What stats.json reports about one split, accumulated image by image."""

    def __init__(self):
        self.images = 0
        self.empty_images = 0
        self.objects = Counter()
        self.written = Counter()
        self.size_bins = Counter()
        self.truncated = 0
        self.occluded = 0
        self.distractors = 0
        self.photos = Counter()
        self.dirt = Counter()
        self.widths: list[int] = []
        self.heights: list[int] = []
        self.box_sides: list[float] = []

    def add(self, scene: PhotoScene, written_labels: np.ndarray, changes: list[dict]) -> None:
        self.images += 1
        self.empty_images += len(scene.labels) == 0
        self.objects.update(CLASS_NAMES[k] for k in scene.labels)
        self.written.update(CLASS_NAMES[k] for k in written_labels)
        self.size_bins.update(size_bin(box) for box in scene.boxes)
        self.truncated += int(scene.truncated.sum())
        self.occluded += int((scene.occlusion >= 0.1).sum())
        self.distractors += scene.distractors
        self.photos[scene.photo] += 1
        self.dirt.update(change["kind"] for change in changes)
        self.heights.append(int(scene.image.shape[0]))
        self.widths.append(int(scene.image.shape[1]))
        self.box_sides += [float(b[2] - b[0]) for b in scene.boxes] + [
            float(b[3] - b[1]) for b in scene.boxes
        ]

    def summary(self) -> dict:
        total = sum(self.objects.values())
        return {
            "images": self.images,
            "images_without_objects": self.empty_images,
            "objects": total,
            "objects_per_class": {name: self.objects[name] for name in CLASS_NAMES},
            "objects_per_class_written": {name: self.written[name] for name in CLASS_NAMES},
            "share_small": round(self.size_bins["small"] / max(total, 1), 4),
            "share_medium": round(self.size_bins["medium"] / max(total, 1), 4),
            "share_large": round(self.size_bins["large"] / max(total, 1), 4),
            "box_side_px": [min(self.box_sides, default=0), max(self.box_sides, default=0)],
            "image_width_px": [min(self.widths, default=0), max(self.widths, default=0)],
            "image_height_px": [min(self.heights, default=0), max(self.heights, default=0)],
            "truncated_objects": self.truncated,
            "objects_occluded_10pct_or_more": self.occluded,
            "distractors": self.distractors,
            "dirt": {kind: self.dirt[kind] for kind in DIRT_RATES},
            "photos": dict(sorted(self.photos.items())),
        }


def size_bin(box) -> str:
    """COCO's size bin of an xyxy box by its area: "small" < 32^2 <= "medium" < 96^2 <= "large"."""
    area = float(box[2] - box[0]) * float(box[3] - box[1])
    return "small" if area < SMALL_AREA else "medium" if area < MEDIUM_AREA else "large"


def _record(path: Path, scene: PhotoScene, boxes, labels, index: int) -> ImageRecord:
    height, width = scene.image.shape[:2]
    return ImageRecord(path, width, height, boxes, labels, image_id=index + 1)


def _write_split(root: Path, split: str, count: int, seed: int, rates: dict, sources: Sources):
    """Images, dirty VOC XML and the list file of one split; returns (clean records, dirt, tally)."""
    clean, dirty, dirt, tally = [], [], [], _Tally()
    for index in range(count):
        scene = render_scene(sources, seed, split, index)
        path = root / "JPEGImages" / f"{split}_{index:06d}.jpg"
        _write_jpeg(path, scene.image, scene.jpeg_quality)
        height, width = scene.image.shape[:2]
        dirt_rng = split_rng(seed, split, index, DIRT_CODE)
        boxes, labels, changes = add_dirt(dirt_rng, scene.boxes, scene.labels, width, height, rates)
        clean.append(_record(path, scene, scene.boxes, scene.labels, index))
        dirty.append(_record(path, scene, boxes, labels, index))
        if changes:
            dirt.append({"split": split, "image": path.stem, "changes": changes})
        tally.add(scene, labels, changes)
    write_voc(RecordSet(dirty, list(CLASS_NAMES), root, "voc", split), root, split=split)
    return clean, dirt, tally


def _write_clean(root: Path, split: str, records: list[ImageRecord]) -> None:
    """``Annotations_clean/*.xml`` and ``{split}_clean.json`` (COCO, readable by load_dataset)."""
    for record in records:
        xml = record_to_xml(record, list(CLASS_NAMES))
        atomic_write_text(root / "Annotations_clean" / f"{record.image_path.stem}.xml", xml)
    record_set = RecordSet(records, list(CLASS_NAMES), root, "voc", split)
    names = [f"JPEGImages/{record.image_path.name}" for record in records]
    atomic_write_text(root / f"{split}_clean.json", json.dumps(to_coco_dict(record_set, names)))


def write_detection_set(
    out_dir: str | Path,
    n_train: int = DEFAULT_COUNTS["train"],
    n_val: int = DEFAULT_COUNTS["val"],
    n_test: int = DEFAULT_COUNTS["test"],
    seed: int = 0,
    force: bool = False,
    dirt_rates: dict[str, float] = DIRT_RATES,
) -> dict:
    """Write the detection set (see the module docstring) and return its stats (also saved as
    ``stats.json``).

    Raises:
        ConfigError: a negative count, or no image at all; scikit-image / scikit-learn missing.
        DataError: ``out_dir`` already holds images or annotations and ``force`` is False.
    """
    counts = {"train": n_train, "val": n_val, "test": n_test}
    if min(counts.values()) < 0 or sum(counts.values()) == 0:
        raise ConfigError(f"image counts {counts}: need >= 0 each and > 0 in total")
    sources = load_sources()
    root = Path(out_dir).resolve()
    _prepare_folder(root, ("JPEGImages", "Annotations", "Annotations_clean"), force)
    splits, dirt = {}, []
    for split, count in counts.items():
        clean, split_dirt, tally = _write_split(root, split, count, seed, dirt_rates, sources)
        if split != "train":
            _write_clean(root, split, clean)
        splits[split], dirt = tally.summary(), dirt + split_dirt
    stems = [f"{s}_{i:06d}" for s in ("train", "val") for i in range(counts[s])]
    atomic_write_text(root / "ImageSets" / "Main" / "trainval.txt", "\n".join(stems) + "\n")
    names = "\n".join(f"  - {name}" for name in CLASS_NAMES)
    atomic_write_text(root / "data.yaml", f"format: voc\npath: .\nnames:\n{names}\n")
    atomic_write_text(
        root / "dirt.json", json.dumps({"rates": dirt_rates, "images": dirt}, indent=1)
    )
    stats = _detection_stats(splits, seed, dirt_rates)
    atomic_write_text(root / "stats.json", json.dumps(stats, indent=2) + "\n")
    return stats


def _detection_stats(splits: dict[str, dict], seed: int, rates: dict) -> dict:
    objects = Counter()
    for summary in splits.values():
        objects.update(summary["objects_per_class"])
    total = sum(objects.values())
    small = sum(s["share_small"] * s["objects"] for s in splits.values())
    return {
        "seed": seed,
        "class_names": list(CLASS_NAMES),
        "class_shares_target": CLASS_SHARES,
        "dirt_rates": rates,
        "images_per_split": {split: s["images"] for split, s in splits.items()},
        "objects_per_class": {name: objects[name] for name in CLASS_NAMES},
        "share_small": round(small / max(total, 1), 4),
        "splits": splits,
    }


# ----------------------------------------------------------------------------- classification


def class_quotas(count: int) -> dict[str, int]:
    """Images per class for ``count`` images: :data:`CLASS_SHARES` by largest remainder, every
    class at least one when ``count`` allows."""
    shares = np.array([CLASS_SHARES[name] for name in CLASS_NAMES])
    floor = np.floor(shares * count).astype(int)
    if count >= len(CLASS_NAMES):
        floor = np.maximum(floor, 1)
    order = np.argsort(-(shares * count - np.floor(shares * count)), kind="stable")
    for k in order[: max(count - int(floor.sum()), 0)]:
        floor[k] += 1
    while floor.sum() > count:  # the minimum of one over-filled: take from the largest class
        floor[int(np.argmax(floor))] -= 1
    return {name: int(n) for name, n in zip(CLASS_NAMES, floor, strict=True)}


def write_classification_set(
    out_dir: str | Path,
    n_train: int = DEFAULT_COUNTS["train"],
    n_val: int = DEFAULT_COUNTS["val"],
    n_test: int = DEFAULT_COUNTS["test"],
    seed: int = 0,
    force: bool = False,
) -> dict:
    """Write the classification twin (ImageFolder ``{split}/CLASS/{split}_NNNNNN.jpg``) and
    return its stats (also saved as ``stats.json``)."""
    counts = {"train": n_train, "val": n_val, "test": n_test}
    if min(counts.values()) < 0 or sum(counts.values()) == 0:
        raise ConfigError(f"image counts {counts}: need >= 0 each and > 0 in total")
    sources = load_sources()
    root = Path(out_dir).resolve()
    _prepare_folder(root, SPLITS, force)
    stats = {"seed": seed, "class_names": list(CLASS_NAMES), "splits": {}}
    for split, count in counts.items():
        quotas = class_quotas(count)
        names = [name for name in CLASS_NAMES for _ in range(quotas[name])]
        order = np.random.default_rng([seed, SPLIT_CODES[split], CLASSIFY_CODE]).permutation(count)
        sides = []
        for index, position in enumerate(order):
            name = names[position]
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            image = render_classification_image(sources, seed, split, index, name)
            _write_jpeg(folder / f"{split}_{index:06d}.jpg", image, 90)
            sides += image.shape[:2]
        for name in CLASS_NAMES:  # every class folder in every split: one class list everywhere
            (root / split / name).mkdir(parents=True, exist_ok=True)
        stats["splits"][split] = {
            "images": count,
            "per_class": quotas,
            "side_px": [min(sides, default=0), max(sides, default=0)],
        }
    atomic_write_text(root / "stats.json", json.dumps(stats, indent=2) + "\n")
    return stats


# ----------------------------------------------------------------------------- command line


def _print_summary(stats: dict) -> None:
    print(f"images per split: {stats['images_per_split']}")
    total = sum(stats["objects_per_class"].values())
    print(f"objects: {total}; COCO-small share {stats['share_small']:.1%}")
    for name, count in stats["objects_per_class"].items():
        print(f"  {name:8s} {count:6d}  {count / max(total, 1):6.1%}")
    for split, summary in stats["splits"].items():
        print(
            f"{split:5s}: {summary['images']} images, {summary['objects']} objects, "
            f"small {summary['share_small']:.1%} / medium {summary['share_medium']:.1%} / "
            f"large {summary['share_large']:.1%}, box sides {summary['box_side_px']} px, "
            f"truncated {summary['truncated_objects']}, occluded {summary['objects_occluded_10pct_or_more']}, "
            f"dirt {summary['dirt']}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/photo_set", help="VOC root to write")
    parser.add_argument("--n-train", type=int, default=DEFAULT_COUNTS["train"])
    parser.add_argument("--n-val", type=int, default=DEFAULT_COUNTS["val"])
    parser.add_argument("--n-test", type=int, default=DEFAULT_COUNTS["test"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classify-out", default=None, help="also write the ImageFolder twin here")
    parser.add_argument("--classify-n-train", type=int, default=DEFAULT_COUNTS["train"])
    parser.add_argument("--classify-n-val", type=int, default=DEFAULT_COUNTS["val"])
    parser.add_argument("--classify-n-test", type=int, default=DEFAULT_COUNTS["test"])
    parser.add_argument(
        "--force", action="store_true", help="replace an earlier photo set in --out"
    )
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)  # small images: threads cost more than they give, and cores are shared
    try:
        _run(args)
    except EdgevisionError as error:  # a full folder, a bad count, a missing package
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _run(args: argparse.Namespace) -> None:
    start = time.perf_counter()
    stats = write_detection_set(
        args.out, args.n_train, args.n_val, args.n_test, args.seed, args.force
    )
    _print_summary(stats)
    print(
        f"detection set written to {Path(args.out).resolve()} in {time.perf_counter() - start:.1f} s"
    )
    if args.classify_out:
        start = time.perf_counter()
        counts = (args.classify_n_train, args.classify_n_val, args.classify_n_test)
        classify = write_classification_set(
            args.classify_out, *counts, seed=args.seed, force=args.force
        )
        for split, summary in classify["splits"].items():
            print(f"classify {split}: {summary['images']} images {summary['per_class']}")
        print(
            f"classification set written to {Path(args.classify_out).resolve()} in {time.perf_counter() - start:.1f} s"
        )


if __name__ == "__main__":
    sys.exit(main())
