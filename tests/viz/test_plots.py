"""Evaluation plots are written as real PNGs, without touching pyplot's global state."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from edgevision.viz.plots import plot_confusion_matrix, plot_pr_curves

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    data = path.read_bytes()
    return len(data) > 1000 and data.startswith(PNG_SIGNATURE)


def test_pr_curves_png(tmp_path):
    precision = [np.array([1.0, 0.5, 0.67]), np.zeros(0), np.array([0.0, 0.5])]
    recall = [np.array([0.33, 0.33, 0.67]), np.zeros(0), np.array([0.0, 0.5])]
    path = plot_pr_curves(precision, recall, ["car", "truck", "tug"], tmp_path / "pr.png",
                          ap=[0.6, float("nan"), 0.25])  # fmt: skip
    assert path == tmp_path / "pr.png" and _is_png(path)
    assert list(tmp_path.iterdir()) == [path]  # the atomic write left no temporary file


@pytest.mark.parametrize("normalize", [True, False])
def test_confusion_matrix_png(tmp_path, normalize):
    matrix = np.array([[5, 1, 2], [0, 3, 1], [1, 2, 0]])
    path = plot_confusion_matrix(matrix, ["car", "truck"], tmp_path / "sub" / "cm.png", normalize)
    assert _is_png(path)


def test_confusion_matrix_shape_is_checked(tmp_path):
    with pytest.raises(ValueError, match="2 classes"):
        plot_confusion_matrix(np.zeros((4, 4)), ["car", "truck"], tmp_path / "cm.png")


def test_no_import_time_matplotlib_and_no_pyplot(tmp_path):
    """Importing the module loads no matplotlib; plotting never touches pyplot's global state."""
    code = (
        "import sys, numpy as np\n"
        "from edgevision.viz import plots\n"
        "assert 'matplotlib' not in sys.modules, 'imported at import time'\n"
        f"plots.plot_confusion_matrix(np.eye(2, dtype=int), ['car'], {str(tmp_path / 'cm.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot used'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert _is_png(tmp_path / "cm.png")
