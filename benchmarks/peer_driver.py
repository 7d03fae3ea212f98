"""Run a peer's training script in its own virtual environment and read back its result line.

The peer benchmarks (peer_ultralytics, peer_pose, photo_bench, peer_classify) each hand a small
driver script to the peer environment's Python; the driver ends by printing one
``PEER_RESULT {json}`` line. Ultralytics runs offline (``YOLO_OFFLINE=1``): nothing is fetched.
:func:`experiment_option` reads the ``--set KEY=VALUE`` options of their experiment rows.
"""

from __future__ import annotations

import json
import os
import subprocess

RESULT_PREFIX = "PEER_RESULT "


def run_peer_driver(python: str, driver: str, arguments: list[str]) -> dict:
    """``python -c driver *arguments``; the JSON of its last ``PEER_RESULT`` line.

    Raises:
        SystemExit: the driver failed or printed no result (with the end of its stderr).
    """
    done = subprocess.run(
        [python, "-c", driver, *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, "YOLO_OFFLINE": "1"},
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"Ultralytics run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix(RESULT_PREFIX))


def experiment_option(text: str) -> tuple[str, object]:
    """``--set lr0=0.004`` -> ("lr0", 0.004): a training option for an experiment row of ours."""
    key, _, value = text.partition("=")
    try:
        return key.replace("-", "_"), json.loads(value)
    except json.JSONDecodeError:
        return key.replace("-", "_"), value
