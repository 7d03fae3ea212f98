"""The label-review CSV (``label_review.csv``): one schema for the finder that writes it, the user
who marks it, and the doctor that applies it.

Columns, in order: ``file`` (image path relative to the dataset root, POSIX separators),
``object`` (index of the object in the image's record; empty for a missing object), ``kind``
(missing, wrong_class, loose, duplicate, unsupported), ``score`` (0..1, how sure the finder is),
``class`` (the annotated class; empty for missing), ``box`` (the annotated ``x1 y1 x2 y2``, 0-based
continuous pixels as in the records), ``suggested_class``, ``suggested_box``, ``note`` and
``accept``, which the user fills with yes/y/true/1 (apply) or no/n/false/0 or nothing (leave).

Boxes are written with up to two decimals: a hundredth of a pixel is below any annotation
tool's precision, and the doctor compares the annotated box with that tolerance to tell whether
the file changed since the review list was made. Spreadsheets that save with ``;`` separators
are read too; extra columns (comments) are ignored.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from edgevision.core.errors import DataError
from edgevision.core.fileio import atomic_write_text

REVIEW_COLUMNS = (
    "file",
    "object",
    "kind",
    "score",
    "class",
    "box",
    "suggested_class",
    "suggested_box",
    "note",
    "accept",
)
REVIEW_KINDS = ("missing", "wrong_class", "loose", "duplicate", "unsupported")
ACCEPT_YES = ("yes", "y", "true", "1")
ACCEPT_NO = ("no", "n", "false", "0", "")
# What an accepted row must carry to be applied: kind -> (needs object, suggested class, box).
_NEEDS = {
    "missing": (False, True, True),
    "wrong_class": (True, True, False),
    "loose": (True, False, True),
    "duplicate": (True, False, False),
    "unsupported": (True, False, False),
}
_HINT = "correct the row (columns: " + ",".join(REVIEW_COLUMNS) + ")"

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class ReviewRow:
    """One row of a review CSV as read back (what :func:`read_review_rows` returns).

    Attributes:
        file: image path relative to the dataset root (POSIX), or absolute.
        object_index: object index in the image's record; None for a missing object.
        kind: one of :data:`REVIEW_KINDS`.
        score: how sure the finder was, 0..1.
        class_name: the annotated class ("" for missing).
        box: annotated (x1, y1, x2, y2) 0-based pixels, or None.
        suggested_class: the class to set or add ("" when none).
        suggested_box: the box to set or add, or None.
        note: the finder's explanation.
        accept: whether the user accepted the suggestion.
        line: 1-based line of the row in the CSV (0 when not read from a file).
    """

    file: str
    object_index: int | None
    kind: str
    score: float
    class_name: str
    box: Box | None
    suggested_class: str
    suggested_box: Box | None
    note: str
    accept: bool = False
    line: int = 0


def format_box(box: Iterable[float] | None) -> str:
    """``x1 y1 x2 y2`` with at most two decimals (integers stay integers); "" for None."""
    if box is None:
        return ""
    texts = []
    for value in box:
        text = f"{float(value):.2f}".rstrip("0").rstrip(".")
        texts.append("0" if text == "-0" else text)
    return " ".join(texts)


def _row_fields(row: ReviewRow) -> list[str]:
    return [
        row.file,
        "" if row.object_index is None else str(row.object_index),
        row.kind,
        f"{row.score:.4f}",
        row.class_name,
        format_box(row.box),
        row.suggested_class,
        format_box(row.suggested_box),
        row.note,
        "yes" if row.accept else "",
    ]


def write_review_rows(rows: Iterable[ReviewRow], path: str | Path) -> Path:
    """Write the CSV (header + one line per row) atomically; ``accept`` is "yes" or empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(REVIEW_COLUMNS)
    writer.writerows(_row_fields(row) for row in rows)
    return atomic_write_text(path, buffer.getvalue())


