"""TIDE error breakdown: one error type at a time, identities with the COCO evaluator, counts."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from edgevision.analysis.errors import (
    TYPES,
    classify_errors,
    error_breakdown,
    fix_errors,
    format_error_breakdown,
    write_error_breakdown,
)
from edgevision.core.errors import ConfigError
from edgevision.eval.coco import (
    coco_evaluate,
    coco_precision,
    detections_to_coco,
    records_to_coco_gt,
)
from tests.eval.cases import make_record_set, random_case, record

ROOT = Path("/data/errors_case")
# Every box is 40 x 40 (COCO "medium"), so per size "medium" must equal the overall figures.
CAR_A, CAR_B, TRUCK, TUG = [0, 0, 40, 40], [50, 50, 90, 90], [55, 0, 95, 40], [5, 55, 45, 95]
FAR = [100, 100, 140, 140]  # overlaps nothing in a 200 x 200 image
CAR, TRUCK_CLASS, TUG_CLASS = 0, 1, 2


def _shifted(box: list[float], dx: float) -> list[float]:
    return [box[0] + dx, box[1], box[2] + dx, box[3]]


def _case(image_detections: list[list[tuple]], extra_objects=(), difficult=None):
    """Two images with a car, a truck and a tug each; detections as (box, score, class)."""
    records, detections = [], []
    for index, rows in enumerate(image_detections):
        objects = [(CAR_A, CAR), (CAR_B, CAR), (TRUCK, TRUCK_CLASS), (TUG, TUG_CLASS)]
        objects += list(extra_objects) if index == 0 else []
        boxes, labels = [box for box, _ in objects], [label for _, label in objects]
        flags = None if difficult is None or index else difficult
        records.append(record(ROOT, f"{index}.jpg", boxes, labels, flags, size=(200, 200)))
        detections.append(
            {
                "boxes": np.asarray([row[0] for row in rows], dtype=np.float64).reshape(-1, 4),
                "scores": np.asarray([row[1] for row in rows], dtype=np.float64),
                "classes": np.asarray([row[2] for row in rows], dtype=np.int64),
            }
        )
    return make_record_set(records, ROOT), detections


def _perfect(image: int) -> list[tuple]:
    """Exact boxes; scores interleave the two images so every class has a ranked list."""
    top = 0.9 - 0.05 * image
    return [
        (CAR_A, top, CAR),
        (CAR_B, top - 0.1, CAR),
        (TRUCK, top - 0.2, TRUCK_CLASS),
        (TUG, top - 0.3, TUG_CLASS),
    ]


ONE_ERROR_CASES = {
    # A car called a truck: the car is not missed, the truck gets no true positive.
    "classification": _case(
        [[*_perfect(0)[:1], (CAR_B, 0.8, TRUCK_CLASS), *_perfect(0)[2:]], _perfect(1)]
    ),  # fmt: skip
    # A car box shifted by 21 px: IoU 760 / 2440 = 0.31 with its car at every threshold.
    "localisation": _case(
        [[*_perfect(0)[:1], (_shifted(CAR_B, 21), 0.8, CAR), *_perfect(0)[2:]], _perfect(1)]
    ),  # fmt: skip
    # Both: a truck detection at IoU 0.31 with a car (the car itself is found), scored on top.
    "both": _case([[*_perfect(0), (_shifted(CAR_B, 21), 0.95, TRUCK_CLASS)], _perfect(1)]),
    # The same car twice, the copy scored above the second car.
    "duplicate": _case([[*_perfect(0), (CAR_A, 0.82, CAR)], _perfect(1)]),
    # A car on empty ground, scored above every true positive.
    "background": _case([[*_perfect(0), (FAR, 0.99, CAR)], _perfect(1)]),
    # A third car in image 0 that nothing detects.
    "missed": _case([_perfect(0), _perfect(1)], extra_objects=[([150, 150, 190, 190], CAR)]),
}


@pytest.mark.parametrize("kind", TYPES)
def test_one_error_type_costs_ap_alone(kind):
    record_set, detections = ONE_ERROR_CASES[kind]
    breakdown = error_breakdown(record_set, detections)
    assert breakdown["baseline"]["mAP50"] < 1.0
    for other in TYPES:
        delta = breakdown["delta"][other]
        if other == kind:
            assert delta["ap50"] > 0.01 and delta["ap50_95"] > 0.01
        else:
            assert delta == {"ap50": 0.0, "ap50_95": 0.0}, other
    # Every threshold sees the same single error, so ΔAP50-95 equals ΔAP50 here.
    assert breakdown["delta"][kind]["ap50_95"] == pytest.approx(breakdown["delta"][kind]["ap50"])
    fixed_total = breakdown["baseline"]["mAP50"] + breakdown["delta"][kind]["ap50"]
    assert fixed_total == pytest.approx(1.0)  # the only error fixed: perfect


def test_per_class_and_per_size_agree_with_the_overall_figures():
    record_set, detections = ONE_ERROR_CASES["both"]
    breakdown = error_breakdown(record_set, detections)
    per_class = breakdown["per_class"]
    assert per_class["truck"]["both"]["ap50"] > 0
    assert per_class["car"]["both"] == per_class["tug"]["both"] == {"ap50": 0.0, "ap50_95": 0.0}
    for kind in TYPES:
        for key in ("ap50", "ap50_95"):
            mean = np.mean([per_class[name][kind][key] for name in record_set.class_names])
            assert breakdown["delta"][kind][key] == pytest.approx(mean, abs=1e-12)
            assert breakdown["per_size"]["medium"][kind][key] == pytest.approx(
                breakdown["delta"][kind][key], abs=1e-12
            )
            assert math.isnan(breakdown["per_size"]["small"][kind][key])


@pytest.fixture(scope="module")
def random_set():
    return random_case(seed=11, root=ROOT, num_images=30)


@pytest.fixture(scope="module")
def random_breakdown(random_set):
    return error_breakdown(*random_set, conf=0.3, top_images=5)


@pytest.mark.parametrize("backend", ["faster_coco_eval", "pycocotools"])
def test_baseline_is_exactly_what_val_reports(random_set, random_breakdown, backend):
    record_set, detections = random_set
    coco = coco_evaluate(record_set, detections, backend=backend)
    breakdown = (
        random_breakdown
        if backend == "faster_coco_eval"
        else error_breakdown(record_set, detections, conf=0.3, top_images=5, backend=backend)
    )
    assert breakdown["baseline"] == {"mAP50": coco["mAP50"], "mAP50-95": coco["mAP50-95"]}
    assert breakdown["backend"] == backend
    for kind in TYPES:  # the two evaluators agree on every fixed evaluation too
        for key in ("ap50", "ap50_95"):
            expected = random_breakdown["delta"][kind][key]
            assert breakdown["delta"][kind][key] == pytest.approx(expected, abs=1e-9)
    sizes = {"small": "mAP_small", "medium": "mAP_medium", "large": "mAP_large"}
    for size, stat in sizes.items():
        assert breakdown["baseline_per_size"][size]["ap50_95"] == pytest.approx(
            coco[stat], abs=1e-12
        )
    per_class = [breakdown["baseline_per_class"][n]["ap50"] for n in record_set.class_names]
    np.testing.assert_allclose(per_class, coco["per_class_ap50"], rtol=0, atol=1e-12)


def test_random_set_loses_ap_to_every_type_and_no_fix_lowers_it(random_set, random_breakdown):
    """The oracle fixes only drop false positives, turn them into true positives or shrink the
    objects' count, none of which can lower COCO's interpolated precision."""
    record_set, _ = random_set
    values = [random_breakdown["delta"][kind][key] for kind in TYPES for key in ("ap50", "ap50_95")]
    for table in (random_breakdown["per_class"], random_breakdown["per_size"]):
        values += [row[kind][key] for row in table.values() for kind in TYPES for key in row[kind]]
    values = np.asarray(values)
    assert (values[~np.isnan(values)] >= 0).all()
    assert all(random_breakdown["delta"][kind]["ap50_95"] > 0 for kind in TYPES)
    for kind in TYPES:  # overall = mean over classes, at every key
        for key in ("ap50", "ap50_95"):
            rows = random_breakdown["per_class"].values()
            mean = np.nanmean([row[kind][key] for row in rows])
            assert random_breakdown["delta"][kind][key] == pytest.approx(mean, abs=1e-12)


@pytest.mark.parametrize("threshold", [0.5, 0.75, 0.95])
def test_fixing_every_type_gives_a_perfect_ap(random_set, threshold):
    record_set, detections = random_set
    errors = classify_errors(record_set, detections, threshold)
    fixed_set, fixed_detections = fix_errors(record_set, detections, errors, TYPES)
    precision = coco_precision(fixed_set, fixed_detections, iou_thresholds=[threshold])
    assert (precision["precision"][0, :, :, 0] == 1.0).all()


def test_per_threshold_precision_equals_the_ten_threshold_run(random_set):
    record_set, detections = random_set
    full = coco_precision(record_set, detections)
    for index, threshold in enumerate(full["iou_thresholds"][::3]):
        one = coco_precision(record_set, detections, iou_thresholds=[threshold])
        np.testing.assert_array_equal(one["precision"][0], full["precision"][3 * index])
    coco = coco_evaluate(record_set, detections)
    valid = full["precision"][:, :, :, 0]
    assert valid[valid > -1].mean() == pytest.approx(coco["mAP50-95"], abs=1e-15)


def _cocoeval_status(record_set, detections) -> dict[int, list[str]]:
    """pycocotools' own verdict per detection id and IoU threshold (area all, 100 detections)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = records_to_coco_gt(record_set)
        coco_gt.createIndex()
        results = coco_gt.loadRes(detections_to_coco(record_set, detections))
        evaluator = COCOeval(coco_gt, results, "bbox")
        evaluator.evaluate()
    status = {}
    for entry in evaluator.evalImgs:
        if entry is None or entry["aRng"] != evaluator.params.areaRng[0]:
            continue
        for column, det_id in enumerate(entry["dtIds"]):
            ignored, matches = entry["dtIgnore"][:, column], entry["dtMatches"][:, column]
            status[det_id] = [
                "ignored" if ignore else "tp" if match else "fp"
                for ignore, match in zip(ignored, matches, strict=True)
            ]
    return status


