"""LR schedule, parameter groups and EMA."""

import pytest
import torch

from edgevision.core.errors import ConfigError
from edgevision.engine.ema import ModelEMA
from edgevision.engine.optim import build_optimizer, parameter_groups
from edgevision.engine.run_dir import prepare_run_dir
from edgevision.engine.schedule import WarmupCosine, cosine_factor


def _model():
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Conv2d(4, 2, 1)
    )


def test_cosine_endpoints():
    assert cosine_factor(0, 0.05) == pytest.approx(1.0)
    assert cosine_factor(1, 0.05) == pytest.approx(0.05)
    assert cosine_factor(0.5, 0.0) == pytest.approx(0.5)


def test_groups_put_decay_on_weights_only_and_head_multiplier():
    model = _model()
    groups = parameter_groups(model, 5e-4, head_prefixes=("2.",), head_lr_mult=10, lr=0.01)
    by = {(g["name"], g["lr"]): g for g in groups}
    assert by[("weight", 0.01)]["weight_decay"] == 5e-4
    assert by[("norm", 0.01)]["weight_decay"] == 0 and by[("bias", 0.01)]["weight_decay"] == 0
    head = by[("weight", 0.1)]["params"]
    assert len(head) == 1 and head[0] is model[2].weight
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_warmup_then_cosine():
    model = _model()
    optimizer = build_optimizer("sgd", parameter_groups(model, 0, lr=0.01), 0.01, 0.937)
    schedule = WarmupCosine(
        optimizer, total_iters=1000, warmup_iters=100, lrf=0.1, warmup_bias_lr=0.1
    )
    schedule.step(0)
    lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert lrs["weight"] == 0 and lrs["bias"] == pytest.approx(0.1)
    assert optimizer.param_groups[0]["momentum"] == pytest.approx(0.8)
    schedule.step(100)
    assert all(g["lr"] == pytest.approx(0.01) for g in optimizer.param_groups)
    schedule.step(1000)
    assert all(g["lr"] == pytest.approx(0.001) for g in optimizer.param_groups)


def test_unknown_optimizer_name():
    with pytest.raises(ConfigError, match="unknown optimizer"):
        build_optimizer("adamx", [{"params": [torch.zeros(1, requires_grad=True)]}], 0.1, 0.9)


def test_ema_tracks_weights_with_ramped_decay():
    model = torch.nn.Linear(2, 1, bias=False)
    ema = ModelEMA(model, decay=0.5, tau=1e-9)
    with torch.no_grad():
        model.weight.fill_(2.0)
    start = ema.module.weight.clone()
    ema.update(model)
    torch.testing.assert_close(ema.module.weight, 0.5 * start + 0.5 * 2.0)
    assert not ema.module.weight.requires_grad


def test_ema_averages_buffers_and_copies_counters():
    model = _model()
    ema = ModelEMA(model, decay=0.75, tau=1e-9)
    start = {k: v.clone() for k, v in ema.module.state_dict().items()}
    with torch.no_grad():
        model[1].running_mean.fill_(4.0)
        model[2].bias.fill_(-1.0)
    model[1].num_batches_tracked.fill_(7)
    ema.update(model)
    state = ema.module.state_dict()
    torch.testing.assert_close(state["1.running_mean"], 0.75 * start["1.running_mean"] + 1.0)
    torch.testing.assert_close(state["2.bias"], 0.75 * start["2.bias"] - 0.25)
    torch.testing.assert_close(state["0.weight"], start["0.weight"])  # unchanged weights stay
    assert state["1.num_batches_tracked"].item() == 7


def test_run_dir_increments_and_refuses_unwritable(tmp_path):
    first = prepare_run_dir(str(tmp_path), "exp", exist_ok=False)
    second = prepare_run_dir(str(tmp_path), "exp", exist_ok=False)
    assert first.name == "exp" and second.name == "exp2"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="not writable"):
        prepare_run_dir(str(blocker), "exp", exist_ok=False)


def test_csv_logger_widens_header_when_metrics_appear(tmp_path):
    import csv

    from edgevision.engine.callbacks import CSVLogger

    path = tmp_path / "results.csv"
    logger = CSVLogger(path)
    logger.on_epoch_end(None, 0, {"epoch": 1, "train_box": 1.0})
    logger.on_epoch_end(None, 1, {"epoch": 2, "train_box": 0.5, "mAP50": 0.3})
    resumed = CSVLogger(path)  # a resumed run appends to the same table
    resumed.on_epoch_end(None, 2, {"epoch": 3, "train_box": 0.4, "mAP50": 0.4})
    rows = list(csv.DictReader(open(path)))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["mAP50"] == "" and rows[1]["mAP50"] == "0.3" and rows[2]["mAP50"] == "0.4"


def test_auto_optimizer_treats_a_time_budget_as_a_short_run(tmp_path):
    from edgevision.config import TrainConfig
    from edgevision.engine.trainer import Trainer

    class Task:
        head_prefixes, head_lr_mult = (), 1.0

    def build(**options):
        trainer = Trainer(Task(), TrainConfig(**options), tmp_path, torch.device("cpu"))
        return trainer._build_optimizer(_model(), total_iters=19_000, iters_per_epoch=19)[0]

    assert isinstance(
        build(epochs=1000, time=6), torch.optim.AdamW
    )  # 6 minutes: a few hundred steps
    assert isinstance(build(epochs=1000), torch.optim.SGD)  # 19k planned iterations: a long run
