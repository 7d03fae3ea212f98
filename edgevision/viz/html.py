"""Self-contained HTML pieces: escaped tables, inline images, sections and a page shell.

Everything a page needs travels inside it (images as ``data:`` URIs, CSS in a ``<style>``
element, no script), so a report opens offline, as an e-mail attachment or on an air-gapped
machine, and never calls home. Every string is escaped here because class names, file names
and settings come from user data. A Content-Security-Policy forbids scripts and any fetch
except ``data:``, so even a string that slipped past the escaping could neither run nor load.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from edgevision.core.errors import DataError
from edgevision.core.image import resize_image
from edgevision.core.version import __version__

MAX_IMAGE_WIDTH = 1600  # wider images are downscaled before embedding: the page stays small
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1280px; padding: 0 24px;
       color: #1d2330; background: #fff; }
header { border-bottom: 2px solid #d8dde6; padding: 16px 0 8px; }
h1 { margin: 0 0 4px; font-size: 24px; } h2 { margin: 28px 0 8px; font-size: 19px; }
h3 { margin: 16px 0 6px; font-size: 15px; }
.subtitle, .note { color: #5a6475; } .note { font-size: 13px; }
nav { margin: 10px 0; } nav a { margin-right: 14px; color: #1f5fbf; text-decoration: none; }
section { border-bottom: 1px solid #e6e9ef; padding-bottom: 12px; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { border: 1px solid #d8dde6; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f1f3f7; } tr:nth-child(even) td { background: #fafbfc; }
.columns { display: flex; flex-wrap: wrap; gap: 0 20px; align-items: flex-start; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 8px 0 16px; } img { max-width: 100%; height: auto; border: 1px solid #e6e9ef; }
figcaption { color: #5a6475; font-size: 13px; }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; font-size: 12px; }
"""

CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def escape(value: object) -> str:
    """``value`` formatted as text and HTML-escaped (quotes included: safe inside attributes)."""
    return html.escape(format_value(value), quote=True)


def format_value(value: object) -> str:
    """Readable text for a cell: 4 significant digits, "–" for a missing number, JSON for lists."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and abs(value) >= 1e4:
            return f"{value:.1f}"
        return f"{value:.4g}"
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, separators=(", ", ": "), default=str)
    return str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def data_uri(data: bytes, mime: str) -> str:
    """``data:<mime>;base64,...``: the bytes inline, so the page needs no other file."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image_uri(path: str | Path, max_width: int = MAX_IMAGE_WIDTH) -> str:
    """An image file as a data URI, downscaled to ``max_width`` pixels when wider.

    PNG and JPEG files that fit are embedded byte for byte; a wider one is shrunk (aspect kept) and re-encoded in its own format; any other format becomes PNG.
    """
    path = Path(path)
    data = path.read_bytes()
    native = "image/png" if data.startswith(PNG_SIGNATURE) else None
    native = "image/jpeg" if data.startswith(JPEG_SIGNATURE) else native
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(path, "not a readable image", "write it again or delete it")
    if native and image.shape[1] <= max_width:
        return data_uri(data, native)
    if image.shape[1] > max_width:
        height = max(1, round(image.shape[0] * max_width / image.shape[1]))
        image = resize_image(image, (max_width, height))
    extension, mime = (".jpg", "image/jpeg") if native == "image/jpeg" else (".png", "image/png")
    _, encoded = cv2.imencode(extension, image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return data_uri(encoded.tobytes(), mime)


def figure(source_uri: str, caption: str) -> str:
    """An inline image with its caption (the caption doubles as the alt text)."""
    text = escape(caption)
    return (
        f'<figure><img src="{html.escape(source_uri, quote=True)}" alt="{text}">'
        f"<figcaption>{text}</figcaption></figure>"
    )


def table(columns: Sequence[object], rows: Sequence[Sequence[object]]) -> str:
    """A table with a header row; numeric cells right-aligned."""
    head = "".join(f"<th>{escape(column)}</th>" for column in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{escape(cell)}</td>'
            if _is_number(cell)
            else f"<td>{escape(cell)}</td>"
            for cell in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def records_table(records: Sequence[Mapping], key_column: str | None = None) -> str:
    """Rows of flat dicts as a table; the columns are the union of the keys, in first-seen order."""
    columns: list[str] = [key_column] if key_column else []
    for record in records:
        columns += [key for key in record if key not in columns]
    return table(columns, [[record.get(column) for column in columns] for record in records])


def mapping_table(
    mapping: Mapping, key_header: str = "name", value_header: str = "value", max_rows: int = 0
) -> str:
    """A two-column table, one row per key; split into side-by-side tables past ``max_rows``.

    Splitting keeps a long list (fifty training settings) from pushing the rest of the page down.
    """
    rows = [[key, value] for key, value in mapping.items()]
    if not max_rows or len(rows) <= max_rows:
        return table([key_header, value_header], rows)
    chunks = [rows[start : start + max_rows] for start in range(0, len(rows), max_rows)]
    tables = "".join(table([key_header, value_header], chunk) for chunk in chunks)
    return f'<div class="columns">{tables}</div>'


def any_table(value: object, key_header: str = "name") -> str:
    """Render JSON-shaped data of unknown layout: rows of dicts, a dict of dicts or of values.

    Used for artifacts whose keys are not fixed (speed rows, error-breakdown counts), so a new
    field appears in the report without a code change.
    """
    if isinstance(value, list) and value and all(isinstance(row, Mapping) for row in value):
        return records_table(value)
    if isinstance(value, Mapping) and value and all(isinstance(v, Mapping) for v in value.values()):
        return records_table([{key_header: key, **row} for key, row in value.items()])
    if isinstance(value, Mapping):
        return mapping_table(value, key_header)
    return f"<p>{escape(value)}</p>"


def preformatted(text: str) -> str:
    return f"<pre>{html.escape(text, quote=True)}</pre>"


def details(summary: str, body: str) -> str:
    """A collapsed block (no script needed): long printouts stay out of the way."""
    return f"<details><summary>{escape(summary)}</summary>{body}</details>"


def note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def section(section_id: str, title: str, body: str) -> str:
    """``<section id=...>``: the id is the anchor the page's navigation links to."""
    anchor = html.escape(section_id, quote=True)
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{body}</section>'


def page(title: str, sections: Sequence[tuple[str, str, str]], subtitle: str = "") -> str:
    """A complete HTML document from ``(id, title, body)`` sections, with a navigation bar.

    The favicon is an empty data URI so the browser asks for no ``/favicon.ico``.
    """
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    links = "".join(
        f'<a href="#{html.escape(section_id, quote=True)}">{escape(heading)}</a>'
        for section_id, heading, _ in sections
    )
    body = "\n".join(section(*parts) for parts in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>{escape(title)}</title><style>{CSS}</style>'
        f"</head><body><header><h1>{escape(title)}</h1>"
        f'<div class="subtitle">{escape(subtitle)}</div>'
        f'<div class="note">written {stamp} by edgevision {escape(__version__)}</div>'
        f"<nav>{links}</nav></header>\n{body}\n</body></html>\n"
    )
