"""Checkpoints: plain tensors + a config dict, written atomically, loaded without running code.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts, so ``torch.load(...,
weights_only=True)`` can read it: a file crafted to execute code when unpickled is refused.
"""

from __future__ import annotations

import pickle
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgevision.core.errors import CheckpointError
from edgevision.core.fileio import atomic_write

FORMAT = "edgevision-checkpoint"
VERSION = 1


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write ``state`` (plus format tag and version) atomically: temp file, fsync, rename."""
    payload = {"format": FORMAT, "version": VERSION, **state}
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint safely (``weights_only=True``) and check its format and version.

    Raises:
        CheckpointError: missing file, a file that is not an edgevision checkpoint, a newer format
            version, or content that is not plain data (refused without being executed).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; pass --weights PATH to a .pt file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "global" not in str(e).lower():  # malformed bytes, not a smuggled object
            raise CheckpointError(
                f"{path}: not a readable PyTorch file (corrupt or truncated)"
            ) from e
        raise CheckpointError(
            f"{path}: refused to load: the file holds objects other than plain tensors and data "
            "(loading it could execute code). Re-save it as a state dict: "
            "torch.save(model.state_dict(), 'weights.pt')"
        ) from e
    except (RuntimeError, EOFError, OSError) as e:
        raise CheckpointError(f"{path}: not a readable PyTorch file ({e})") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(state).__name__}")
    version = state.get("version", 0)
    if state.get("format") == FORMAT and version > VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version} is newer than this edgevision "
            f"understands ({VERSION}); upgrade edgevision"
        )
    return state


def state_dict_from(state: dict) -> dict:
    """The model weights inside any checkpoint we accept: ours (EMA preferred) or a bare state dict."""
    if state.get("format") == FORMAT:
        ema = state.get("ema")
        return ema["module"] if ema else state["model"]
    for key in ("state_dict", "model", "model_state_dict"):  # common layouts of other tools
        if isinstance(state.get(key), dict):
            return state[key]
    return state


@dataclass
class LoadReport:
    """What shape-matched loading did, key by key."""

    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # present in both, shapes differ
    missing: list[str] = field(default_factory=list)  # in the model, not in the file
    unexpected: list[str] = field(default_factory=list)  # in the file, not in the model

    def summary(self) -> str:
        return (
            f"loaded {len(self.loaded)} tensors, skipped {len(self.skipped)} (shape differs), "
            f"missing {len(self.missing)}, unexpected {len(self.unexpected)}"
        )


def load_matching(model: nn.Module, weights: dict, strip_prefix: str = "module.") -> LoadReport:
    """Load every tensor whose name and shape match; leave the rest as initialised.

    This is how a head trained for another class count is re-initialised while the backbone and
    neck are reused. Keys from DDP (``module.``) are accepted.
    """
    own = model.state_dict()
    report = LoadReport()
    matched = {}
    for key, value in weights.items():
        name = key[len(strip_prefix) :] if key.startswith(strip_prefix) else key
        if name not in own:
            report.unexpected.append(name)
        elif not isinstance(value, torch.Tensor) or value.shape != own[name].shape:
            report.skipped.append(name)
        else:
            matched[name] = value
            report.loaded.append(name)
    report.missing = [k for k in own if k not in matched and k not in report.skipped]
    model.load_state_dict(matched, strict=False)
    return report


def rng_state() -> dict:
    """Python, numpy and torch RNG states as plain data (numpy's key array becomes a tensor)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": list(random.getstate()[1]),
        "python_version": random.getstate()[0],
        "python_gauss": random.getstate()[2],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict) -> None:
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])


_KEY_PREFIXES = ("", "module.", "backbone.", "model.")  # DDP, our detectors' backbone, other tools


def load_pretrained(model: nn.Module, weights: str | Path) -> LoadReport:
    """``--weights``: load every tensor of ``weights`` whose name and shape match (our checkpoints,
    torchvision ``.pth``, a detector's ``backbone.*``, DDP's ``module.*``); a head of another class
    count is skipped and keeps its fresh initialisation, which is how the head gets replaced.

    Raises:
        CheckpointError: the file is unreadable or not a single tensor matches (a file for another
            architecture: training from scratch by accident would waste the run).
    """
    weights_dict = state_dict_from(load_checkpoint(weights))
    own = model.state_dict()

    def hits(prefix: str) -> int:
        return sum(k.startswith(prefix) and k[len(prefix) :] in own for k in weights_dict)

    prefix = max(_KEY_PREFIXES, key=hits)  # first of equals wins: "" before any stripping
    report = load_matching(model, weights_dict, strip_prefix=prefix)
    if not report.loaded:
        raise CheckpointError(
            f"{weights}: no tensor matches {type(model).__name__} by name and shape "
            f"(first keys: {list(weights_dict)[:3]}); is it for another architecture?"
        )
    return report
