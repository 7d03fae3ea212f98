"""Pascal VOC, the XML side: one annotation file's bytes to an element tree, and text to numbers.

XML is parsed with defusedxml: entity declarations and external references are refused before
any expansion, and files too large or not regular are refused before they are read. Encodings
declared in the prolog, and undeclared non-UTF-8 bytes, are decoded with Python's codecs when
expat cannot. The number helpers turn ``<size>``, ``<bndbox>`` and flag texts into values, with
VOC's 1-based pixel indices mapped to the 0-based frame (``x0 = xmin - 1, x1 = xmax``); the
dataset reader that uses them is :mod:`edgevision.data.formats.voc`.
"""

from __future__ import annotations

import math
import os
import re
import stat
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

import defusedxml.ElementTree as SafeElementTree
import numpy as np
from defusedxml import DefusedXmlException, EntitiesForbidden

from edgevision.core.errors import DataError

# A VOC annotation is a few kB; anything this large is not one, and reading it whole would be a DoS.
_MAX_XML_BYTES = 64 * 1024 * 1024
# Tried in order when the bytes do not parse as declared: GBK files from Windows tools are common.
_FALLBACK_ENCODINGS = ("utf-8-sig", "gb18030", "latin-1")
_DECLARED_ENCODING = re.compile(rb"^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*[\"']([\w.:-]+)")
_PARSE_POSITION = re.compile(r":? line \d+, column \d+$")
_BOX_TAGS = ("xmin", "ymin", "xmax", "ymax")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
# PNG's limit (2**31 - 1); a larger <width> is not an image size, so the header is read instead.
_MAX_DIMENSION = 2**31 - 1
_FILE_HINT = "fix or remove the annotation file"


def parse_voc_xml(path: str | Path) -> Element:
    """Parse one annotation file safely, whatever its encoding.

    UTF-8 (with or without BOM), encodings declared in the prolog (``GBK``, ``ISO-8859-1``) and
    undeclared non-UTF-8 bytes (tried as UTF-8, then GB18030, then Latin-1) all parse.

    Raises:
        DataError: unreadable, corrupt (with the line when the parser gives it), or declaring XML
            entities (billion laughs, external entities), refused before any expansion.
    """
    path = Path(path)
    try:
        data = _read_bytes(path)
    except OSError as e:
        raise DataError(path, f"cannot read file ({e.strerror or e})", "check the path") from e
    return _parse_xml_bytes(data, path)


def _read_bytes(path: Path) -> bytes:
    """The file's bytes; DataError, before reading, for what cannot be an annotation."""
    with open(path, "rb") as file:
        status = os.fstat(file.fileno())
        if not stat.S_ISREG(status.st_mode):  # a device or pipe could stream forever
            raise DataError(path, "not a regular file", _FILE_HINT)
        if status.st_size > _MAX_XML_BYTES:
            raise DataError(path, "file is larger than 64 MiB, not a VOC annotation", _FILE_HINT)
        return file.read()


def _parse_xml_bytes(data: bytes, path: Path) -> Element:
    try:
        return _safe_fromstring(data)
    except EntitiesForbidden as e:
        raise DataError(path, "XML entity declarations are not allowed", _FILE_HINT) from e
    except DefusedXmlException as e:
        raise DataError(path, "XML external references are not allowed", _FILE_HINT) from e
    except ParseError as e:
        line = e.position[0] if getattr(e, "position", None) else None
        reason = f"not well-formed XML ({_PARSE_POSITION.sub('', str(e))})"
        raise DataError(path, reason, _FILE_HINT, line=line) from e


def _safe_fromstring(data: bytes) -> Element:
    """defusedxml parse (entity declarations and external references raise; nothing expands).

    When expat cannot decode the bytes, the text Python's codecs decode is parsed instead.
    """
    try:
        return _defused_parse(data)
    except DefusedXmlException:
        raise  # refused on purpose: decoding differently must not get it past the check
    except (ParseError, ValueError, LookupError):
        # Expat knows UTF-8/16 and single-byte codecs; GBK and mislabelled files need Python's.
        # A str is parsed as UTF-8 whatever its prolog declares.
        return _defused_parse(_decode(data))


