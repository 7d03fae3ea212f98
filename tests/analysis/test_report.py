"""The run report is one offline page: every section its files call for, every string escaped,
every image inline; and a real headless Chromium renders it without a single network request."""

from __future__ import annotations

import base64
import csv
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from edgevision.analysis.report import _curve_groups, write_run_report
from edgevision.core.errors import DataError
from edgevision.viz.plots import plot_confusion_matrix, plot_pr_curves

HOSTILE = "<script>alert(1)</script>"
CLASSES = ["car", HOSTILE, 'tug "&" barge']
DETECT_SECTIONS = [
    "settings", "curves", "metrics", "per-class", "pr-curves", "confusion-matrix", "errors",
    "worst-images", "label-review", "speed",
]  # fmt: skip
CLASSIFY_SECTIONS = ["settings", "curves", "metrics", "per-class", "confusion-matrix"]
BROWSER_TIMEOUT_S = 60
MATPLOTLIB_BLUE = (31, 119, 180)  # the first line colour of every curve


class _Page(HTMLParser):
    """Section ids, every src/href, the tags seen and the text of each table cell."""

    def __init__(self, text: str):
        super().__init__()
        self.section_ids, self.links, self.tags, self.cells = [], [], set(), []
        self._in_cell = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self.section_ids.append(attributes.get("id"))
        self.links += [value for name, value in attrs if name in ("src", "href")]
        self._in_cell = tag == "td"

    def handle_endtag(self, tag):
        self._in_cell = self._in_cell and tag != "td"

    def handle_data(self, data):
        if self._in_cell:
            self.cells.append(data)


def _write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2))


def _write_results_csv(path: Path, columns: dict[str, list]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", *columns])
        for epoch, row in enumerate(zip(*columns.values(), strict=True), start=1):
            writer.writerow([epoch, *row])


def _write_image(path: Path, width: int, height: int, seed: int) -> None:
    image = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    cv2.imwrite(str(path), image)


def _make_detect_run(root: Path) -> Path:
    """What train + val + error analysis + label review + bench leave in a detection run."""
    run = root / "detect"
    (run / "val").mkdir(parents=True)
    settings = {"task": "detect", "model": "nano-s", "data": f"data/{HOSTILE}", "epochs": 3}
    (run / "args.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    _write_results_csv(run / "results.csv", {
        "train_cls": [0.9, 0.7, 0.6], "train_box": [1.3, 1.1, 1.0], "lr": [1e-3, 5e-4, 1e-4],
        "mAP50-95": [0.1, "", 0.3], "mAP50": [0.2, "", 0.5], "fitness": [0.1, 0.2, 0.3],
    })  # fmt: skip
    _write_json(run / "val" / "metrics.json", {"mAP50-95": 0.3, "mAP50": 0.5, "voc_mAP50": 0.51})
    (run / "val" / "metrics.txt").write_text(f"class  AP50\n{HOSTILE}  0.5\n")
    per_class = [{"class": name, "num_gt": 4, "ap50_95": 0.25, "ap50": 0.5} for name in CLASSES]
    _write_json(run / "val" / "per_class.json", per_class)
    curve = [np.array([1.0, 0.5]), np.array([1.0, 0.8]), np.zeros(0)]
    plot_pr_curves(curve, curve, CLASSES, run / "val" / "pr_curves.png", ap=[0.5, 0.4, np.nan])
    plot_confusion_matrix(np.eye(4) * 3, CLASSES, run / "val" / "confusion_matrix.png")
    _write_json(run / "errors.json", {
        "baseline": {"ap50": 0.5, "ap50_95": 0.3},
        "delta": {"classification": {"ap50": 0.02, "ap50_95": 0.01},
                  "localization": {"ap50": 0.01, "ap50_95": 0.09},
                  "missed": {"ap50": 0.05, "ap50_95": 0.04}},
        "per_class": {name: {"missed": 1, "background": 2} for name in CLASSES},
        "per_size": [{"size": "small", "ap50_95": 0.1}, {"size": "large", "ap50_95": 0.5}],
        "counts": {"missed": 3, "background": 7}, "conf": 0.25,
        "worst_images": [{"index": 4, "file": f"JPEGImages/{HOSTILE}.jpg", "cost": 3.5}],
    })  # fmt: skip
    _write_image(run / "worst_images.jpg", 3000, 900, seed=1)  # wider than the 1600 px limit
    with open(run / "label_review.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "object", "kind", "score", "class", "box", "suggested_class",
                         "suggested_box", "note", "accept"])  # fmt: skip
        for row in range(60):
            writer.writerow([f"img_{row:03d}.jpg", 0, "wrong_class", 1 - row / 100, HOSTILE,
                             "[1, 2, 30, 40]", "car", "", "", ""])  # fmt: skip
    _write_image(run / "label_review.jpg", 640, 320, seed=2)
    _write_json(run / "speed.json", [{"engine": "onnxruntime", "ms_per_image": 3.2, "batch": 1}])
    return run


