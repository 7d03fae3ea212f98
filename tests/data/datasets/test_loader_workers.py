"""The training loader's worker rule: explicit counts as typed, auto by device and cores."""

import pytest
import torch

from edgevision.core.errors import ConfigError
from edgevision.data.datasets import loader
from edgevision.data.datasets.loader import AUTO_WORKERS, training_workers

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("requested", [0, 1, 2, 8])
def test_a_typed_count_is_used_as_typed(requested):
    workers, message = training_workers(requested, CPU, cores=2)
    assert workers == requested
    assert f"--workers {requested}" in message


@pytest.mark.parametrize("cores", [1, 2, 4])
def test_auto_loads_in_the_main_process_on_a_cpu_with_few_cores(cores):
    workers, message = training_workers(AUTO_WORKERS, CPU, cores=cores)
    assert workers == 0
    assert "main process" in message and f"{cores} CPU core(s)" in message
    assert "--workers N" in message


def test_auto_keeps_worker_processes_with_cores_to_spare_or_a_gpu():
    assert training_workers(AUTO_WORKERS, CPU, cores=16)[0] == loader.DEFAULT_WORKERS
    assert training_workers(AUTO_WORKERS, CUDA, cores=2)[0] == loader.DEFAULT_WORKERS


def test_auto_counts_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.setattr(loader, "usable_cores", lambda: 1)
    assert training_workers(AUTO_WORKERS, CPU) == (0, training_workers(AUTO_WORKERS, CPU, 1)[1])
    monkeypatch.setattr(loader, "usable_cores", lambda: 32)
    assert training_workers(AUTO_WORKERS, CPU)[0] == loader.DEFAULT_WORKERS


def test_a_negative_count_other_than_auto_is_refused():
    with pytest.raises(ConfigError, match=r"--workers -3: use 0 .* or -1"):
        training_workers(-3, CPU, cores=2)
