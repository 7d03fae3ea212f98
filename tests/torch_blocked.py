"""Run edgevision's command line in a fresh process where ``import torch`` fails, as on a device
or a machine with only the torch-free install."""

from __future__ import annotations

import subprocess
import sys

RUN_WITHOUT_TORCH = """
import importlib.abc, sys

class BlockTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, BlockTorch())
from edgevision.cli import main

code = main(sys.argv[1:])
loaded = sorted(name for name in sys.modules if name == "torch" or name.startswith("torch."))
if loaded:
    sys.exit(f"torch was imported: {loaded[:3]}")
sys.exit(code)
"""


def run_without_torch(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """``edgevision ARGS`` with torch unimportable; stdout and stderr captured as text."""
    command = [sys.executable, "-c", RUN_WITHOUT_TORCH, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
