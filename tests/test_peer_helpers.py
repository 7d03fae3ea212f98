"""The pieces of the peer benchmarks that judge both sides: the classification score and the
driver call that reads a peer's result line (benchmarks/peer_classify.py, peer_driver.py)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.append(str(BENCHMARKS))  # the benchmark scripts import each other by file name
peer_classify = importlib.import_module("peer_classify")
peer_driver = importlib.import_module("peer_driver")


def test_score_reports_top1_and_the_mean_of_per_class_accuracies():
    truth = {"a": "car", "b": "car", "c": "car", "d": "car", "e": "digit7", "f": "digit7"}
    predicted = {"a": "car", "b": "car", "c": "car", "d": "digit7", "e": "car", "f": "digit7"}
    result = peer_classify.score(truth, predicted, ["car", "digit7"])
    assert result["top1"] == pytest.approx(4 / 6, abs=1e-4)
    assert result["per_class_acc"] == {"car": 0.75, "digit7": 0.5}
    assert result["mean_class_acc"] == pytest.approx(0.625)  # not top-1: small classes count
    assert result["test_images"] == 6


def test_score_refuses_a_class_the_set_does_not_have():
    with pytest.raises(SystemExit, match=r"classes the set does not have: \['boat'\]"):
        peer_classify.score({"a": "car"}, {"a": "boat"}, ["car"])


def test_score_refuses_a_missing_prediction():
    with pytest.raises(SystemExit, match="1 test images without a prediction, e.g. b"):
        peer_classify.score({"a": "car", "b": "car"}, {"a": "car"}, ["car"])


def test_the_driver_result_is_its_last_result_line():
    driver = (
        "import json, os, sys; print('PEER_RESULT {\"old\": 1}'); print('training...');"
        "print('PEER_RESULT ' + json.dumps([sys.argv[1:], os.environ['YOLO_OFFLINE']]))"
    )
    result = peer_driver.run_peer_driver(sys.executable, driver, ["x", "2"])
    assert result == [["x", "2"], "1"]  # the peer runs offline


@pytest.mark.parametrize(
    "driver", ["import sys; print('boom', file=sys.stderr); sys.exit(3)", "print('no result')"]
)
def test_a_failed_driver_stops_with_its_stderr(driver):
    with pytest.raises(SystemExit, match="Ultralytics run failed"):
        peer_driver.run_peer_driver(sys.executable, driver, [])
