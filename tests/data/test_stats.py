"""Dataset statistics: exact counts and percentiles on a hand-built set, text, JSON and plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.stats import dataset_stats, format_stats, plot_stats, save_stats

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _record(name: str, boxes, labels, width=200, height=100) -> ImageRecord:
    return ImageRecord(
        Path(f"/data/{name}.jpg"), width, height, np.array(boxes, float).reshape(-1, 4), labels
    )


@pytest.fixture
def record_set() -> RecordSet:
    records = [
        # 10x10 small, exactly 32x32 (medium: small is "< 32^2"), 50x20 small (1000 px^2)
        _record("a", [[0, 0, 10, 10], [5, 5, 37, 37], [0, 0, 50, 20]], [0, 0, 1]),
        # exactly 96x96 is large; the second box is written with swapped corners (40x30)
        _record("b", [[0, 0, 96, 96], [60, 50, 20, 20]], [1, 2], width=300, height=150),
        _record("c", [], []),  # a negative image
    ]
    return RecordSet(records, ["car", "bus", "van", "tram"], Path("/data"), "voc")


def test_counts_classes_and_objects_per_image(record_set):
    stats = dataset_stats(record_set)
    assert (stats["num_images"], stats["num_objects"], stats["num_classes"]) == (3, 5, 4)
    assert stats["images_without_objects"] == 1
    assert stats["classes"] == [
        {"name": "car", "instances": 2, "images": 1},
        {"name": "bus", "instances": 2, "images": 2},
        {"name": "van", "instances": 1, "images": 1},
        {"name": "tram", "instances": 0, "images": 0},  # listed, so a missing class shows
    ]
    assert stats["objects_per_image"] == {
        "mean": round(5 / 3, 4),
        "max": 3,
        "histogram": [1, 0, 1, 1],
    }


def test_box_distributions_and_coco_buckets_are_exact(record_set):
    stats = dataset_stats(record_set)
    widths = np.array([10, 32, 50, 96, 40])
    assert stats["box_width"]["p50"] == 40 and stats["box_width"]["mean"] == widths.mean()
    assert stats["box_height"]["p0"] == 10 and stats["box_height"]["p100"] == 96
    assert stats["box_area"]["p50"] == 1024
    assert stats["box_aspect"]["p100"] == 2.5  # 50 / 20
    assert stats["box_width"]["p25"] == float(np.percentile(widths, 25))
    assert stats["coco_sizes"] == {
        "small": {"count": 2, "share": 0.4},  # 10x10, 50x20
        "medium": {"count": 2, "share": 0.4},  # 32x32, 40x30
        "large": {"count": 1, "share": 0.2},  # 96x96
    }
    assert stats["image_width"]["p100"] == 300


def test_text_table_is_aligned_and_complete(record_set):
    text = format_stats(dataset_stats(record_set))
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("class"))
    class_table = lines[first : first + 5]
    assert len({len(line) for line in class_table}) == 1  # right-aligned columns: same width
    assert class_table[1].split() == ["car", "2", "40.0%", "1"]
    assert "small 2 (40.0%)  medium 2 (40.0%)  large 1 (20.0%)" in text
    assert "objects per image: 0:1  2:1  3:1" in text


def test_save_stats_writes_json_text_and_five_plots_atomically(record_set, tmp_path):
    paths = save_stats(record_set, tmp_path / "out")
    names = [p.name for p in paths]
    assert names == [
        "stats.json",
        "stats.txt",
        "class_counts.png",
        "box_wh.png",
        "box_area.png",
        "box_aspect.png",
        "objects_per_image.png",
    ]
    assert json.loads(paths[0].read_text()) == dataset_stats(record_set)
    assert paths[1].read_text() == format_stats(dataset_stats(record_set))
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in paths[2:])
    assert not list((tmp_path / "out").glob(".*.tmp"))  # no temporary left behind


def test_an_empty_dataset_gives_zeros_not_errors(tmp_path):
    empty = RecordSet([], ["car"], Path("/data"), "voc")
    stats = dataset_stats(empty)
    assert stats["num_objects"] == 0 and stats["box_width"] is None
    assert stats["coco_sizes"]["small"] == {"count": 0, "share": 0.0}
    assert "box width" in format_stats(stats)
    assert len(plot_stats(empty, tmp_path)) == 5