def _make_classify_run(root: Path) -> Path:
    """What train (with its final val into ``val/``) leaves in a classification run."""
    run = root / "classify"
    (run / "val").mkdir(parents=True)
    (run / "args.yaml").write_text(yaml.safe_dump({"task": "classify", "model": "cls-x"}))
    _write_results_csv(run / "results.csv", {
        "train_ce": [1.6, 1.2], "train_acc": [0.3, 0.5], "lr": [1e-3, 1e-4], "top1": [0.4, 0.6],
        "top5": [0.9, 1.0], "val_loss": [1.5, 1.1], "fitness": [0.4, 0.6], "time_min": [0.1, 0.2],
        "loss $\\frac{$ $x$": [1.0, 0.5],  # broken mathtext: must be drawn as plain text
    })  # fmt: skip
    _write_json(run / "val" / "metrics.json", {
        "top1": 0.6, "top5": 1.0, "images": 10,
        "precision": {name: 0.5 for name in CLASSES}, "recall": {name: 0.75 for name in CLASSES},
    })  # fmt: skip
    (run / "val" / "metrics.txt").write_text("all 10 top-1 0.6\n")
    plot_confusion_matrix(np.eye(4), CLASSES, run / "val" / "confusion_matrix.png")
    return run


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {
        "detect": write_run_report(_make_detect_run(root)),
        "classify": write_run_report(_make_classify_run(root), title=f"cls {HOSTILE}"),
    }


