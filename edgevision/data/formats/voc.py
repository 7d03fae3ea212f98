"""Pascal VOC: ``Annotations/*.xml`` + ``JPEGImages/`` + optional ``ImageSets/Main/*.txt``.

Pixel convention: VOC coordinates are 1-based inclusive pixel indices. A box covering pixels
``xmin..xmax`` spans the continuous interval ``[xmin - 1, xmax]`` in our 0-based frame, so we read
``x0 = xmin - 1, x1 = xmax`` (same for y) and write the inverse. Round trips are exact.

Reading is tolerant: a defect in one file becomes an :class:`~edgevision.core.issues.Issue` and the
reader goes on; only a root that is not a VOC dataset raises :class:`DataError`. Boxes are kept as
written (the data doctor fixes swapped or outside boxes). Discovered class names are sorted
alphabetically (case-insensitive, then exact), so the class ids do not depend on which file a class
first appears in. XML is parsed with defusedxml (entities and external references refused) in
:mod:`.voc_xml`, with the text-to-number helpers; no file name from an annotation can make the
reader open a file outside the root. The writer is in :mod:`.voc_write`, re-exported here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element

import numpy as np

from edgevision.core import issues as kinds
from edgevision.core.errors import ConfigError, DataError
from edgevision.core.image import IMAGE_SUFFIXES, read_image_size
from edgevision.core.issues import Issue, case_reason, in_file_order
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.formats.class_names import ClassFolder
from edgevision.data.formats.voc_write import record_to_xml, write_voc
from edgevision.data.formats.voc_xml import (
    _FILE_HINT,
    _box,
    _decode,
    _dimension,
    _flag,
    _line_of,
    _parse_xml_bytes,
    _read_bytes,
    encoding_note,
    parse_voc_xml,
)

__all__ = [
    "VocImageIndex",
    "parse_voc_xml",
    "read_voc",
    "record_to_xml",
    "voc_image_for",
    "write_voc",
]

_WINDOWS_ABSOLUTE = re.compile(r"^[A-Za-z]:/")
_FIX_HINT = "run edgevision data check --fix"


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
    positions: list[int]  # each kept object's index among the file's <object> elements


class _VocReader:
    """Reads annotation files one by one into :class:`_Parsed`, collecting issues."""

    def __init__(self, images: VocImageIndex, classes: ClassFolder):
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
        self._note_filename(annotation, image_path, data, xml_path)
        size = self._size(annotation, data, xml_path, image_path)
        if size is None:
            return None
        boxes, names, difficult, positions = self._objects(annotation, data, xml_path)
        extra = {
            "folder": (annotation.findtext("folder") or "").strip(),
            "filename": annotation.findtext("filename") or "",
        }
        segmented = annotation.findtext("segmented")
        if segmented is not None:
            extra["segmented"] = segmented.strip()
        return _Parsed(xml_path, image_path, *size, boxes, names, difficult, extra, positions)

    def _note_filename(self, annotation: Element, image_path: str, data: bytes, xml_path) -> None:
        """FILENAME_MISMATCH (info) when ``<filename>`` does not name the image file used;
        FILENAME_OTHER_IMAGE (warning) when it names another image while the one named like the
        annotation exists: then these boxes may describe the wrong picture."""
        written = annotation.findtext("filename") or ""
        used = os.path.basename(image_path)
        own = self.images._find(Path(xml_path).stem)
        line = _line_of(data, "filename")
        if own is not None and own != used:
            reason = (
                f'<filename> "{written.strip()}" names another image of the set, while {own} '
                f"(named like this annotation) exists; read {used}"
            )
            hint = "check which image these boxes describe and correct <filename>"
            self._add(kinds.FILENAME_OTHER_IMAGE, xml_path, reason, hint, line=line)
            return
        if written.strip().replace("\\", "/").rsplit("/", 1)[-1] == used:
            return
        shown = f'<filename> "{written}"' if written.strip() else "no <filename>"
        reason = f"{shown} does not name the image file; read {used}"
        hint = f"--fix writes <filename>{used}</filename>"
        self._add(kinds.FILENAME_MISMATCH, xml_path, reason, hint, line=line)

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
        encoding = encoding_note(data)
        if encoding is not None:
            hint = "--fix rewrites the file as UTF-8 with a declaration"
            self._add(kinds.XML_ENCODING, xml_path, encoding, hint)
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

    def _objects(self, annotation: Element, data: bytes, xml_path: Path) -> tuple[list, ...]:
        """Boxes (as written, 0-based frame), stripped class names, difficult flags, and each
        kept object's position in the file. Names are folded once every file is read."""
        boxes, names, difficult, positions = [], [], [], []
        objects = annotation.findall("object")
        for index, obj in enumerate(objects):
            written = obj.findtext("name") or ""
            name = written.strip()
            box = _box(obj.find("bndbox"))
            kind, reason, hint = self._check_object(name, box)
            if kind is None and name != written:
                reason = f'class name {written!r} has spaces around it; read as "{name}"'
                kind = kinds.CLASS_WHITESPACE
                hint = "--fix writes the name without the spaces"
            if kind is not None:
                line = _line_of(data, "object", index)
                self._add(kind, xml_path, reason, hint, object_index=index, line=line)
            if kind in (None, kinds.CLASS_WHITESPACE):
                boxes.append(box)
                names.append(name)
                difficult.append(_flag(obj.findtext("difficult")))
                positions.append(index)
        if not objects:
            reason = "no <object>: kept as a negative (background) image"
            self._add(kinds.NO_OBJECTS, xml_path, reason)
        return boxes, names, difficult, positions

    def _check_object(self, name: str, box: list[float] | None) -> tuple[str | None, str, str]:
        """(issue kind, reason, hint) of an object the reader leaves out; kind None = keep it."""
        if not name:
            return kinds.CORRUPT_ANNOTATION, "object has no <name>", _FILE_HINT
        if box is None:
            reason = f'object "{name}": <bndbox> lacks a coordinate or one is not a usable number'
            reason += " (nan, inf, or beyond +-3.4e38)"
            return kinds.CORRUPT_ANNOTATION, reason, _FILE_HINT
        if not self.classes.add(name):
            reason = f'class "{name}" is not in class_names; object left out'
            return kinds.UNKNOWN_CLASS, reason, "add it to class_names or relabel it"
        return None, "", ""

    def fold_names(self, parsed: list[_Parsed]) -> None:
        """Replace every name by its canonical spelling (needs every file read), reporting each
        object whose spelling changed as CLASS_CASE, in file order."""
        for item in parsed:
            data = None
            for k, name in enumerate(item.names):
                canonical = self.classes.canonical(name)
                if canonical == name:
                    continue
                data = _read_bytes(item.xml_path) if data is None else data
                index = item.positions[k]
                reason = case_reason(name, canonical, self.classes.spellings(name))
                line = _line_of(data, "object", index)
                self.issues.append(
                    Issue(kinds.CLASS_CASE, item.xml_path, reason, _FIX_HINT, index, line)
                )
                item.names[k] = canonical

    def _add(self, kind: str, path: Path, reason: str, hint: str = "", **where) -> None:
        self.issues.append(Issue(kind, Path(path), reason, hint, **where))


