"""Odd files on a dirty VOC set: what the data doctor reports, what training uses, what predict does.

Builds the demo VOC set (``synthesize_detection``, ``--n-train`` + ``--n-val`` images) in ``--out``
and injects into training files, chosen by ``--seed``, a known number of each defect met on real
dirty sets: PNG, BMP and WebP bytes under ``.jpg``, truncated and 0-byte JPEGs, stray-click boxes
(``xmin == xmax`` or ``ymin == ymax``), class names with a trailing space, XML in cp1252 with no
declaration, declared GBK, or with a UTF-8 byte-order mark, ``<filename>`` naming no file or
another image, a minority case spelling of one class used by the first file read, and swapped,
outside and duplicate boxes. Then it measures:

- ``check_dataset`` (header and deep mode): per injected kind, how many were reported with the
  expected kind, the total of that kind, and what else was said about those files or objects;
- the training view (``load_dataset(split="train")`` + ``DetectionDataset``, every item loaded):
  ``usage()``, ``sanitize_report``, skipped images per injected kind, 1-px boxes reaching training;
- ``api.predict`` on ``JPEGImages/`` with a checkpoint built in code (``tests/detector.py``):
  images predicted and skipped, whether it aborted, predicted boxes <= 0 / <= 1 px wide or high;
  then a 4-file folder with ``save_json`` (is there a ``skipped.json``?) and with ``strict=True``;
- ``check_dataset`` on a COCO JSON nested 100,000 levels deep: the exception raised.

Every call is guarded, so the same script runs against older code (what is missing prints n/a):

    PYTHONPATH=. python benchmarks/bench_dirty_doctor.py --out /tmp/dirty --json dirty.json
    cd OLD && PYTHONPATH=OLD python NEW/benchmarks/bench_dirty_doctor.py --out /tmp/dirty_old

``--out`` is rewritten with ``force=True`` (only ``synth_NNNNNN`` files and the split lists).
The repository root is appended to ``sys.path`` (for ``tests.detector``), after ``PYTHONPATH``,
so an older ``edgevision`` first on the path stays the one imported; its path is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import random
import re
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

import edgevision
from edgevision.data.synth.detect import CLASS_NAMES, synthesize_detection

REPO = Path(__file__).resolve().parents[1]
# Injected kind -> (count, the doctor kind that names it). Image kinds change the .jpg bytes.
INJECT = {
    "png_as_jpg": (6, "image_suffix"),
    "bmp_as_jpg": (6, "image_suffix"),
    "webp_as_jpg": (6, "image_suffix"),
    "truncated_jpeg": (3, "unreadable_image"),
    "zero_byte_jpeg": (2, "unreadable_image"),
    "click_xmin_eq_xmax": (9, "degenerate_box"),
    "click_ymin_eq_ymax": (3, "degenerate_box"),
    "class_trailing_space": (5, "class_whitespace"),
    "xml_cp1252_undeclared": (4, "xml_encoding"),
    "xml_gbk_declared": (4, "xml_encoding"),
    "xml_utf8_bom": (4, "xml_encoding"),
    "filename_names_no_file": (5, "filename_mismatch"),
    "filename_names_other_image": (2, "filename_other_image"),
    "minority_case_first_file": (3, "class_case"),
    "swapped_coords": (3, "swapped_coords"),
    "box_outside": (3, "box_outside"),
    "duplicate_box": (3, "duplicate_box"),
}
IMAGE_KINDS = ("png_as_jpg", "bmp_as_jpg", "webp_as_jpg", "truncated_jpeg", "zero_byte_jpeg")
XML_ENCODINGS = {
    "xml_cp1252_undeclared": "cp1252",
    "xml_gbk_declared": "gbk",
    "xml_utf8_bom": "bom",
}
FOLDER_TEXT = {"cp1252": "Fotos_Été", "gbk": "图片", "bom": "JPEGImages"}
DEEP_JSON_LEVELS = 100_000
MODES = ("header", "deep")  # check_dataset reads image headers / decodes every image
_STEM = re.compile(r"synth_\d{6}")


# ---------------------------------------------------------------------------------------------
# Building the dirty set


@dataclass
class DirtySet:
    """The VOC tree being dirtied: parsed annotations, chosen encodings, and the truth so far."""

    root: Path
    rng: random.Random
    trees: dict[str, ET.Element]
    val_stems: list[str]
    encodings: dict[str, str] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    truth: list[dict] = field(default_factory=list)

    def objects(self, stem: str) -> list[ET.Element]:
        return self.trees[stem].findall("object")

    def size(self, stem: str) -> tuple[int, int]:
        size = self.trees[stem].find("size")
        return int(size.findtext("width")), int(size.findtext("height"))

    def image(self, stem: str) -> Path:
        return self.root / "JPEGImages" / f"{stem}.jpg"


def _reencode(dirty: DirtySet, stem: str, suffix: str) -> None:
    """Other-format bytes under the .jpg name (an export renamed by hand)."""
    ok, data = cv2.imencode(suffix, cv2.imread(str(dirty.image(stem))))
    if not ok:
        raise RuntimeError(f"OpenCV cannot encode {suffix}")
    dirty.image(stem).write_bytes(data.tobytes())


def _truncate(dirty: DirtySet, stem: str) -> None:
    data = dirty.image(stem).read_bytes()
    dirty.image(stem).write_bytes(data[: len(data) // 2])  # an interrupted copy


def _add_click(dirty: DirtySet, stem: str, axis: int) -> int:
    """Append a stray-click object: one coordinate pair equal (axis 0: x, 1: y)."""
    width, height = dirty.size(stem)
    x, y = dirty.rng.randint(10, width - 40), dirty.rng.randint(10, height - 40)
    corners = [x, y, x + dirty.rng.randint(8, 30), y + dirty.rng.randint(8, 30)]
    corners[axis + 2] = corners[axis]
    obj = ET.SubElement(dirty.trees[stem], "object")
    ET.SubElement(obj, "name").text = dirty.rng.choice(CLASS_NAMES)
    ET.SubElement(obj, "difficult").text = "0"
    box = ET.SubElement(obj, "bndbox")
    for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), corners, strict=True):
        ET.SubElement(box, tag).text = str(value)
    return len(dirty.objects(stem)) - 1


def _edit_first_object(dirty: DirtySet, stem: str, kind: str) -> int:
    obj = dirty.objects(stem)[0]
    box = obj.find("bndbox")
    if kind == "class_trailing_space":
        obj.find("name").text += " "
    elif kind == "swapped_coords":
        xmin, xmax = box.find("xmin"), box.find("xmax")
        xmin.text, xmax.text = xmax.text, xmin.text
    elif kind == "box_outside":
        box.find("xmax").text = str(dirty.size(stem)[0] + 20)
    else:  # duplicate_box: an exact copy after the last object
        dirty.trees[stem].append(copy.deepcopy(obj))
        return len(dirty.objects(stem)) - 1
    return 0


def _inject_one(dirty: DirtySet, stem: str, kind: str, number: int) -> int | None:
    """Put one defect of ``kind`` into ``stem``; the object index it concerns, or None."""
    if kind in ("png_as_jpg", "bmp_as_jpg", "webp_as_jpg"):
        _reencode(dirty, stem, "." + kind.split("_")[0])
    elif kind == "truncated_jpeg":
        _truncate(dirty, stem)
    elif kind == "zero_byte_jpeg":
        dirty.image(stem).write_bytes(b"")
    if kind in IMAGE_KINDS:
        return None
    dirty.changed.add(stem)
    if kind.startswith("click_"):
        return _add_click(dirty, stem, 0 if "xmin" in kind else 1)
    if kind in XML_ENCODINGS:
        dirty.encodings[stem] = XML_ENCODINGS[kind]
        dirty.trees[stem].find("folder").text = FOLDER_TEXT[dirty.encodings[stem]]
        return None
    if kind == "filename_names_no_file":  # the images were renamed after annotating
        dirty.trees[stem].find("filename").text = f"DSC_{1000 + number}.JPG"
        return None
    if kind == "filename_names_other_image":  # an XML copied from another image's
        dirty.trees[stem].find("filename").text = f"{dirty.val_stems[number]}.jpg"
        return None
    return _edit_first_object(dirty, stem, kind)


def _minority_case(dirty: DirtySet, first: str, pool: list[str]) -> None:
    """The first file's first class, capitalised there and in two later files (3 objects)."""
    name = dirty.objects(first)[0].findtext("name")
    later = [s for s in pool if any(o.findtext("name") == name for o in dirty.objects(s))][:2]
    for stem in [first, *later]:
        index = next(i for i, o in enumerate(dirty.objects(stem)) if o.findtext("name") == name)
        dirty.objects(stem)[index].find("name").text = name.capitalize()
        dirty.changed.add(stem)
        if stem in pool:
            pool.remove(stem)
        dirty.truth.append({"kind": "minority_case_first_file", "stem": stem, "object": index})


