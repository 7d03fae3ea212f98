"""Pascal VOC: ``Annotations/*.xml`` + ``JPEGImages/`` + optional ``ImageSets/Main/*.txt``.

Pixel convention: VOC coordinates are 1-based inclusive pixel indices. A box covering pixels
``xmin..xmax`` spans the continuous interval ``[xmin - 1, xmax]`` in our 0-based frame, so we read
``x0 = xmin - 1, x1 = xmax`` (same for y) and write the inverse. Round trips are exact.

Reading is tolerant: a defect in one file becomes an :class:`~edgevision.data.issues.Issue` and the
reader goes on; only a root that is not a VOC dataset raises :class:`DataError`. Boxes are kept as
written (the data doctor fixes swapped or outside boxes). Discovered class names are sorted
alphabetically (case-insensitive, then exact), so the class ids do not depend on which file a class
first appears in. XML is parsed with defusedxml: entity declarations and external references are
refused, and no file name from an annotation can make the reader open a file outside the root.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import stat
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError, TreeBuilder
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeElementTree
import numpy as np
from defusedxml import DefusedXmlException, EntitiesForbidden

from ...errors import ConfigError, DataError
from ...fileio import atomic_write_text
from .. import issues as kinds
from ..imageio import IMAGE_SUFFIXES, read_image_size
from ..issues import Issue
from ..records import ImageRecord, RecordSet

# A VOC annotation is a few kB; anything this large is not one, and reading it whole would be a DoS.
_MAX_XML_BYTES = 64 * 1024 * 1024
# Tried in order when the bytes do not parse as declared: GBK files from Windows tools are common.
_FALLBACK_ENCODINGS = ("utf-8-sig", "gb18030", "latin-1")
_DECLARED_ENCODING = re.compile(rb"^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*[\"']([\w.:-]+)")
_PARSE_POSITION = re.compile(r":? line \d+, column \d+$")
_WINDOWS_ABSOLUTE = re.compile(r"^[A-Za-z]:/")
_BOX_TAGS = ("xmin", "ymin", "xmax", "ymax")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
# PNG's limit (2**31 - 1); a larger <width> is not an image size, so the header is read instead.
_MAX_DIMENSION = 2**31 - 1
_CASE_MODES = ("first", "lower")
_FIX_HINT = "run edgevision data check --fix"
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
    match = _DECLARED_ENCODING.match(data[:256])
    declared = (match.group(1).decode("ascii"),) if match else ()
    for encoding in declared + _FALLBACK_ENCODINGS[:-1]:
        try:
            text = data.decode(encoding)
            # UTF-7 and the escape codecs can yield lone surrogates, which expat cannot take.
            text.encode("utf-8")
            return text
        except (ValueError, LookupError):  # UnicodeError is a ValueError ("punycode" raises it)
            continue  # the next encoding is the answer to this one failing
    return data.decode(_FALLBACK_ENCODINGS[-1])  # Latin-1 maps every byte


def _line_of(data: bytes, tag: str, nth: int = 0) -> int | None:
    """1-based line of the ``nth`` ``<tag>`` in the raw file; searched only when reporting."""
    pattern = b"<" + re.escape(tag.encode()) + rb"[\s/>]"
    for index, match in enumerate(re.finditer(pattern, data)):
        if index == nth:
            return data.count(b"\n", 0, match.start()) + 1
    return None


class VocImageIndex:
    """The files of ``root/JPEGImages``, listed once, to resolve ``<filename>`` without stat calls.

    The data doctor uses the same resolution as the reader through :meth:`resolve`.
    """

    def __init__(self, root: str | Path):
        self.root = os.path.abspath(root)
        self.image_dir = os.path.join(self.root, "JPEGImages")
        self._root_real = os.path.realpath(self.root)
        try:
            names = os.listdir(self.image_dir)
        except FileNotFoundError:
            names = []  # every annotation then reports MISSING_IMAGE
        except OSError as e:
            raise DataError(self.image_dir, f"cannot list images ({e.strerror or e})") from e
        self._names = set(names)
        self._by_stem: dict[str, str] = {}
        for name in sorted(names, key=lambda n: (_suffix_rank(n), n)):
            stem, suffix = os.path.splitext(name)
            if suffix.lower() in IMAGE_SUFFIXES:
                self._by_stem.setdefault(stem, name)  # ".jpg" wins over ".png" for one stem

    def resolve(self, annotation: Element, xml_path: Path) -> tuple[Path | None, Issue | None]:
        """The image an annotation describes, or the issue that stops it being found.

        ``<filename>`` may hold a bare name, a name without extension, or a path (its base name
        is looked up in ``JPEGImages/``); when it matches nothing the XML stem is tried. An
        absolute path (POSIX, ``C:\\`` or UNC), or one that climbs with ``..`` and whose real path
        (relative to ``JPEGImages/``) leaves the root, is a PATH_ESCAPE: no file is opened.

        Returns:
            (absolute image path, None) or (None, Issue MISSING_IMAGE / PATH_ESCAPE).
        """
        path, issue = self._locate(annotation, xml_path)
        return (None if path is None else Path(path)), issue

    def _locate(self, annotation: Element, xml_path: Path) -> tuple[str | None, Issue | None]:
        """:meth:`resolve` with the path as a str: the reader skips one Path parse per image."""
        raw = (annotation.findtext("filename") or "").strip()
        posix = raw.replace("\\", "/")
        absolute = posix.startswith("/") or _WINDOWS_ABSOLUTE.match(posix) is not None
        if absolute or (".." in posix.split("/") and not self._inside_root(posix)):
            reason = f'<filename> "{raw}" points outside the dataset root; the file is not read'
            hint = "write the image's bare file name in <filename>"
            return None, Issue(kinds.PATH_ESCAPE, xml_path, reason, hint)
        name = self._find(posix.rsplit("/", 1)[-1]) or self._find(Path(xml_path).stem)
        if name is None:
            reason = f'image for <filename> "{raw}" not found in JPEGImages/'
            hint = "add the image or remove the annotation"
            return None, Issue(kinds.MISSING_IMAGE, xml_path, reason, hint)
        return os.path.join(self.image_dir, name), None

    def _find(self, base: str) -> str | None:
        if base in self._names:
            return base
        stem, suffix = os.path.splitext(base)
        return self._by_stem.get(stem if suffix.lower() in IMAGE_SUFFIXES else base)

    def _inside_root(self, posix: str) -> bool:
        candidate = os.path.realpath(os.path.join(self.image_dir, posix))
        return candidate == self._root_real or candidate.startswith(self._root_real + os.sep)


def _suffix_rank(name: str) -> int:
    suffix = os.path.splitext(name)[1].lower()
    return IMAGE_SUFFIXES.index(suffix) if suffix in IMAGE_SUFFIXES else len(IMAGE_SUFFIXES)


def voc_image_for(
    root: str | Path, annotation: Element, xml_path: Path
) -> tuple[Path | None, Issue | None]:
    """One-off :meth:`VocImageIndex.resolve`; build a ``VocImageIndex`` once for many files."""
    return VocImageIndex(root).resolve(annotation, xml_path)


class _ClassFolder:
    """Maps each written class name to one spelling (``case`` rule or the given list)."""

    def __init__(self, class_names: list[str] | None, case: str):
        if case not in _CASE_MODES:
            raise ConfigError(f'case must be "first" or "lower", got {case!r}')
        self.case = case
        self.given = None if class_names is None else _check_class_names(class_names)
        self.spelling: dict[str, str] = {}  # lower-case key -> the spelling used
        for name in self.given or []:
            self.spelling.setdefault(name.lower(), name)

    def fold(self, name: str) -> str | None:
        """The spelling to use for ``name``; None when a class list is given and lacks it."""
        if self.given is not None:
            return name if name in self.given else self.spelling.get(name.lower())
        key = name.lower()
        return self.spelling.setdefault(key, key if self.case == "lower" else name)

    def names(self) -> list[str]:
        if self.given is not None:
            return list(self.given)
        return sorted(set(self.spelling.values()), key=lambda name: (name.lower(), name))


def _check_class_names(class_names: list[str]) -> list[str]:
    names = list(class_names)
    if not names or not all(isinstance(name, str) and name.strip() for name in names):
        raise ConfigError(f"class_names must be a non-empty list of names, got {class_names!r}")
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ConfigError(f"class_names lists {duplicated} more than once")
    return names


@dataclass
class _Parsed:
    """One annotation file read, before class ids are known (they need every file)."""

    xml_path: Path
    image_path: str
    width: int
    height: int
    boxes: list[list[float]]
    names: list[str]
    difficult: list[bool]
    extra: dict


class _VocReader:
    """Reads annotation files one by one into :class:`_Parsed`, collecting issues."""

    def __init__(self, images: VocImageIndex, classes: _ClassFolder):
        self.images = images
        self.classes = classes
        self.issues: list[Issue] = []

    def read(self, xml_path: Path) -> _Parsed | None:
        loaded = self._load(xml_path)
        if loaded is None:
            return None
        data, annotation = loaded
        image_path, issue = self.images._locate(annotation, xml_path)
        if issue is not None:
            self.issues.append(issue)
            return None
        size = self._size(annotation, data, xml_path, image_path)
        if size is None:
            return None
        boxes, names, difficult = self._objects(annotation, data, xml_path)
        extra = {
            "folder": (annotation.findtext("folder") or "").strip(),
            "filename": annotation.findtext("filename") or "",
        }
        segmented = annotation.findtext("segmented")
        if segmented is not None:
            extra["segmented"] = segmented.strip()
        return _Parsed(xml_path, image_path, *size, boxes, names, difficult, extra)

    def _load(self, xml_path: Path) -> tuple[bytes, Element] | None:
        try:
            data = _read_bytes(xml_path)
            if not data.lstrip(b"\xef\xbb\xbf").strip():
                return self._add(kinds.EMPTY_ANNOTATION, xml_path, "file is empty", _FILE_HINT)
            annotation = _parse_xml_bytes(data, xml_path)
        except OSError as e:
            reason = f"cannot read file ({e.strerror or e})"
            return self._add(kinds.CORRUPT_ANNOTATION, xml_path, reason, _FILE_HINT)
        except DataError as e:
            return self._add(kinds.CORRUPT_ANNOTATION, xml_path, e.reason, e.hint, line=e.line)
        if annotation.tag != "annotation":
            reason = f"root element is <{annotation.tag}>, expected <annotation>"
            return self._add(kinds.CORRUPT_ANNOTATION, xml_path, reason, _FILE_HINT)
        if len(annotation) == 0:
            return self._add(kinds.EMPTY_ANNOTATION, xml_path, "<annotation> is empty", _FILE_HINT)
        return data, annotation

    def _size(
        self, annotation: Element, data: bytes, xml_path: Path, image_path: str
    ) -> tuple[int, int] | None:
        """(width, height) from ``<size>``; the image header when it is missing or zero."""
        size = annotation.find("size")
        texts = [None if size is None else size.findtext(tag) for tag in ("width", "height")]
        (width, width_float), (height, height_float) = (_dimension(text) for text in texts)
        if width is None or height is None:
            return self._size_from_header(texts, size is None, data, xml_path, image_path)
        for tag, text, value, was_float in (
            ("width", texts[0], width, width_float),
            ("height", texts[1], height, height_float),
        ):
            if was_float:
                reason = f'<{tag}> "{text.strip()}" is not an integer; read as {value}'
                line = _line_of(data, tag)
                self._add(kinds.FLOAT_SIZE, xml_path, reason, _FIX_HINT, line=line)
        return width, height

    def _size_from_header(
        self, texts: list, no_size: bool, data: bytes, xml_path: Path, image_path: str
    ) -> tuple[int, int] | None:
        try:
            width, height = read_image_size(image_path)
        except DataError as e:
            return self._add(kinds.UNREADABLE_IMAGE, image_path, e.reason, e.hint)
        written = "no <size>" if no_size else f"<size> is {texts[0]!r} x {texts[1]!r}"
        reason = f"{written}; read {width}x{height} from the image header"
        line = _line_of(data, "size")
        self._add(kinds.MISSING_SIZE, xml_path, reason, _FIX_HINT, line=line)
        return width, height

    def _objects(self, annotation: Element, data: bytes, xml_path: Path) -> tuple[list, list, list]:
        """Boxes (as written, 0-based frame), folded class names and difficult flags."""
        boxes, names, difficult = [], [], []
        objects = annotation.findall("object")
        for index, obj in enumerate(objects):
            name = (obj.findtext("name") or "").strip()
            box = _box(obj.find("bndbox"))
            kind, reason, hint, spelling = self._check_object(name, box)
            if kind is not None:
                line = _line_of(data, "object", index)
                self._add(kind, xml_path, reason, hint, object_index=index, line=line)
            if spelling is not None:
                boxes.append(box)
                names.append(spelling)
                difficult.append(_flag(obj.findtext("difficult")))
        if not objects:
            reason = "no <object>: kept as a negative (background) image"
            self._add(kinds.NO_OBJECTS, xml_path, reason)
        return boxes, names, difficult

    def _check_object(self, name: str, box: list[float] | None) -> tuple:
        """(issue kind, reason, hint, spelling to keep); kind None = fine, spelling None = drop."""
        if not name:
            return kinds.CORRUPT_ANNOTATION, "object has no <name>", _FILE_HINT, None
        if box is None:
            reason = f'object "{name}": <bndbox> lacks a coordinate or one is not a usable number'
            reason += " (nan, inf, or beyond +-3.4e38)"
            return kinds.CORRUPT_ANNOTATION, reason, _FILE_HINT, None
        spelling = self.classes.fold(name)
        if spelling is None:
            reason = f'class "{name}" is not in class_names; object left out'
            return kinds.UNKNOWN_CLASS, reason, "add it to class_names or relabel it", None
        if spelling != name:
            reason = f'class "{name}" read as "{spelling}"'
            return kinds.CLASS_CASE, reason, _FIX_HINT, spelling
        return None, "", "", spelling

    def _add(self, kind: str, path: Path, reason: str, hint: str = "", **where) -> None:
        self.issues.append(Issue(kind, Path(path), reason, hint, **where))


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


def read_voc(
    root: str | Path,
    split: str | None = None,
    class_names: list[str] | None = None,
    case: str = "first",
) -> tuple[RecordSet, list[Issue]]:
    """Read a VOC dataset into records plus the defects found on the way.

    Args:
        root: folder holding ``Annotations/`` and ``JPEGImages/``.
        split: None reads every ``Annotations/*.xml`` (sorted by stem); a name reads the stems
            of ``ImageSets/Main/{split}.txt`` in the order of that file.
        class_names: the classes to keep, in id order; objects of other classes become
            UNKNOWN_CLASS issues. None discovers the classes (sorted alphabetically).
        case: how spellings differing only in case fold: "first" keeps the first spelling seen
            (in file order), "lower" lower-cases. With ``class_names`` the list's spelling wins.

    Returns:
        (RecordSet with ``format="voc"``, issues in file order). Files with a fatal defect
        (corrupt, missing image, path escape) have an issue and no record.

    Raises:
        DataError: no ``Annotations/`` or ``JPEGImages/`` folder, no XML in ``Annotations/``, or
            no list file for ``split``.
        ConfigError: bad ``case``, ``split`` or ``class_names``.
    """
    classes = _ClassFolder(class_names, case)
    root_path = Path(os.path.abspath(root))
    for folder in ("Annotations", "JPEGImages"):
        if not (root_path / folder).is_dir():
            hint = "point DATA at the folder that holds Annotations/ and JPEGImages/"
            raise DataError(root_path, f"no {folder}/ folder, so this is not a VOC root", hint)
    reader = _VocReader(VocImageIndex(root_path), classes)
    xml_paths = _annotation_paths(root_path, split, reader.issues)
    parsed = [item for item in map(reader.read, xml_paths) if item is not None]
    names = classes.names()
    records = _build_records(parsed, {name: index for index, name in enumerate(names)})
    record_set = RecordSet(records, names, root_path, "voc", split or "all")
    return record_set, reader.issues


def _annotation_paths(root: Path, split: str | None, issues: list[Issue]) -> list[Path]:
    annotation_dir = root / "Annotations"
    by_stem = {
        name[:-4]: name for name in os.listdir(annotation_dir) if name.lower().endswith(".xml")
    }
    if not by_stem:
        hint = "point DATA at the VOC root whose Annotations/ holds the .xml files"
        raise DataError(annotation_dir, "no .xml annotation files", hint)
    if split is None:
        return [annotation_dir / by_stem[stem] for stem in sorted(by_stem)]
    list_path = _split_file(root, split)
    paths = []
    text = _decode(list_path.read_bytes())
    for line_number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()  # class lists hold "stem flag"; the stem comes first
        if not fields:
            continue
        if fields[0] in by_stem:
            paths.append(annotation_dir / by_stem[fields[0]])
            continue
        reason = f'"{fields[0]}" is listed but Annotations/{fields[0]}.xml does not exist'
        hint = "add the annotation or remove the line"
        issues.append(Issue(kinds.MISSING_ANNOTATION, list_path, reason, hint, line=line_number))
    return paths


def _split_file(root: Path, split: str) -> Path:
    if not split or split in (".", "..") or "/" in split or "\\" in split:
        raise ConfigError(f"split must be a list name such as 'train', got {split!r}")
    list_dir = root / "ImageSets" / "Main"
    list_path = list_dir / f"{split}.txt"
    if list_path.is_file():
        return list_path
    available = sorted(p.stem for p in list_dir.glob("*.txt")) if list_dir.is_dir() else []
    shown = ", ".join(available[:12]) + (", ..." if len(available) > 12 else "")
    hint = f"available splits: {shown}" if available else "run edgevision data split, or split=None"
    raise DataError(list_path, f'no list file for split "{split}"', hint)


def _build_records(parsed: list[_Parsed], class_ids: dict[str, int]) -> list[ImageRecord]:
    return [
        ImageRecord(
            image_path=item.image_path,
            width=item.width,
            height=item.height,
            boxes=np.array(item.boxes, dtype=np.float32).reshape(-1, 4),
            labels=np.array([class_ids[name] for name in item.names], dtype=np.int64),
            difficult=np.array(item.difficult, dtype=bool),
            annotation_path=item.xml_path,
            image_id=image_id,
            extra=item.extra,
        )
        for image_id, item in enumerate(parsed)
    ]


def _coordinate_text(value: float, offset: float) -> str:
    """Shortest decimal ``t`` with ``float32(float(t) - offset) == float32(value)``.

    The reader computes exactly ``float(t) - offset`` (offset 1 for xmin/ymin, 0 for xmax/ymax),
    so write -> read returns the same float32 (for any pixel value; sub-1e-6 magnitudes may
    round to 0 in ``value + 1``) and integers stay integers (VOC tools expect them).
    """
    target = np.float32(value)
    written = float(target) + offset
    for decimals in range(10):
        text = f"{written:.{decimals}f}"
        if np.float32(float(text) - offset) == target:
            return text
    return repr(written)


def record_to_xml(record: ImageRecord, class_names: list[str], folder: str = "JPEGImages") -> str:
    """One record as a VOC annotation document (objects in record order)."""
    lines = [
        "<annotation>",
        f"  <folder>{escape(folder)}</folder>",
        f"  <filename>{escape(record.image_path.name)}</filename>",
        "  <size>",
        f"    <width>{int(record.width)}</width>",
        f"    <height>{int(record.height)}</height>",
        "    <depth>3</depth>",
        "  </size>",
        f"  <segmented>{escape(str(record.extra.get('segmented', 0)))}</segmented>",
    ]
    for box, label, difficult in zip(record.boxes, record.labels, record.difficult, strict=True):
        x0, y0, x1, y1 = (float(v) for v in box)
        lines += [
            "  <object>",
            f"    <name>{escape(class_names[int(label)])}</name>",
            "    <pose>Unspecified</pose>",
            "    <truncated>0</truncated>",
            f"    <difficult>{int(bool(difficult))}</difficult>",
            "    <bndbox>",
            f"      <xmin>{_coordinate_text(x0, 1.0)}</xmin>",
            f"      <ymin>{_coordinate_text(y0, 1.0)}</ymin>",
            f"      <xmax>{_coordinate_text(x1, 0.0)}</xmax>",
            f"      <ymax>{_coordinate_text(y1, 0.0)}</ymax>",
            "    </bndbox>",
            "  </object>",
        ]
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


def write_voc(
    record_set: RecordSet,
    out_dir: str | Path,
    split: str | None = None,
    copy_images: bool = True,
) -> Path:
    """Write ``record_set`` as a VOC tree under ``out_dir``.

    Args:
        record_set: records to write; image stems must be unique (they name the XML files).
        out_dir: VOC root to create or extend.
        split: when given, the image stems are written to ``ImageSets/Main/{split}.txt``.
        copy_images: copy each image into ``JPEGImages/`` unless it is already there.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        DataError: two images share a stem (checked before anything is written).
    """
    out_dir = Path(out_dir)
    stems = [record.image_path.stem for record in record_set.records]
    duplicated = sorted(stem for stem, count in Counter(stems).items() if count > 1)[:5]
    if duplicated:
        hint = "rename the images so their names differ before the extension"
        raise DataError(out_dir, f"VOC needs unique image stems; duplicated: {duplicated}", hint)
    (out_dir / "Annotations").mkdir(parents=True, exist_ok=True)
    (out_dir / "JPEGImages").mkdir(parents=True, exist_ok=True)
    for record, stem in zip(record_set.records, stems, strict=True):
        target = out_dir / "JPEGImages" / record.image_path.name
        if copy_images and record.image_path.resolve() != target.resolve():
            shutil.copy2(record.image_path, target)
        xml = record_to_xml(record, record_set.class_names)
        atomic_write_text(out_dir / "Annotations" / f"{stem}.xml", xml)
    if split is not None:
        atomic_write_text(out_dir / "ImageSets" / "Main" / f"{split}.txt", "\n".join(stems) + "\n")
    return out_dir