def test_matching_is_cocoevals(random_set):
    """Per detection and threshold, the verdict of pycocotools itself, ties and limits included."""
    record_set, detections = random_set
    rng = np.random.default_rng(0)
    busy = next(i for i, r in enumerate(record_set.records) if r.num_objects)
    crowded = dict(detections[busy])  # 150 near-copies of one object, tied scores: 100 count
    boxes = np.repeat(record_set.records[busy].boxes[:1].astype(np.float64), 150, axis=0)
    crowded["boxes"] = np.concatenate([crowded["boxes"], boxes + rng.normal(0, 2, boxes.shape)])
    crowded["scores"] = np.concatenate([crowded["scores"], np.round(rng.random(150), 1)])
    crowded["classes"] = np.concatenate([crowded["classes"], np.zeros(150, dtype=np.int64)])
    detections = [*detections[:busy], crowded, *detections[busy + 1 :]]
    expected = _cocoeval_status(record_set, detections)
    verdicts = {"tp": "tp", "ignored": "ignored", "uncounted": None}
    for index, threshold in enumerate(np.linspace(0.5, 0.95, 10)):
        errors = classify_errors(record_set, detections, threshold)
        kinds = np.concatenate([e.detection_type for e in errors]).tolist()
        ours = {det_id: verdicts.get(kind, "fp") for det_id, kind in enumerate(kinds, 1)}
        ours = {det_id: verdict for det_id, verdict in ours.items() if verdict is not None}
        assert ours == {det_id: verdict[index] for det_id, verdict in expected.items()}
    assert {"ignored", "fp", "tp"} <= {v for verdict in expected.values() for v in verdict}
    assert "uncounted" in kinds


