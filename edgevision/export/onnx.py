"""ONNX files for every task: write a graph with its metadata, simplify it, read it back.

Task folders decide *what* to trace (``tasks/<task>/export.py``, with ``export.trace``); this
module decides *how* a file is made, the same for all of them, without PyTorch (INT8 of an
``.onnx`` works on a machine that has none):

- the metadata the runtime reads (:mod:`edgevision.runtime.metadata`), written once, after any
  graph rewrite, so a key never appears twice;
- ``onnx.checker.check_model(full_check=True)`` (schema, shape inference, metadata) before a file
  is written; a file that a strict consumer would reject is never produced;
- onnxslim when installed, re-checked by the caller's parity check and reverted if it fails.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import onnx

from edgevision.core.errors import ConfigError, ParityError
from edgevision.core.fileio import atomic_write_bytes
from edgevision.core.version import __version__
from edgevision.runtime.metadata import ModelInfo, parse_metadata, to_metadata

MIN_OPSET = 17
Checked = TypeVar("Checked")


def check_opset(opset: int) -> None:
    if opset < MIN_OPSET:
        raise ConfigError(f"--opset {opset}: use {MIN_OPSET} or newer")


def write_model(
    proto: onnx.ModelProto, info: ModelInfo, outputs: list[str], path: str | Path
) -> Path:
    """Replace the file's ``metadata_props`` with ``info``, check it strictly, write atomically.

    Raises:
        onnx.checker.ValidationError: the graph or its metadata is not valid ONNX (a bug: the
            file is not written).
    """
    del proto.metadata_props[:]
    for key, value in to_metadata(info, outputs).items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name = "edgevision"
    proto.producer_version = __version__
    onnx.checker.check_model(proto, full_check=True)
    return atomic_write_bytes(path, proto.SerializeToString())


def read_info(path: str | Path) -> ModelInfo:
    """The :class:`ModelInfo` stored in an ONNX file (for tools that hold a path, not a session)."""
    proto = onnx.load(str(path), load_external_data=False)
    return parse_metadata({prop.key: prop.value for prop in proto.metadata_props}, path)


def simplify(
    path: Path, check: Callable[[Path], Checked], say: Callable[[str], None]
) -> Checked | None:
    """onnxslim the file in place and run ``check(path)`` on the result.

    Returns:
        ``check``'s result, or None when onnxslim is missing or the simplified graph failed its
        check with a ParityError (the original file is then put back).
    """
    try:
        import onnxslim  # optional (the export extra): a smaller graph, same numbers
    except ImportError:
        say("onnxslim not installed: graph left unsimplified (pip install onnxslim)")
        return None
    original = path.read_bytes()
    proto = onnx.load_from_string(original)
    info = parse_metadata({prop.key: prop.value for prop in proto.metadata_props}, path)
    outputs = [output.name for output in proto.graph.output]
    slim = onnxslim.slim(proto)
    write_model(slim, info, outputs, path)  # metadata set afresh: onnxslim may keep or drop it
    try:
        result = check(path)
    except ParityError as e:
        atomic_write_bytes(path, original)
        say(f"onnxslim output failed the parity check ({e}); kept the unsimplified graph")
        return None
    say(f"simplified with onnxslim: {len(proto.graph.node)} -> {len(slim.graph.node)} nodes")
    return result