def _write_xml(dirty: DirtySet, stem: str) -> None:
    tree = dirty.trees[stem]
    ET.indent(tree, "  ")
    text = ET.tostring(tree, encoding="unicode") + "\n"
    encoding = dirty.encodings.get(stem)
    if encoding == "cp1252":
        data = text.encode("cp1252")
    elif encoding == "gbk":
        data = ('<?xml version="1.0" encoding="GBK"?>\n' + text).encode("gbk")
    else:
        data = (b"\xef\xbb\xbf" if encoding == "bom" else b"") + text.encode("utf-8")
    (dirty.root / "Annotations" / f"{stem}.xml").write_bytes(data)


def build_dirty_set(out: Path, n_train: int, n_val: int, seed: int) -> list[dict]:
    """Write the demo set to ``out`` and inject :data:`INJECT` into training files.

    Returns:
        the truth: one ``{"kind", "stem", "object"}`` per injected defect (object: the index of
        the object it concerns in its XML, None for file-level defects).
    """
    root = synthesize_detection(out, n_train, n_val, width_range=(160, 320), seed=seed, force=True)
    stems = sorted(path.stem for path in (root / "Annotations").glob("*.xml"))
    trees = {stem: ET.parse(root / "Annotations" / f"{stem}.xml").getroot() for stem in stems}
    dirty = DirtySet(root, random.Random(seed), trees, stems[n_train:])
    pool = stems[1:n_train]
    dirty.rng.shuffle(pool)
    _minority_case(dirty, stems[0], pool)
    for kind, (count, _) in INJECT.items():
        if kind == "minority_case_first_file":
            continue
        for number in range(count):
            stem = pool.pop()
            index = _inject_one(dirty, stem, kind, number)
            dirty.truth.append({"kind": kind, "stem": stem, "object": index})
    for stem in sorted(dirty.changed):
        _write_xml(dirty, stem)
    return dirty.truth


