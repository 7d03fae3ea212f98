"""The embedded demo datasets, generated and never downloaded: one module per task, one table."""

from __future__ import annotations

from pathlib import Path

from edgevision.core.errors import ConfigError
from edgevision.data.synth.classify import synthesize_classification
from edgevision.data.synth.detect import synthesize_detection

# The tasks `edgevision data synth --task` knows; None: planned, not written yet.
GENERATORS = {"detect": synthesize_detection, "classify": synthesize_classification, "pose": None}
TASKS = tuple(GENERATORS)


def synthesize(out_dir: str | Path, task: str = "detect", **kwargs) -> Path:
    """``edgevision data synth OUT --task ...``: write the demo dataset for one task.

    Raises:
        ConfigError: an unknown task, or one whose generator is not written yet.
    """
    if task not in GENERATORS:
        raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    generator = GENERATORS[task]
    if generator is None:
        available = ", ".join(name for name, made in GENERATORS.items() if made)
        raise ConfigError(
            f"synthetic data for --task {task} is not implemented yet; available now: {available}"
        )
    return generator(out_dir, **kwargs)
