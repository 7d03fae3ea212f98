"""Run folders: ``project/name`` (then ``name2``, ``name3``, ...), checked writable up front, and the
run's saved config. No torch: val, predict and the data commands use it on any machine."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from edgevision.config import TrainConfig
from edgevision.core.errors import ConfigError
from edgevision.core.fileio import atomic_write_text


def prepare_run_dir(project: str, name: str, exist_ok: bool) -> Path:
    """``project/name`` (or ``name2``, ``name3``... when taken), checked writable before training.

    Raises:
        ConfigError: the folder cannot be created or written (read-only, full disk), so the user
            learns before the first epoch, not after hours.
    """
    base = Path(project) / name
    run_dir, n = base, 1
    while run_dir.exists() and not exist_ok:
        n += 1
        run_dir = base.with_name(f"{name}{n}")
    try:
        (run_dir / "weights").mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write_probe"
        with open(probe, "wb") as f:
            f.write(b"\0" * (1 << 20))  # 1 MiB: catches a full disk, not just permissions
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as e:
        raise ConfigError(
            f"{run_dir}: run folder is not writable ({e.strerror or e}); "
            "choose another --project/--name or free disk space"
        ) from e
    return run_dir


def save_args(run_dir: Path, config: TrainConfig) -> None:
    atomic_write_text(run_dir / "args.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