def _defused_parse(data: bytes | str) -> Element:
    """``defusedxml.ElementTree.fromstring``, with expat feeding the C tree builder directly.

    defusedxml's pure-Python parser sends every element through methods that only rewrite
    namespaced names and reorder attributes. For a document that mentions no namespace the
    tree is the same without them, and reading 10,000 annotations takes about a fifth less time.
    defusedxml's entity and external-reference handlers stay installed either way.
    """
    parser = SafeElementTree.XMLParser(target=TreeBuilder())
    marks = (b"xmlns", b"xml:", b"\x00") if isinstance(data, bytes) else ("xmlns", "xml:")
    if not any(mark in data for mark in marks):  # NUL bytes: UTF-16, where the marks hide
        parser.parser.ordered_attributes = False  # the C builder takes attributes as a dict
        parser.parser.StartElementHandler = parser.target.start
        parser.parser.EndElementHandler = parser.target.end
    parser.feed(data)
    return parser.close()


def _decode(data: bytes) -> str:
    """The text of ``data``: declared encoding first (Python's codecs), then the fallbacks."""
    return data.decode(_codec_for(data))


def _codec_for(data: bytes) -> str:
    """The codec :func:`_decode` reads ``data`` with: the declared one when it decodes the bytes
    to text expat can take, else the first fallback that does (Latin-1 maps every byte)."""
    match = _DECLARED_ENCODING.match(data[:256])
    declared = (match.group(1).decode("ascii"),) if match else ()
    for encoding in declared + _FALLBACK_ENCODINGS[:-1]:
        if _decodes(data, encoding):
            return encoding
    return _FALLBACK_ENCODINGS[-1]


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        # UTF-7 and the escape codecs can yield lone surrogates, which expat cannot take.
        data.decode(encoding).encode("utf-8")
    except (ValueError, LookupError):  # UnicodeError is a ValueError ("punycode" raises it)
        return False
    return True


def encoding_note(data: bytes) -> str | None:
    """What is not plain UTF-8 about an annotation file's bytes, or None: a byte-order mark, a
    declared non-UTF-8 encoding, or bytes that are not UTF-8 (with the codec that read them)."""
    match = _DECLARED_ENCODING.match(data[:256])
    declared = match.group(1).decode("ascii") if match else None
    if declared is not None and declared.lower().replace("_", "-") not in ("utf-8", "utf8"):
        used = _codec_for(data)
        if used == declared:
            return f"declares encoding {declared}; decoded with it (most tools expect UTF-8)"
        return f"declares encoding {declared}, which does not decode it; decoded as {used}"
    if not _decodes(data, "utf-8"):
        said = "declares UTF-8 but is not" if declared else "is not UTF-8 and declares no encoding"
        return f"{said}; decoded as {_codec_for(data)}"
    if data.startswith(b"\xef\xbb\xbf"):
        return "starts with a UTF-8 byte-order mark; read as UTF-8"
    return None


def _line_of(data: bytes, tag: str, nth: int = 0) -> int | None:
    """1-based line of the ``nth`` ``<tag>`` in the raw file; searched only when reporting."""
    pattern = b"<" + re.escape(tag.encode()) + rb"[\s/>]"
    for index, match in enumerate(re.finditer(pattern, data)):
        if index == nth:
            return data.count(b"\n", 0, match.start()) + 1
    return None


def _dimension(text: str | None) -> tuple[int | None, bool]:
    """(int in 1..2**31-1, or None when missing/invalid; whether it was not written as an int)."""
    if text is None:
        return None, False
    text = text.strip()
    try:
        value = float(text)  # not int(): Python refuses int() of a 4300-digit string
    except ValueError:
        return None, False
    if not math.isfinite(value) or not 1 <= round(value) <= _MAX_DIMENSION:
        return None, False
    return int(round(value)), not (text.isascii() and text.isdigit())


def _box(bndbox: Element | None) -> list[float] | None:
    """``[x0, y0, x1, y1]`` in the 0-based frame, or None when a value is missing or bad."""
    if bndbox is None:
        return None
    texts = [bndbox.findtext(tag) for tag in _BOX_TAGS]
    if None in texts:
        return None
    try:
        xmin, ymin, xmax, ymax = (float(text) for text in texts)
    except ValueError:
        return None
    box = [xmin - 1.0, ymin - 1.0, xmax, ymax]
    # Records hold float32: a finite float64 such as 1e39 would become inf there.
    if not all(abs(value) <= _FLOAT32_MAX for value in box):  # False for nan and inf too
        return None
    return box


def _flag(text: str | None) -> bool:
    """VOC 0/1 flags; missing or empty means 0."""
    text = (text or "").strip()
    try:
        return float(text) != 0
    except ValueError:
        return text.lower() == "true"
