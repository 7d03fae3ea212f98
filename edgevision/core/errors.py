"""Exceptions. Every user-facing error says what, where, why and how to fix."""

from __future__ import annotations

from pathlib import Path


class EdgevisionError(Exception):
    """Base class for every error edgevision raises on purpose."""


class DataError(EdgevisionError, ValueError):
    """A dataset file is unusable. Carries the file, the reason and a suggested fix.

    Rendered as ``path[:line]: reason; hint``, e.g.
    ``Annotations/0042.xml:7: <width> "1920.0" is not an integer; run edgevision data check --fix``.
    """

    def __init__(
        self, path: str | Path | None, reason: str, hint: str = "", line: int | None = None
    ):
        self.path = Path(path) if path is not None else None
        self.reason = reason
        self.hint = hint
        self.line = line
        where = "" if path is None else f"{path}{'' if line is None else f':{line}'}: "
        super().__init__(f"{where}{reason}{f'; {hint}' if hint else ''}")


# The fuzzing issue names this class; readers raise it (or DataError, its parent) and nothing else.
DatasetError = DataError


class ConfigError(EdgevisionError, ValueError):
    """A command-line option, config file or argument combination is invalid."""


class UnknownModelError(ConfigError):
    """A model name that is not in the zoo; the message lists close matches."""


class CheckpointError(EdgevisionError, ValueError):
    """A checkpoint file is missing, of an unknown format, or unsafe to load."""


class ParityError(EdgevisionError):
    """An exported or fused model disagrees with the PyTorch model beyond the tolerances."""