# ---------------------------------------------------------------------------------------------
# Measuring


def _failure(error: BaseException) -> str:
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0][:300] if lines else ''}"


def _guarded(measure, *args) -> dict:
    """``measure(*args)``, or what stopped it (older code may lack a function or an option)."""
    try:
        return measure(*args)
    except Exception as e:
        return {"error": f"n/a ({_failure(e)})"}


def _said_about(issues: list, truth: list[dict]) -> list[list[str]]:
    """Per truth entry, the doctor kinds reported on that file (file-level) or that object."""
    by_stem: dict[str, list] = {}
    for issue in issues:
        path = Path(issue.path)
        if path.parent.name in ("Annotations", "JPEGImages"):
            by_stem.setdefault(path.stem, []).append(issue)
    return [
        sorted(
            {i.kind for i in by_stem.get(entry["stem"], []) if i.object_index == entry["object"]}
        )
        for entry in truth
    ]


def doctor_view(root: Path, truth: list[dict], deep: bool) -> dict:
    from edgevision.data.doctor.check import check_dataset

    start = time.perf_counter()
    report = check_dataset(root, deep=deep)
    seconds = time.perf_counter() - start
    said = _said_about(report.issues, truth)
    per_kind = {}
    for kind, (_, expected) in INJECT.items():
        rows = [s for entry, s in zip(truth, said, strict=True) if entry["kind"] == kind]
        others = Counter(k for s in rows for k in s if k != expected)
        per_kind[kind] = {"found": sum(expected in s for s in rows), "other_kinds": dict(others)}
    case_reasons = [i.reason for i in report.issues if i.kind == "class_case"]
    record_set = getattr(report, "record_set", None)
    return {
        "seconds": round(seconds, 3),
        "images": report.num_images,
        "objects": report.num_objects,
        "issues": len(report.issues),
        "summary": report.summary(),
        "per_kind": per_kind,
        "class_names": list(record_set.class_names) if record_set is not None else None,
        "class_case_example": case_reasons[0] if case_reasons else None,
    }


