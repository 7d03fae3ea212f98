"""bench: timing helper, the per-machine peak cache, a tiny end-to-end run, bad input."""

from __future__ import annotations

import copy
import json

import pytest

from edgevision import bench as bench_module
from edgevision.bench import bench, cached_latency, cpu_name, format_bench, peak_flops, time_call
from edgevision.core.errors import ConfigError, UnknownModelError
from edgevision.models.blocks import fuse_conv_bn
from edgevision.models.zoo import build_model, count_flops, count_parameters


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "edgevision"


def test_time_call_counts_warmup_and_runs():
    calls = []
    timing = time_call(lambda: calls.append(1), runs=7, warmup=3)
    assert len(calls) == 10 and timing["runs"] == 7
    assert 0 <= timing["median_ms"] <= timing["p90_ms"]


def test_peak_is_measured_once_per_cpu_and_thread_count(cache, monkeypatch):
    measured = []

    def fake_probe(threads):
        measured.append(threads)
        return {"torch": 4e10, "onnxruntime": 5e10}

    monkeypatch.setattr(bench_module, "measure_peak_flops", fake_probe)
    assert peak_flops(2) == peak_flops(2) == 5e10 and measured == [2]
    peak_flops(1)
    peak_flops(2, refresh=True)
    assert measured == [2, 1, 2]
    stored = json.loads((cache / "peak.json").read_text())
    assert set(stored) == {f"{cpu_name()}|threads=1", f"{cpu_name()}|threads=2"}
    assert stored[f"{cpu_name()}|threads=1"]["torch"] == 4e10
    (cache / "peak.json").write_text("{damaged")
    assert peak_flops(2) == 5e10 and len(measured) == 4  # a damaged cache is measured again


def test_sgemm_probe_measures_both_engines_plausibly():
    probes = bench_module.measure_peak_flops(1, size=128, repeats=3)
    assert set(probes) == {"torch", "onnxruntime"}
    assert all(1e8 < value < 1e13 for value in probes.values())


def test_bench_reports_every_engine_and_caches_latency(cache, monkeypatch):
    monkeypatch.setattr(bench_module, "measure_peak_flops", lambda threads: {"torch": 1e11})
    result = bench("nano-s", imgsz=64, threads=1, runs=3, warmup=1)
    reference = build_model("nano-s", 80)
    assert result["params"] == count_parameters(reference)
    assert result["flops"] == count_flops(reference, 64) and "2 x MACs" in result["flops_kind"]
    assert set(result["latency"]) == {"pytorch", "onnx_fp32", "onnx_int8"}
    fp32 = result["latency"]["onnx_fp32"]["median_ms"]
    assert result["peak_fraction"]["onnx_fp32"] == pytest.approx(
        result["flops"] / (fp32 / 1000) / 1e11
    )
    assert cached_latency("nano-s", 64, threads=1) == {
        engine: timing["median_ms"] for engine, timing in result["latency"].items()
    }
    assert cached_latency("nano-s", 320, threads=1) is None
    assert "onnx_int8" in format_bench(result)


def test_bench_bad_input():
    with pytest.raises(ConfigError, match="--model NAME"):
        bench()
    with pytest.raises(ConfigError, match="multiple of 32"):
        bench("nano-s", imgsz=100)
    with pytest.raises(UnknownModelError, match="nano-s"):
        bench("nano-x")


def test_onnx_graph_counts_equal_the_pytorch_counts(tmp_path):
    from edgevision.bench import onnx_graph_counts
    from edgevision.models.blocks import fuse_conv_bn
    from edgevision.tasks import TASKS

    for name, size in (("nano-s", 96), ("cls-shufflenetv2-x0.5", 64)):
        model = fuse_conv_bn(build_model(name, 5).eval())
        meta = {"model_name": name, "class_names": list("abcde"), "num_classes": 5}
        task = "detect" if name == "nano-s" else "classify"
        path = TASKS[task].write_onnx(model, meta, tmp_path / f"{name}.onnx", size)
        counts = onnx_graph_counts(path, (size, size))
        assert counts["flops"] == count_flops(model, size)
        # The graph holds what forward uses (+ a few constants); a module it never calls is not there.
        assert counts["params"] == pytest.approx(count_parameters(model), rel=0.02)


def test_bench_of_an_onnx_file(cache, monkeypatch, tmp_path):
    from edgevision.tasks import TASKS

    monkeypatch.setattr(bench_module, "measure_peak_flops", lambda threads: {"onnxruntime": 1e11})
    model = build_model("nano-s", 3).eval()
    meta = {"model_name": "nano-s", "class_names": ["a", "b", "c"], "num_classes": 3}
    path = TASKS["detect"].write_onnx(model, meta, tmp_path / "m.onnx", 64)
    result = bench(weights=str(path), threads=1, runs=3, warmup=1)
    assert set(result["latency"]) == {"onnx_fp32", "onnx_int8"} and result["task"] == "detect"
    # The file holds the deployed graph: BN folded and the head's branches fused, whose one
    # predictor also multiplies its zero cross blocks (0.8 % more than the trained model here).
    deployed = fuse_conv_bn(copy.deepcopy(model))
    assert result["imgsz"] == 64 and result["flops"] == count_flops(deployed, 64)
    assert 1 < result["flops"] / count_flops(model, 64) < 1.01
    assert "onnx_int8" in result["text"]
