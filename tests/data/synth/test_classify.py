"""The synthetic classification set: balanced ImageFolder splits, byte-identical per seed."""

from __future__ import annotations

import hashlib

import pytest

from edgevision.core.errors import DataError
from edgevision.data.formats.imagefolder import (
    detect_layout,
    list_classification_splits,
    load_classification,
)
from edgevision.data.synth.classify import CLASS_NAMES, synthesize_classification


def test_synth_layout_balanced_and_byte_identical(tmp_path):
    first = synthesize_classification(tmp_path / "a", n_train=10, n_val=5, seed=3)
    second = synthesize_classification(tmp_path / "b", n_train=10, n_val=5, seed=3)
    files = sorted(p.relative_to(first) for p in first.rglob("*.jpg"))
    assert len(files) == 15
    assert [(first / f).read_bytes() == (second / f).read_bytes() for f in files] == [True] * 15
    train, _ = load_classification(first, "train")
    assert train.class_names == list(CLASS_NAMES) and train.counts().tolist() == [2] * 5
    assert detect_layout(first) == "splits" and list_classification_splits(first) == [
        "train",
        "val",
    ]
    other = synthesize_classification(tmp_path / "c", n_train=10, n_val=0, seed=4)
    digest = hashlib.md5((other / files[0]).read_bytes()).hexdigest()
    assert digest != hashlib.md5((first / files[0]).read_bytes()).hexdigest()


def test_synth_refuses_existing_files_unless_forced(tmp_path):
    root = synthesize_classification(tmp_path, n_train=5, n_val=5)
    (root / "train" / "circle" / "mine.txt").write_text("keep me")
    with pytest.raises(DataError, match="--force"):
        synthesize_classification(tmp_path, n_train=5, n_val=5)
    synthesize_classification(tmp_path, n_train=5, n_val=0, force=True)
    assert len(list(root.rglob("*.jpg"))) == 5 and (root / "train" / "circle" / "mine.txt").exists()