def training_view(root: Path, truth: list[dict]) -> dict:
    from edgevision.data.datasets.detect import DetectionDataset
    from edgevision.data.formats import load_dataset

    start = time.perf_counter()
    record_set, _ = load_dataset(root, split="train")
    dataset = DetectionDataset(record_set, imgsz=320, augment=False, cache="none")
    for index in range(len(dataset)):
        dataset[index]  # an image that fails to decode is flagged when first met
    seconds = time.perf_counter() - start
    skipped = {Path(path).stem: reason for path, reason in dataset.take_unreported_skips()}
    skipped_by_kind = {
        kind: Counter(
            skipped[e["stem"]] for e in truth if e["kind"] == kind and e["stem"] in skipped
        )
        for kind in IMAGE_KINDS
    }
    boxes = np.concatenate([r.boxes.reshape(-1, 4) for r in dataset.records])
    sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    report = getattr(dataset, "sanitize_report", None)
    return {
        "seconds": round(seconds, 3),
        "class_names": list(record_set.class_names),
        "usage": dataset.usage() if hasattr(dataset, "usage") else None,
        "sanitize_report": dict(report) if report is not None else None,
        "images_skipped": len(skipped),
        "skipped_by_kind": {k: dict(v) for k, v in skipped_by_kind.items()},
        "boxes_le_1px_in_records": int((sides <= 1).sum()),
    }


def _run_predict(weights: Path, source: Path, **options) -> dict:
    """One ``api.predict`` call: results, the ``skipped:`` lines printed, or why it stopped."""
    from edgevision import api

    printed = io.StringIO()
    results, aborted = [], None
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(printed):
            results = api.predict(str(weights), str(source), conf=0.001, **options)
    except TypeError as e:
        aborted = f"n/a ({_failure(e)})" if "unexpected keyword" in str(e) else _failure(e)
    except Exception as e:
        aborted = _failure(e)
    skipped = [line for line in printed.getvalue().splitlines() if line.startswith("skipped:")]
    return {
        "seconds": round(time.perf_counter() - start, 3),
        "images_predicted": len(results),
        "skipped_lines": skipped,
        "aborted": aborted,
        "results": results,
    }


def _box_sides(results: list) -> np.ndarray:
    boxes = [np.asarray(r.boxes, dtype=np.float64).reshape(-1, 4) for r in results]
    boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4))
    return np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def predict_view(root: Path, truth: list[dict], work: Path) -> dict:
    if str(REPO) not in sys.path:
        sys.path.append(str(REPO))  # after PYTHONPATH: an older edgevision there stays first
    import torch

    from tests.detector import write_checkpoint

    # One thread: on a shared 2-core machine two OpenMP threads waiting on each other's time
    # slices turn a 4 s run into minutes (the counts do not change, only the time).
    torch.set_num_threads(1)
    weights = write_checkpoint(work / "biased.pt")
    run = _run_predict(weights, root / "JPEGImages", save=False, save_json=False)
    stems = [m.group(0) for line in run["skipped_lines"] for m in [_STEM.search(line)] if m]
    kind_of = {e["stem"]: e["kind"] for e in truth if e["kind"] in IMAGE_KINDS}
    sides = _box_sides(run.pop("results"))
    return {
        **{key: value for key, value in run.items() if key != "skipped_lines"},
        "images_skipped": len(run["skipped_lines"]),
        "skipped_by_kind": dict(Counter(kind_of.get(stem, "not injected") for stem in stems)),
        "skipped_example": run["skipped_lines"][0] if run["skipped_lines"] else None,
        "boxes": int(len(sides)),
        "boxes_side_le_0": int((sides <= 0).sum()),
        "boxes_side_le_1": int((sides <= 1).sum()),
        "small_folder": small_folder_view(root, truth, weights, work),
    }


def small_folder_view(root: Path, truth: list[dict], weights: Path, work: Path) -> dict:
    """4 files (clean, PNG-as-jpg, truncated, 0-byte): ``save_json`` run, then ``strict``."""
    folder = work / "small"
    folder.mkdir()
    picks = {"clean": "synth_000000"}
    for kind in ("png_as_jpg", "truncated_jpeg", "zero_byte_jpeg"):
        picks[kind] = next(e["stem"] for e in truth if e["kind"] == kind)
    for stem in picks.values():
        (folder / f"{stem}.jpg").write_bytes((root / "JPEGImages" / f"{stem}.jpg").read_bytes())
    project = work / "runs"
    saved = _run_predict(weights, folder, save=False, save_json=True, project=str(project))
    listed = project / "exp" / "skipped.json"
    strict = _run_predict(weights, folder, save=False, save_json=False, strict=True)
    return {
        "files": len(picks),
        "images_predicted": saved["images_predicted"],
        "images_skipped": len(saved["skipped_lines"]),
        "aborted": saved["aborted"],
        "skipped_json_entries": len(json.loads(listed.read_text())) if listed.exists() else None,
        "strict_outcome": strict["aborted"] or f"ran: {strict['images_predicted']} predicted",
    }