def read_review_rows(path: str | Path) -> list[ReviewRow]:
    """Read a review CSV, checking every row.

    Raises:
        DataError: the file is unreadable, lacks a column, or a row holds an unknown kind, a
            bad number, box or accept value, or (when accepted) lacks what its kind needs;
            the message names ``file:line`` and the column.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(path, f"cannot read the review CSV ({e})", "check the path") from e
    lines = text.splitlines()
    delimiter = ";" if lines and ";" in lines[0] and "," not in lines[0] else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [name for name in REVIEW_COLUMNS if name not in header]
    if missing:
        reason = f"the header lacks the columns {missing}"
        raise DataError(path, reason, f"the first line must name {','.join(REVIEW_COLUMNS)}", 1)
    reader.fieldnames = header
    rows = []
    for values in reader:
        if not any((value or "").strip() for value in values.values() if isinstance(value, str)):
            continue  # a blank line left by a spreadsheet
        rows.append(_parse_row(values, path, reader.line_num))
    return rows


def _parse_row(values: dict, path: Path, line: int) -> ReviewRow:
    def text(column: str) -> str:
        return (values.get(column) or "").strip()

    kind = text("kind")
    if kind not in REVIEW_KINDS:
        _fail(path, line, "kind", f"{kind!r} is not one of {list(REVIEW_KINDS)}")
    accept = text("accept").lower()
    if accept not in ACCEPT_YES + ACCEPT_NO:
        _fail(path, line, "accept", f"{text('accept')!r} is neither yes/y/true/1 nor no/n/false/0")
    row = ReviewRow(
        file=text("file"),
        object_index=_parse_index(text("object"), path, line),
        kind=kind,
        score=_parse_score(text("score"), path, line),
        class_name=text("class"),
        box=_parse_box(text("box"), path, line, "box", strict=False),
        suggested_class=text("suggested_class"),
        suggested_box=_parse_box(text("suggested_box"), path, line, "suggested_box", strict=True),
        note=values.get("note") or "",
        accept=accept in ACCEPT_YES,
        line=line,
    )
    if not row.file:
        _fail(path, line, "file", "is empty")
    if row.accept:
        _check_accepted(row, path)
    return row


def _check_accepted(row: ReviewRow, path: Path) -> None:
    """An accepted row must carry what applying its kind needs."""
    needs_object, needs_class, needs_box = _NEEDS[row.kind]
    if needs_object and (row.object_index is None or row.box is None):
        _fail(path, row.line, "object", f"a {row.kind} row needs the object index and its box")
    if needs_class and not row.suggested_class:
        _fail(path, row.line, "suggested_class", f"a {row.kind} row needs a suggested class")
    if needs_box and row.suggested_box is None:
        _fail(path, row.line, "suggested_box", f"a {row.kind} row needs a suggested box")


def _parse_index(value: str, path: Path, line: int) -> int | None:
    if not value:
        return None
    if not value.isdigit():
        _fail(path, line, "object", f"{value!r} is not a non-negative integer")
    return int(value)


def _parse_score(value: str, path: Path, line: int) -> float:
    try:
        score = float(value)
    except ValueError:
        score = float("nan")
    if not 0.0 <= score <= 1.0:  # False for nan too
        _fail(path, line, "score", f"{value!r} is not a number in [0, 1]")
    return score


def _parse_box(value: str, path: Path, line: int, column: str, strict: bool) -> Box | None:
    """Four finite numbers in corner order; ``strict``: with a positive area (a suggestion).

    An annotated box may have zero area (the data doctor reports those), a suggested one not.
    """
    if not value:
        return None
    parts = value.replace(",", " ").split()
    try:
        numbers = tuple(float(part) for part in parts)
    except ValueError:
        numbers = ()
    if len(numbers) != 4 or not all(abs(n) < float("inf") for n in numbers):
        _fail(path, line, column, f"{value!r} is not four numbers x1 y1 x2 y2")
    width, height = numbers[2] - numbers[0], numbers[3] - numbers[1]
    if width < 0 or height < 0 or (strict and min(width, height) == 0):
        _fail(path, line, column, f"{value!r} has x2 <= x1 or y2 <= y1")
    return numbers


def _fail(path: Path, line: int, column: str, reason: str) -> None:
    raise DataError(path, f"column {column}: {reason}", _HINT, line)
