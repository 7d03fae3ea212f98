"""Keypoint metadata beside the points: names, skeleton, ``flip_idx`` and OKS sigmas.

Where each format keeps them:

- YOLO data YAML (Ultralytics keys): ``kpt_shape: [K, 2|3]``, ``flip_idx``, ``kpt_names`` (a
  list, or Ultralytics' per-class ``{0: [names...]}`` or ``[[names...]]``), ``skeleton`` (0-based
  pairs; an edgevision key Ultralytics ignores) and ``kpt_oks_sigmas``.
- COCO JSON: ``categories[].keypoints`` and ``skeleton`` (1-based pairs) are COCO's own. COCO has
  no field for ``flip_idx`` or the sigmas, so they travel in a top-level ``"edgevision"`` dict,
  ``{"flip_idx": [...], "kpt_oks_sigmas": [...]}``, which pycocotools and other COCO tools ignore
  (``"info"`` is left to its standard fields). Without it, ``flip_idx`` comes from the names
  (``left_*`` <-> ``right_*``).

Both readers judge the metadata here, the same way. A bad value becomes an Issue naming the file
and is left out (``flip_idx`` None, which makes training skip horizontal flips as Ultralytics does;
a bad skeleton edge dropped; sigmas None), so ``data check`` reports it and no training run flips
with a wrong table. Readers never raise for it: one bad key must not hide the rest of the report.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from edgevision.core import issues as kinds
from edgevision.core.issues import Issue

COCO_EXTRA_KEY = "edgevision"  # the COCO JSON's top-level dict for flip_idx and sigmas
_SHOWN = 20  # list entries quoted in a message before "..."


@dataclass
class KeypointSchema:
    """What a pose dataset says about its K keypoints (every field None when not stated).

    Attributes:
        names: K names.
        skeleton: 0-based index pairs, each naming two existing keypoints.
        flip_idx: K indices, a permutation that is its own inverse.
        sigmas: K positive OKS sigmas.
    """

    names: list[str] | None = None
    skeleton: list[tuple[int, int]] | None = None
    flip_idx: list[int] | None = None
    sigmas: list[float] | None = None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _short(values) -> str:
    """A list as text, cut after ``_SHOWN`` entries (a 1000-entry table must not flood a report)."""
    if not isinstance(values, list) or len(values) <= _SHOWN:
        return repr(values)[:200]
    return repr(values[:_SHOWN])[:-1] + ", ...]"


def flip_idx_problem(flip_idx: object, num_keypoints: int) -> str | None:
    """Why ``flip_idx`` cannot be a horizontal-flip table for ``num_keypoints`` points, or None.

    A valid table is a permutation of ``0..K-1`` (every point lands on exactly one point) that is
    its own inverse (flipping twice gives back the original: ``flip_idx[flip_idx[k]] == k``).
    """
    if not isinstance(flip_idx, list) or not all(_is_int(k) for k in flip_idx):
        return f"flip_idx {_short(flip_idx)} is not a list of whole numbers"
    if len(flip_idx) != num_keypoints:
        return f"flip_idx has {len(flip_idx)} entries for {num_keypoints} keypoints"
    expected = set(range(num_keypoints))
    if set(flip_idx) != expected:
        missing = sorted(expected - set(flip_idx))
        return (
            f"flip_idx {_short(flip_idx)} is not a permutation of 0..{num_keypoints - 1} "
            f"(never names {_short(missing)})"
        )
    for point, mirror in enumerate(flip_idx):
        if flip_idx[mirror] != point:
            return (
                f"flip_idx is not its own inverse: {point} -> {mirror} but {mirror} -> "
                f"{flip_idx[mirror]} (flipping twice must give back the original)"
            )
    return None


def sigmas_problem(sigmas: object, num_keypoints: int) -> str | None:
    """Why ``sigmas`` cannot be the OKS sigmas of ``num_keypoints`` points, or None."""
    if not isinstance(sigmas, list | tuple) or not all(_is_number(s) for s in sigmas):
        return f"sigmas {_short(sigmas)} are not a list of numbers"
    if len(sigmas) != num_keypoints:
        return f"{len(sigmas)} sigmas for {num_keypoints} keypoints"
    bad = [s for s in sigmas if not _positive_finite(s)]
    if bad:
        return f"sigmas must be positive finite numbers; found {_short(bad)}"
    return None


def _positive_finite(value: float) -> bool:
    try:
        return math.isfinite(float(value)) and value > 0
    except OverflowError:  # an int of thousands of digits
        return False


def names_problem(names: object, num_keypoints: int) -> tuple[str, str] | None:
    """(issue kind, why) when ``names`` cannot name ``num_keypoints`` points, else None."""
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return kinds.BAD_KPT_NAMES, f"kpt_names {_short(names)} is not a list of names"
    if len(names) != num_keypoints:
        return kinds.KEYPOINT_COUNT, f"{len(names)} keypoint names for {num_keypoints} keypoints"
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        return kinds.BAD_KPT_NAMES, f"keypoint names repeat: {_short(repeated)}"
    return None


def skeleton_edges(
    skeleton: object, num_keypoints: int, base: int = 0
) -> tuple[list[tuple[int, int]], list[str]]:
    """(0-based edges that name existing points, why each other edge was dropped).

    Args:
        skeleton: pairs as written.
        num_keypoints: K.
        base: 0 for a data YAML, 1 for COCO (whose skeleton counts from 1).
    """
    if not isinstance(skeleton, list):
        return [], [f"skeleton {_short(skeleton)} is not a list of pairs"]
    edges, problems = [], []
    last = num_keypoints - 1 + base
    for pair in skeleton:
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(map(_is_int, pair))):
            problems.append(f"skeleton edge {_short(pair)} is not two keypoint numbers")
        elif not all(base <= k <= last for k in pair):
            problems.append(
                f"skeleton edge {list(pair)} names a keypoint that does not exist "
                f"(keypoints are numbered {base}..{last})"
            )
        else:
            edges.append((pair[0] - base, pair[1] - base))
    return edges, problems


def judge_schema(
    raw: dict, num_keypoints: int, path: Path, base: int = 0
) -> tuple[KeypointSchema, list[Issue]]:
    """Check the metadata a file states and keep what is usable.

    Args:
        raw: ``names``, ``skeleton``, ``flip_idx``, ``sigmas`` as read (a missing key: absent).
        num_keypoints: K the points have (``kpt_shape``, or the COCO names).
        path: the file the metadata is in (the data YAML or the COCO JSON), for the Issues.
        base: skeleton numbering, 0 (data YAML) or 1 (COCO).

    Returns:
        The schema with every unusable part None (bad edges dropped), and one Issue per problem.
    """
    schema, found = KeypointSchema(), []

    def report(kind: str, reason: str, hint: str, consequence: str = "left out") -> None:
        found.append(Issue(kind, path, f"{reason}; {consequence}", hint))

    if raw.get("names") is not None:
        problem = names_problem(raw["names"], num_keypoints)
        if problem:
            report(*problem, f"give {num_keypoints} distinct names, one per keypoint")
        else:
            schema.names = list(raw["names"])
    if raw.get("skeleton") is not None:
        edges, problems = skeleton_edges(raw["skeleton"], num_keypoints, base)
        for problem in problems:
            report(kinds.BAD_SKELETON, problem, "fix or remove the edge")
        schema.skeleton = edges
    if raw.get("flip_idx") is not None:
        problem = flip_idx_problem(raw["flip_idx"], num_keypoints)
        hint = "list for each keypoint the one it becomes when mirrored (itself if central)"
        if problem:
            consequence = "left out, so training does not flip images horizontally"
            report(kinds.BAD_FLIP_IDX, problem, hint, consequence)
        else:
            schema.flip_idx = list(raw["flip_idx"])
    if raw.get("sigmas") is not None:
        problem = sigmas_problem(raw["sigmas"], num_keypoints)
        if problem:
            report(kinds.BAD_KPT_SIGMAS, problem, f"give {num_keypoints} positive sigmas")
        else:
            schema.sigmas = [float(s) for s in raw["sigmas"]]
    return schema, found


def _one_name_list(value: object) -> tuple[object, str | None]:
    """One keypoint name list from ``kpt_names`` in any of its forms, and why, when classes differ.

    Ultralytics keys the names by class (``{0: [...], 1: [...]}``); a dataset here holds one
    keypoint schema, so differing per-class lists keep the first class's.
    """
    if isinstance(value, dict):
        ordered = sorted(
            value, key=lambda key: (not _is_int(key), key if _is_int(key) else str(key))
        )
        lists = [value[key] for key in ordered]
    elif isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        lists = value
    else:
        return value, None
    if not lists:
        return value, None
    if any(other != lists[0] for other in lists[1:]):
        return lists[0], "classes name their keypoints differently; the first class's names kept"
    return lists[0], None


def yaml_keypoint_schema(
    config: dict, yaml_path: Path, num_keypoints: int
) -> tuple[KeypointSchema, list[Issue]]:
    """The keypoint metadata of a YOLO data YAML (keys in the module docstring), judged."""
    names, problem = _one_name_list(config.get("kpt_names"))
    raw = {
        "names": names,
        "skeleton": config.get("skeleton"),
        "flip_idx": config.get("flip_idx"),
        "sigmas": config.get("kpt_oks_sigmas"),
    }
    schema, found = judge_schema(raw, num_keypoints, yaml_path)
    if problem:
        hint = "edgevision keeps one keypoint list per dataset: give kpt_names: [...]"
        found.append(Issue(kinds.BAD_KPT_NAMES, yaml_path, problem, hint))
    return schema, found


def yaml_keypoint_entries(schema: KeypointSchema, num_classes: int) -> dict:
    """The data YAML keys that state ``schema`` (``kpt_shape`` is the writer's to add)."""
    entries: dict = {}
    if schema.flip_idx is not None:
        entries["flip_idx"] = [int(k) for k in schema.flip_idx]
    if schema.names is not None:
        # Ultralytics' per-class form; every class shares the one list.
        entries["kpt_names"] = {c: list(schema.names) for c in range(num_classes)}
    if schema.skeleton:
        entries["skeleton"] = [[int(a), int(b)] for a, b in schema.skeleton]
    if schema.sigmas is not None:
        entries["kpt_oks_sigmas"] = [float(s) for s in schema.sigmas]
    return entries


def coco_extra(flip_idx: list[int] | None, sigmas: list[float] | None) -> dict:
    """The COCO JSON's ``"edgevision"`` dict for what COCO cannot hold (empty when nothing)."""
    extra: dict = {}
    if flip_idx is not None:
        extra["flip_idx"] = [int(k) for k in flip_idx]
    if sigmas is not None:
        extra["kpt_oks_sigmas"] = [float(s) for s in sigmas]
    return extra


def flip_index(kpt_names: list[str]) -> list[int]:
    """``flip_idx`` from names: ``left_*`` and ``right_*`` swap under a horizontal flip."""
    swap = {"left": "right", "right": "left"}
    position = {name: i for i, name in enumerate(kpt_names)}
    mirrored = [re.sub(r"left|right", lambda m: swap[m.group()], n) for n in kpt_names]
    return [position.get(m, i) for i, m in enumerate(mirrored)]


def coco_keypoint_schema(
    data: dict, names: list[str], skeleton: object, json_path: Path
) -> tuple[KeypointSchema, list[Issue]]:
    """The keypoint metadata of a COCO JSON, judged: the categories' names and 1-based skeleton,
    and ``flip_idx`` / sigmas from its ``"edgevision"`` dict (``flip_idx`` from the names when the
    dict has none)."""
    extra, found = data.get(COCO_EXTRA_KEY, {}), []
    if not isinstance(extra, dict):
        reason = f'"{COCO_EXTRA_KEY}" is not an object; ignored'
        hint = 'write "edgevision": {"flip_idx": [...], "kpt_oks_sigmas": [...]}'
        found.append(Issue(kinds.CORRUPT_ANNOTATION, json_path, reason, hint))
        extra = {}
    raw = {
        "names": names,
        "skeleton": skeleton,
        "flip_idx": extra.get("flip_idx"),
        "sigmas": extra.get("kpt_oks_sigmas"),
    }
    schema, judged = judge_schema(raw, len(names), json_path, base=1)
    if extra.get("flip_idx") is None and schema.names is not None:
        schema.flip_idx = flip_index(schema.names)
    return schema, found + judged
