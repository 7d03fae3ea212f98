"""Checkpoints: atomic, versioned, and never executing code on load."""

import os
import random

import numpy as np
import pytest
import torch

from edgevision.core.errors import CheckpointError
from edgevision.engine.checkpoint import (
    VERSION,
    load_checkpoint,
    load_matching,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_crafted_pickle_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"model": _Evil(marker)}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused to load"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


def test_round_trip_and_format_tag(tmp_path):
    model = torch.nn.Linear(4, 2)
    path = save_checkpoint(
        tmp_path / "w" / "last.pt", {"model": model.state_dict(), "config": {"epochs": 3}}
    )
    state = load_checkpoint(path)
    assert state["format"] == "edgevision-checkpoint" and state["version"] == VERSION
    torch.testing.assert_close(state["model"]["weight"], model.weight)
    assert not list(path.parent.glob(".*tmp"))  # no temp files left behind


def test_newer_version_and_missing_file_are_clear_errors(tmp_path):
    torch.save({"format": "edgevision-checkpoint", "version": VERSION + 1}, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="newer than this edgevision"):
        load_checkpoint(tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch file"):
        load_checkpoint(tmp_path / "junk.pt")


def test_shape_matched_loading_reports_every_key():
    source = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 3))
    target = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 5))
    weights = {"module." + k: v for k, v in source.state_dict().items()}  # DDP-style keys
    weights["extra.weight"] = torch.zeros(1)
    report = load_matching(target, weights)
    assert sorted(report.loaded) == ["0.bias", "0.weight"]
    assert sorted(report.skipped) == ["1.bias", "1.weight"]
    assert report.unexpected == ["extra.weight"] and report.missing == []
    torch.testing.assert_close(target[0].weight, source[0].weight)
    assert target[1].weight.shape == (5, 8)


def test_rng_state_restores_all_generators(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    save_checkpoint(tmp_path / "r.pt", {"rng": rng_state()})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
