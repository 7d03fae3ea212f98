"""torchrun with 2 CPU processes (gloo): same weights on every rank, one run folder, one writer."""

import subprocess
import sys
import textwrap

import pytest
import torch

from edgevision.data.synth.detect import synthesize_detection

DRIVER = textwrap.dedent("""
    import sys, torch
    from edgevision import api
    from edgevision.engine import dist
    data, project = sys.argv[1], sys.argv[2]
    summary = api.train(data=data, model="nano-s", epochs=2, imgsz=64, batch=4, workers=0, project=project,
                        name="ddp", verbose=False, plots=False, seed=3)
    torch.save(summary["model"].state_dict(), f"{project}/rank{dist.rank()}.pt")
""")


@pytest.mark.slow
def test_torchrun_two_processes_train_in_lockstep(tmp_path):
    data = synthesize_detection(tmp_path / "voc", n_train=8, n_val=4, width_range=(64, 96), seed=2)
    project = tmp_path / "runs"
    project.mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(driver),
        str(data),
        str(project),
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rank0 = torch.load(project / "rank0.pt", weights_only=True)
    rank1 = torch.load(project / "rank1.pt", weights_only=True)
    start = torch.load(project / "ddp" / "weights" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(start[k], rank0[k]) for k in rank0)  # rank 0 wrote its final weights
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    parameters = [key for key in rank0 if not key.endswith(buffers)]
    assert len(parameters) > 100
    for key in parameters:  # gradients were averaged: every parameter is bit-identical
        assert torch.equal(rank0[key], rank1[key]), key
    # BatchNorm statistics are not compared: DDP broadcasts rank 0's at the start of each forward,
    # then each rank updates them from its own shard (no --sync-bn on CPU); rank 0's are saved.
    runs = sorted(p.name for p in project.iterdir() if p.is_dir())
    assert runs == ["ddp"]  # rank 1 did not create ddp2
    assert sorted(p.name for p in (project / "ddp" / "weights").iterdir()) == ["best.pt", "last.pt"]
    assert len(list((project / "ddp").glob("events.out.tfevents.*"))) == 1
    header = (project / "ddp" / "results.csv").read_text().splitlines()[0]
    assert "mAP50" in header  # validated (once, on rank 0)
