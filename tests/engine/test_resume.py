"""Training end to end on a tiny set: checkpoints, three SIGKILLs + --resume equal an uninterrupted run."""

import csv
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from edgevision import api
from edgevision.data.synth.detect import synthesize_detection
from edgevision.engine.checkpoint import load_checkpoint

EPOCHS = 12  # long enough that three kills, even late ones, land before the end
ARGS = [
    "--model",
    "nano-s",
    "--epochs",
    str(EPOCHS),
    "--imgsz",
    "64",
    "--batch",
    "4",
    "--workers",
    "0",
    "--val-interval",
    "10",
    "--no-verbose",
    "--no-plots",
    "--seed",
    "7",
    "--deterministic",  # the precision by hardware, untimed: both runs must train in the same one
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return synthesize_detection(
        tmp_path_factory.mktemp("tiny") / "voc", n_train=8, n_val=4, width_range=(64, 96), seed=1
    )


def _rows(run_dir):
    path = run_dir / "results.csv"
    if not path.exists():
        return 0
    with open(path) as f:
        return max(sum(1 for _ in csv.reader(f)) - 1, 0)


def _weights(run_dir):
    state = load_checkpoint(run_dir / "weights" / "last.pt")
    return state["model"], state["ema"]["module"], state["epoch"]


def _seconds_per_epoch(run_dir):
    with open(run_dir / "results.csv") as f:
        minutes = [float(row["time_min"]) for row in csv.DictReader(f)]
    return (minutes[-1] - minutes[0]) * 60 / (len(minutes) - 1)


def _kill_after_next_epoch(process, run_dir, rows_before, delay, deadline):
    """SIGKILL ``process`` ``delay`` seconds after its next epoch row lands; True if it was killed."""
    while _rows(run_dir) <= rows_before and process.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    time.sleep(delay)
    if process.poll() is not None:
        return False
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    return True


@pytest.mark.slow
def test_three_sigkills_then_resume_match_uninterrupted_run(tiny, tmp_path):
    """Kill at three random points (seeded), resume after each; the final weights are the same."""
    command = [sys.executable, "-m", "edgevision", "train"]
    subprocess.run(
        command + ["--data", str(tiny), "--project", str(tmp_path), "--name", "straight"] + ARGS,
        check=True,
        capture_output=True,
    )
    killed = tmp_path / "killed"
    first = command + ["--data", str(tiny), "--project", str(tmp_path), "--name", "killed"] + ARGS
    rng, deadline, kills = random.Random(20261123), time.time() + 300, 0
    epoch_seconds = _seconds_per_epoch(
        tmp_path / "straight"
    )  # kill points scale with this machine's speed
    launch = first
    logs = [tmp_path / f"launch{i}.log" for i in range(3)]
    for log in logs:
        rows = _rows(killed)
        with open(log, "w") as stderr:  # kept for the message below when a launch ends early
            process = subprocess.Popen(launch, stdout=subprocess.DEVNULL, stderr=stderr)
        # Somewhere inside the following epoch, or during its checkpoint write.
        kills += _kill_after_next_epoch(
            process, killed, rows, rng.uniform(0.05, 0.8) * epoch_seconds, deadline
        )
        launch = command + ["--resume", str(killed)]
    tails = "\n".join(f"{log.name}: {log.read_text()[-600:]}" for log in logs)
    assert kills == 3, f"a run ended before it could be killed (rows {_rows(killed)}):\n{tails}"
    assert _weights(killed)[2] < EPOCHS - 1  # the last kill came before the final epoch
    subprocess.run(launch, check=True, capture_output=True)
    runs = (tmp_path / "straight", killed)
    precisions = [load_checkpoint(run / "weights" / "last.pt")["precision"] for run in runs]
    assert precisions[0] == precisions[1]
    model_a, ema_a, epoch_a = _weights(tmp_path / "straight")
    model_b, ema_b, epoch_b = _weights(killed)
    assert epoch_a == epoch_b == EPOCHS - 1
    for key in model_a:
        torch.testing.assert_close(model_b[key], model_a[key], rtol=0, atol=1e-6, msg=key)
        torch.testing.assert_close(ema_b[key], ema_a[key], rtol=0, atol=1e-6, msg=key)
    assert (killed / "weights" / "best.pt").is_file()
    assert (
        _rows(killed) == EPOCHS
    )  # one results row per epoch: replayed epochs are not logged twice


def test_resume_without_a_run_is_a_clear_error(tmp_path):
    with pytest.raises(Exception, match="no .*last.pt"):
        api.train(resume=str(tmp_path / "nothing"))


def test_weights_with_other_class_count_load_by_shape(tiny, tmp_path, capsys):
    from edgevision.engine.checkpoint import save_checkpoint
    from edgevision.models.zoo import build_model

    donor = build_model("nano-s", num_classes=2)
    save_checkpoint(tmp_path / "donor.pt", {"model": donor.state_dict()})
    api.train(
        data=str(tiny),
        model="nano-s",
        epochs=1,
        imgsz=64,
        batch=4,
        workers=0,
        val=False,
        verbose=False,
        plots=False,
        project=str(tmp_path),
        name="ft",
        weights=str(tmp_path / "donor.pt"),
    )
    out = capsys.readouterr().out
    assert "skipped 6 (shape differs)" in out  # 3 levels of class predictors (weight, bias)
    assert "missing 0" in out


@pytest.mark.slow
def test_ctrl_c_saves_last_and_exits_cleanly(tiny, tmp_path):
    """SIGINT ends the batch, saves last.pt, exits 0 and says how to resume; the run then resumes."""
    run = tmp_path / "interrupted"
    command = [
        sys.executable,
        "-m",
        "edgevision",
        "train",
        "--data",
        str(tiny),
        "--project",
        str(tmp_path),
        "--name",
        "interrupted",
    ] + ARGS
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while _rows(run) < 1 and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "training ended before Ctrl-C"
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert f"continue with --resume {run}" in output
    assert "Traceback" not in output
    epoch = _weights(run)[2]
    assert epoch < EPOCHS - 1  # stopped early, with the interrupted epoch saved
    api.train(resume=str(run), verbose=False)
    assert _weights(run)[2] == EPOCHS - 1