def test_classify_errors_follows_tide_order_and_ignores_difficult_objects():
    difficult_box = [150, 150, 190, 190]
    rows = [
        *_perfect(0),
        (CAR_A, 0.7, CAR),  # duplicate of the first car
        (_shifted(TRUCK, 4), 0.6, CAR),  # car on the truck at IoU 0.82: classification
        (_shifted(CAR_B, 30), 0.5, CAR),  # IoU 0.14 with its car: localisation
        (FAR, 0.4, TUG_CLASS),  # background
        (difficult_box, 0.3, CAR),  # on the difficult car: ignored, neither right nor wrong
    ]
    record_set, detections = _case(
        [rows, []], extra_objects=[(difficult_box, CAR)], difficult=[0, 0, 0, 0, 1]
    )
    first, second = classify_errors(record_set, detections, 0.5)
    assert first.detection_type.tolist() == [
        "tp", "tp", "tp", "tp", "duplicate", "classification", "localisation", "background",
        "ignored",
    ]  # fmt: skip
    assert first.gt_index.tolist() == [0, 1, 2, 3, 0, 2, 1, -1, 4]
    assert first.matched.tolist() == [True, True, True, True, False]
    assert not first.missed.any() and first.ignored.tolist() == [False] * 4 + [True]
    assert second.missed.tolist() == [True] * 4 and second.detection_type.size == 0


