"""The embedded demo datasets, generated and never downloaded: one module per task, one table."""

from __future__ import annotations

from pathlib import Path

from edgevision.core.errors import ConfigError
from edgevision.data.synth.classify import synthesize_classification
from edgevision.data.synth.detect import synthesize_detection
from edgevision.data.synth.pose import synthesize_pose

# The tasks `edgevision data synth --task` knows; None: planned, not written yet.
GENERATORS = {
    "detect": synthesize_detection,
    "classify": synthesize_classification,
    "pose": synthesize_pose,
}
TASKS = tuple(GENERATORS)


def synthesize(out_dir: str | Path, task: str = "detect", **kwargs) -> Path:
    """``edgevision data synth OUT --task ...``: write the demo dataset for one task.

    ``num_keypoints`` (pose only) may be passed as None for every task: the generator's default.

    Raises:
        ConfigError: an unknown task, one whose generator is not written yet, or
            ``num_keypoints`` for a task without keypoints.
    """
    if task not in GENERATORS:
        raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if kwargs.get("num_keypoints") is None:
        kwargs.pop("num_keypoints", None)
    elif task != "pose":
        raise ConfigError(f"--num-keypoints applies to --task pose, not --task {task}")
    generator = GENERATORS[task]
    if generator is None:
        available = ", ".join(name for name, made in GENERATORS.items() if made)
        raise ConfigError(
            f"synthetic data for --task {task} is not implemented yet; available now: {available}"
        )
    return generator(out_dir, **kwargs)
