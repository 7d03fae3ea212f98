"""Class names as annotators write them: one spelling per class, chosen from every file.

Annotators type names by hand, so one class arrives as ``digit7``, ``Digit7`` and ``digit7 ``.
Surrounding whitespace is never part of a name. Spellings that differ only in case are one class;
which spelling names it is the ``case`` rule:

- ``"majority"`` (default): the spelling most objects use; a tie goes to the lower-case form. The
  class list then does not depend on which file happens to be read first.
- ``"first"``: the first spelling seen in file order (the rule before ``majority``).
- ``"lower"``: lower case.

With a given class list, the list's spelling wins and other classes are unknown.
"""

from __future__ import annotations

from collections import Counter

from edgevision.core.errors import ConfigError

CASE_MODES = ("majority", "first", "lower")


class ClassFolder:
    """Collects the spellings of every object's class, then maps each to one canonical name.

    Use: :meth:`add` every name while reading (None means "not in the given list"), then
    :meth:`canonical` / :meth:`names` once all files are read.
    """

    def __init__(self, class_names: list[str] | None, case: str = "majority"):
        if case not in CASE_MODES:
            raise ConfigError(f"case must be one of {CASE_MODES}, got {case!r}")
        self.case = case
        self.given = None if class_names is None else check_class_names(class_names)
        self._given_by_key = {name.lower(): name for name in reversed(self.given or [])}
        self._counts: dict[str, Counter] = {}  # lower-case key -> spelling -> objects
        self._first: dict[str, str] = {}  # lower-case key -> first spelling seen

    def add(self, name: str) -> bool:
        """Count one object's (stripped) class name; False when a given list lacks it."""
        if self.given is not None:
            return name in self.given or name.lower() in self._given_by_key
        key = name.lower()
        self._counts.setdefault(key, Counter())[name] += 1
        self._first.setdefault(key, name)
        return True

    def canonical(self, name: str) -> str:
        """The spelling ``name`` is read as (call after every :meth:`add`)."""
        if self.given is not None:
            return name if name in self.given else self._given_by_key[name.lower()]
        key = name.lower()
        if self.case == "lower":
            return key
        if self.case == "first":
            return self._first[key]
        counts = self._counts[key]
        top = max(counts.values())
        tied = [spelling for spelling, count in counts.items() if count == top]
        return tied[0] if len(tied) == 1 else key

    def names(self) -> list[str]:
        """The class list: the given one, or every canonical spelling sorted (case-insensitive)."""
        if self.given is not None:
            return list(self.given)
        found = {self.canonical(key) for key in self._counts}
        return sorted(found, key=lambda name: (name.lower(), name))

    def spellings(self, name: str) -> Counter:
        """How many objects used each spelling of ``name``'s class (empty with a given list)."""
        return self._counts.get(name.lower(), Counter())


def check_class_names(class_names: list[str]) -> list[str]:
    """A usable class list (non-empty strings, no repeats), or ConfigError."""
    names = list(class_names)
    if not names or not all(isinstance(name, str) and name.strip() for name in names):
        raise ConfigError(f"class_names must be a non-empty list of names, got {class_names!r}")
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ConfigError(f"class_names lists {duplicated} more than once")
    return names