def read_voc(
    root: str | Path,
    split: str | None = None,
    class_names: list[str] | None = None,
    case: str = "majority",
) -> tuple[RecordSet, list[Issue]]:
    """Read a VOC dataset into records plus the defects found on the way.

    Args:
        root: folder holding ``Annotations/`` and ``JPEGImages/``.
        split: None reads every ``Annotations/*.xml`` (sorted by stem); a name reads the stems
            of ``ImageSets/Main/{split}.txt`` in the order of that file.
        class_names: the classes to keep, in id order; objects of other classes become
            UNKNOWN_CLASS issues. None discovers the classes (sorted alphabetically).
        case: how spellings differing only in case fold: "majority" (the spelling most objects
            use, ties to lower case), "first" (first seen in file order) or "lower"; see
            :mod:`.class_names`. With ``class_names`` the list's spelling wins.

    Returns:
        (RecordSet with ``format="voc"``, issues in file order). Files with a fatal defect
        (corrupt, missing image, path escape) have an issue and no record.

    Raises:
        DataError: no ``Annotations/`` or ``JPEGImages/`` folder, no XML in ``Annotations/``, or
            no list file for ``split``.
        ConfigError: bad ``case``, ``split`` or ``class_names``.
    """
    classes = ClassFolder(class_names, case)
    root_path = Path(os.path.abspath(root))
    for folder in ("Annotations", "JPEGImages"):
        if not (root_path / folder).is_dir():
            hint = "point DATA at the folder that holds Annotations/ and JPEGImages/"
            raise DataError(root_path, f"no {folder}/ folder, so this is not a VOC root", hint)
    reader = _VocReader(VocImageIndex(root_path), classes)
    xml_paths = _annotation_paths(root_path, split, reader.issues)
    parsed = [item for item in map(reader.read, xml_paths) if item is not None]
    reader.fold_names(parsed)
    reader.issues = in_file_order(reader.issues, xml_paths)
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