def test_difficult_objects_are_never_charged_or_credited():
    difficult_box = [150, 150, 190, 190]
    rows = [*_perfect(0), (difficult_box, 0.99, CAR)]
    record_set, detections = _case(
        [rows, _perfect(1)], extra_objects=[(difficult_box, CAR), (FAR, TUG_CLASS)],
        difficult=[0, 0, 0, 0, 1, 1],
    )  # fmt: skip
    breakdown = error_breakdown(record_set, detections)
    assert breakdown["baseline"]["mAP50"] == 1.0
    assert all(breakdown["delta"][kind] == {"ap50": 0.0, "ap50_95": 0.0} for kind in TYPES)
    assert breakdown["counts"]["false_negatives"] == 0 and breakdown["worst_images"] == []


def test_only_cocos_first_hundred_detections_per_class_count():
    rows = [(FAR, 0.5 + i / 1000, CAR) for i in range(101)] + [(FAR, 0.1, TRUCK_CLASS)]
    record_set, detections = _case([rows, []])
    kinds = classify_errors(record_set, detections)[0].detection_type
    assert kinds[0] == "uncounted" and (kinds[1:] == "background").all()


def test_counts_and_worst_images_at_the_operating_confidence():
    first = [
        *_perfect(0)[:3],  # the tug is missed
        (FAR, 0.6, CAR),  # background
        (CAR_A, 0.55, CAR),  # duplicate
        (_shifted(TRUCK, 21), 0.5, TRUCK_CLASS),  # localisation: the truck detected twice
        (FAR, 0.2, TUG_CLASS),  # below conf: not counted
    ]
    second = [*_perfect(1)[:2], (CAR_A, 0.7, TRUCK_CLASS)]  # classification; truck, tug missed
    record_set, detections = _case([first, second])
    breakdown = error_breakdown(record_set, detections, conf=0.25, top_images=1)
    assert breakdown["counts"] == {
        "classification": 1, "localisation": 1, "both": 0, "duplicate": 1, "background": 1,
        "missed": 3, "false_negatives": 3, "true_positives": 5,
    }  # fmt: skip
    assert breakdown["worst_images"] == [
        {
            "index": 0, "file": "JPEGImages/0.jpg", "cost": 4, "classification": 0,
            "localisation": 1, "both": 0, "duplicate": 1, "background": 1, "missed": 1,
            "false_negatives": 1, "true_positives": 3,
        }
    ]  # fmt: skip
    assert error_breakdown(record_set, detections, conf=0.15)["counts"]["background"] == 2


def test_written_files_round_trip_with_nan_as_null(tmp_path):
    record_set, detections = ONE_ERROR_CASES["missed"]
    breakdown = error_breakdown(record_set, detections)
    assert math.isnan(breakdown["per_size"]["large"]["missed"]["ap50"])
    json_path, text_path = write_error_breakdown(breakdown, tmp_path / "run")
    loaded = json.loads(json_path.read_text())
    assert loaded["per_size"]["large"]["missed"] == {"ap50": None, "ap50_95": None}
    assert loaded["baseline"] == breakdown["baseline"]
    assert loaded["delta"] == breakdown["delta"] and loaded["counts"] == breakdown["counts"]
    assert loaded["definitions"].keys() == set(TYPES)
    text = text_path.read_text()
    assert text == format_error_breakdown(breakdown) + "\n" == format_error_breakdown(loaded) + "\n"
    assert "missed" in text and "JPEGImages/0.jpg" in text
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["errors.json", "errors.txt"]


def test_bad_arguments_say_what_to_use():
    record_set, detections = ONE_ERROR_CASES["missed"]
    with pytest.raises(ConfigError, match="iou_threshold"):
        classify_errors(record_set, detections, iou_threshold=0.05)
    with pytest.raises(ConfigError, match="unknown error types"):
        fix_errors(record_set, detections, classify_errors(record_set, detections), ["typo"])
    with pytest.raises(ConfigError, match="conf=1.5"):
        error_breakdown(record_set, detections, conf=1.5)