def _embedded_images(page: _Page) -> list[np.ndarray]:
    images = []
    for link in page.links:
        if link.startswith("data:image/"):
            data = base64.b64decode(link.split(",", 1)[1])
            images.append(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
    return images


@pytest.mark.parametrize(("task", "expected"), [("detect", DETECT_SECTIONS),
                                                ("classify", CLASSIFY_SECTIONS)])  # fmt: skip
def test_sections_follow_the_files_and_nothing_is_fetched(reports, task, expected):
    text = reports[task].read_text(encoding="utf-8")
    page = _Page(text)
    assert page.section_ids == expected
    assert [link for link in page.links if link.startswith("#")] == [f"#{i}" for i in expected]
    assert all(link.startswith(("data:", "#")) for link in page.links), page.links
    assert '<link rel="icon" href="data:,">' in text  # no /favicon.ico request either
    assert "default-src 'none'; img-src data:" in text  # the browser refuses any other fetch
    outside_data = re.sub(r"data:[^\"]*", "", text)  # base64 may hold "//"
    for remote in ("http://", "https://", "url(", "//"):
        assert remote not in outside_data
    assert not list(reports[task].parent.glob(".report.html.*"))  # the atomic write cleaned up


@pytest.mark.parametrize("task", ["detect", "classify"])
def test_strings_from_files_are_escaped(reports, task):
    text = reports[task].read_text(encoding="utf-8")
    page = _Page(text)
    assert "script" not in page.tags and "<script" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert HOSTILE in page.cells and 'tug "&" barge' in page.cells  # shown as text, intact


def test_every_image_is_inline_decodable_and_at_most_1600_wide(reports):
    images = _embedded_images(_Page(reports["detect"].read_text(encoding="utf-8")))
    # 3 curve groups + ΔAP bars + PR curves + confusion matrix + worst images + label review.
    assert len(images) == 8 and all(image is not None for image in images)
    assert max(image.shape[1] for image in images) == 1600  # worst_images.jpg, 3000 px, shrunk
    worst = [image for image in images if image.shape[1] == 1600][0]
    assert worst.shape[0] == 480  # aspect kept: 900 * 1600 / 3000


def test_detection_tables(reports):
    text = reports["detect"].read_text(encoding="utf-8")
    cells = _Page(text).cells
    # ΔAP rows are ordered by the AP50-95 gained: localization 0.09, missed 0.04, class 0.01.
    order = [cells.index(name) for name in ("localization", "missed", "classification")]
    assert order == sorted(order) and "ΔAP50-95" in text
    assert cells.count("img_049.jpg") == 1 and "img_050.jpg" not in cells
    assert "first 50 of 60 rows; all of them are in label_review.csv" in text
    assert "onnxruntime" in cells and "3.2" in cells and "0.25" in cells  # speed, errors conf
    assert f"JPEGImages/{HOSTILE}.jpg" in cells  # worst_images rows from errors.json


def test_classification_per_class_table_comes_from_nested_metrics(reports):
    cells = _Page(reports["classify"].read_text(encoding="utf-8")).cells
    first = cells.index(HOSTILE)
    assert cells[first : first + 3] == [HOSTILE, "0.5", "0.75"]


def test_every_results_column_is_plotted_once():
    rows = [
        {"epoch": "1", "train_ce": "1.5", "val_loss": "1.4", "top1": "0.2", "lr": "0.01",
         "train_acc": "0.3", "mAP50": "", "note": "warmup", "time_min": "0.1"},
        {"epoch": "2", "train_ce": "1.2", "val_loss": "1.1", "top1": "0.4", "lr": "0.005",
         "train_acc": "0.5", "mAP50": "0.6", "note": "", "time_min": "0.2"},
    ]  # fmt: skip
    epochs, groups = _curve_groups(rows)
    assert epochs == [1.0, 2.0]
    assert {name: list(series) for name, series in groups.items()} == {
        "losses": ["train_ce", "val_loss"],
        "metrics": ["top1", "train_acc", "mAP50"],
        "learning rate and time": ["lr", "time_min"],
    }  # the text column "note" is left out
    assert np.isnan(groups["metrics"]["mAP50"][0]) and groups["metrics"]["mAP50"][1] == 0.6


def test_unknown_shapes_and_extra_plots_still_render(tmp_path):
    """Files written by other versions: scalar deltas, a dict of speeds, a plot nobody claims."""
    _write_json(tmp_path / "errors.json", {
        "delta": {"missed": 0.1, "duplicate": None, "background": 0.3}, "notes": ["a", "b"],
    })  # fmt: skip
    _write_json(tmp_path / "speed.json", {"onnx": {"ms_per_image": 2.0}, "torch": {"fps": 9}})
    (tmp_path / "val").mkdir()
    _write_image(tmp_path / "val" / "oks_curve.png", 200, 100, seed=3)
    text = write_run_report(tmp_path).read_text(encoding="utf-8")
    page = _Page(text)
    assert page.section_ids == ["errors", "speed", "other-images"]
    assert page.cells[:6] == ["background", "0.3", "missed", "0.1", "duplicate", "–"]
    speed = page.cells.index("onnx")
    assert page.cells[speed:] == ["onnx", "2", "–", "torch", "–", "9"]
    assert "<h3>notes</h3><p>[&quot;a&quot;, &quot;b&quot;]</p>" in text
    assert "val/oks_curve.png" in text and len(_embedded_images(page)) == 2  # ΔAP bars + the plot


def test_a_val_run_folder_reports_itself(tmp_path):
    _write_json(tmp_path / "metrics.json", {"top1": 0.5})
    page = _Page(write_run_report(tmp_path).read_text(encoding="utf-8"))
    assert page.section_ids == ["metrics"]


def test_unusable_folders_and_files_are_named(tmp_path):
    with pytest.raises(DataError, match="no such run folder"):
        write_run_report(tmp_path / "missing")
    with pytest.raises(DataError, match="no run outputs found"):
        write_run_report(tmp_path)
    (tmp_path / "errors.json").write_text('{"delta": {\n  "missed": ,\n}')
    with pytest.raises(DataError, match=r"errors.json:2: not valid JSON"):
        write_run_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_the_report_needs_no_torch(reports, tmp_path):
    """analysis/ runs next to an exported model, where PyTorch is not installed."""
    shutil.copytree(reports["classify"].parent, tmp_path / "run")
    code = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch': raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from edgevision.analysis.report import write_run_report\n"
        f"write_run_report({str(tmp_path / 'run')!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# --- a real browser -------------------------------------------------------------------------------


def _browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium not installed: apt-get install -y chromium")
    return found


def _browse(page: Path, work: Path, *flags: str) -> subprocess.CompletedProcess:
    """Headless Chromium on ``page``; its own background traffic is resolved to nowhere."""
    command = [
        _browser(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={work / 'profile'}", *flags, page.as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def _page_requests(net_log: Path) -> list[str]:
    """URLs the page asked for. Chromium's own calls (time sync, sign-in) have no initiator."""
    log = json.loads(net_log.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start_job
        and "url" in event.get("params", {})
        and event["params"].get("initiator") != "not an origin"
    ]


@pytest.mark.parametrize(("task", "expected"), [("detect", DETECT_SECTIONS),
                                                ("classify", CLASSIFY_SECTIONS)])  # fmt: skip
def test_chromium_renders_every_section(reports, tmp_path, task, expected):
    dom = _browse(reports[task], tmp_path, "--dump-dom").stdout
    assert _Page(dom).section_ids == expected
    assert "<script" not in dom.lower() and "&lt;script&gt;alert(1)&lt;/script&gt;" in dom


def test_chromium_screenshot_shows_the_plots_and_no_request_leaves(reports, tmp_path):
    shot, net_log = tmp_path / "report.png", tmp_path / "net.json"
    _browse(reports["detect"], tmp_path, f"--screenshot={shot}", "--window-size=1280,4000",
            f"--log-net-log={net_log}")  # fmt: skip
    image = cv2.imread(str(shot))
    assert image.shape[:2] == (4000, 1280)
    assert (image.min(axis=2) < 200).mean() > 0.02  # text, tables and plots, not a blank page
    blue = np.abs(image[..., ::-1].astype(int) - MATPLOTLIB_BLUE).sum(axis=2) < 40
    assert blue.sum() > 500  # the inline curve PNGs were decoded and drawn
    assert _page_requests(net_log) == []


def test_the_net_log_check_sees_a_page_request(tmp_path):
    """Guards the check above: a page with one remote image is caught."""
    page = tmp_path / "remote.html"
    page.write_text('<!DOCTYPE html><img src="https://cdn.example.invalid/logo.png">')
    net_log = tmp_path / "net.json"
    _browse(page, tmp_path, "--dump-dom", f"--log-net-log={net_log}")
    assert _page_requests(net_log) == ["https://cdn.example.invalid/logo.png"]
