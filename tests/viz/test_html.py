"""HTML pieces: every string escaped, numbers readable, images inline and at most 1600 px wide."""

from __future__ import annotations

import base64
import re

import cv2
import numpy as np
import pytest

from edgevision.core.errors import DataError
from edgevision.viz.html import any_table, escape, format_value, image_uri, mapping_table, page


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "–"),
        (True, "true"),
        (3, "3"),
        (0.123456, "0.1235"),
        (6.049335e-05, "6.049e-05"),
        (12345.678, "12345.7"),
        (float("nan"), "nan"),
        ([1, "a"], '[1, "a"]'),
    ],
)
def test_format_value(value, text):
    assert format_value(value) == text


def test_escape_is_safe_inside_attributes():
    assert escape("<img src=\"x\" onerror='1'>&") == (
        "&lt;img src=&quot;x&quot; onerror=&#x27;1&#x27;&gt;&amp;"
    )


def _decode(uri: str) -> tuple[str, np.ndarray]:
    header, payload = uri.split(",", 1)
    data = base64.b64decode(payload)
    return header, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def test_image_uri_embeds_small_images_as_they_are_and_shrinks_wide_ones(tmp_path):
    rng = np.random.default_rng(0)
    small, wide, bitmap = tmp_path / "small.png", tmp_path / "wide.jpg", tmp_path / "b.bmp"
    cv2.imwrite(str(small), rng.integers(0, 255, (20, 30, 3), dtype=np.uint8))
    cv2.imwrite(str(wide), rng.integers(0, 255, (1000, 4000, 3), dtype=np.uint8))
    cv2.imwrite(str(bitmap), rng.integers(0, 255, (10, 10, 3), dtype=np.uint8))
    assert image_uri(small) == "data:image/png;base64," + base64.b64encode(
        small.read_bytes()
    ).decode("ascii")
    header, image = _decode(image_uri(wide))
    assert header == "data:image/jpeg;base64" and image.shape == (400, 1600, 3)
    header, image = _decode(image_uri(bitmap))
    assert header == "data:image/png;base64" and image.shape == (10, 10, 3)


def test_an_unreadable_image_is_named(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataError, match=r"broken.png: not a readable image"):
        image_uri(broken)


def test_long_mappings_are_split_into_side_by_side_tables():
    text = mapping_table({f"key{i}": i for i in range(40)}, max_rows=18)
    assert text.startswith('<div class="columns">') and text.count("<table>") == 3
    assert mapping_table({"a": 1}, max_rows=18).count("<table>") == 1


@pytest.mark.parametrize(
    ("value", "cells"),
    [
        ([{"engine": "onnx", "ms": 2.5}, {"engine": "pt", "batch": 4}],
         ["onnx", "2.5", "–", "pt", "–", "4"]),
        ({"small": {"ap": 0.1}, "large": {"ap": 0.5}}, ["small", "0.1", "large", "0.5"]),
        ({"missed": 3, "<b>": "x"}, ["missed", "3", "&lt;b&gt;", "x"]),
    ],
)  # fmt: skip
def test_any_table_renders_each_json_shape(value, cells):
    text = any_table(value)
    assert re.findall(r"<td[^>]*>(.*?)</td>", text) == cells


def test_page_is_a_closed_document_with_no_external_reference():
    text = page("<t>", [("a-b", "A & B", "<p>body</p>")], subtitle="s")
    assert text.startswith("<!DOCTYPE html>") and text.endswith("</html>\n")
    assert '<section id="a-b"><h2>A &amp; B</h2><p>body</p></section>' in text
    assert '<a href="#a-b">' in text and "<title>&lt;t&gt;</title>" in text
    assert "default-src 'none'" in text and '<link rel="icon" href="data:,">' in text