def deep_json_view(work: Path) -> dict:
    from edgevision.data.doctor.check import check_dataset

    folder = work / "deep_coco"
    (folder / "annotations").mkdir(parents=True)
    nested = "[" * DEEP_JSON_LEVELS + "]" * DEEP_JSON_LEVELS
    text = '{"images": ' + nested + ', "categories": []}'
    (folder / "annotations" / "instances_train.json").write_text(text)
    start = time.perf_counter()
    try:
        report = check_dataset(folder)
        outcome = f"no exception: {len(report.issues)} issues {report.summary()}"
    except Exception as e:  # RecursionError included: that is what is being measured
        outcome = _failure(e)
    return {"outcome": outcome, "seconds": round(time.perf_counter() - start, 3)}


# ---------------------------------------------------------------------------------------------
# Report


def print_doctor_table(doctor: dict) -> None:
    """Per injected kind: found with the expected kind (header, deep), what else was said."""
    views = [doctor[mode] for mode in MODES]
    print(
        f"\n{'injected kind':<28} {'n':>3}  {'expected kind':<18} {'hdr':>4} {'deep':>4}  also said"
    )
    for kind, (count, expected) in INJECT.items():
        rows = [view.get("per_kind", {}).get(kind, {}) for view in views]
        found = [row.get("found", "n/a") for row in rows]
        said = [row.get("other_kinds") or "" for row in rows]
        also = said[0] if said[0] == said[1] else f"header {said[0] or '-'}, deep {said[1] or '-'}"
        print(f"{kind:<28} {count:>3}  {expected:<18} {found[0]:>4} {found[1]:>4}  {also}")
    for mode, view in doctor.items():
        if "error" in view:
            print(f"{mode}: {view['error']}")
            continue
        print(
            f"{mode}: {view['images']} images, {view['objects']} objects, {view['issues']} issues "
            f"in {view['seconds']:.2f} s; classes {view['class_names']}\n  summary {view['summary']}"
        )
    print(f"class_case example: {views[0].get('class_case_example')}")


def print_views(result: dict) -> None:
    training, predict = result["training"], result["predict"]
    print(f"\ntraining (split train): usage {training.get('usage', training.get('error'))}")
    print(f"  sanitize_report {training.get('sanitize_report')}")
    print(f"  skipped per injected kind {training.get('skipped_by_kind')}")
    print(f"  boxes <= 1 px reaching training {training.get('boxes_le_1px_in_records')}")
    whole = {key: value for key, value in predict.items() if key != "small_folder"}
    print(f"\npredict JPEGImages/: {whole}\npredict 4-file folder: {predict.get('small_folder')}")
    print(f"\ndeep COCO JSON ({DEEP_JSON_LEVELS:,} levels): {result['deep_json']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/dirty_voc"))
    parser.add_argument("--json", type=Path, default=None, help="write every number here")
    parser.add_argument("--n-train", type=int, default=240)
    parser.add_argument("--n-val", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"edgevision from {edgevision.__file__}")
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    truth = build_dirty_set(args.out, args.n_train, args.n_val, args.seed)
    result = {"edgevision": edgevision.__file__, "seed": args.seed, "n_train": args.n_train}
    result.update(n_val=args.n_val, load_before=os.getloadavg(), truth=truth)
    result["injected"] = {kind: count for kind, (count, _) in INJECT.items()}
    doctor = {mode: _guarded(doctor_view, args.out, truth, mode == "deep") for mode in MODES}
    result["doctor"] = doctor
    print_doctor_table(doctor)
    result["training"] = _guarded(training_view, args.out, truth)
    with tempfile.TemporaryDirectory() as tmp:
        result["predict"] = _guarded(predict_view, args.out, truth, Path(tmp))
        result["deep_json"] = _guarded(deep_json_view, Path(tmp))
    print_views(result)
    result["load_after"] = os.getloadavg()
    print(f"load average after: {result['load_after']}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
