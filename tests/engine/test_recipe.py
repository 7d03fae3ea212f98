"""The default-recipe rule (engine/recipe.py) and a real run whose optimiser steps follow it."""

from __future__ import annotations

import math

import pytest
import torch

from edgevision import api
from edgevision.core.errors import ConfigError
from edgevision.data.synth.detect import synthesize_detection
from edgevision.engine.checkpoint import load_checkpoint
from edgevision.engine.recipe import MIN_STEPS, plan_recipe


@pytest.mark.parametrize(
    ("batch", "lr0"),
    # the benchmark set's sweep (1,200 images, 20 epochs): 0.003 x sqrt(batch / 16) below 16
    # images, 0.003 x batch / 16 above, 0.01 at most
    [(8, 0.003 * math.sqrt(0.5)), (16, 0.003), (32, 0.006), (64, 0.01)],
)
def test_a_small_set_steps_on_every_batch_and_scales_adamw_lr(batch, lr0):
    iterations = math.ceil(1200 / batch)
    recipe = plan_recipe(batch, iterations, epochs=20)
    assert recipe.accumulate == 1 and recipe.optimizer == "adamw"
    assert recipe.steps_per_epoch == iterations
    assert recipe.lr0 == pytest.approx(lr0)


def test_the_issue_example_header():
    header = plan_recipe(32, 38, epochs=20).header()
    assert header.startswith(
        "recipe: batch 32, 38 batches per epoch -> accumulating 1, 38 optimiser steps per epoch "
        "(760 in 20 epochs), adamw lr0 0.006"
    )
    assert "under 2000 steps at 64 images" in header and "0.003 x linear(32/16)" in header
    assert "0.003 x sqrt(8/16)" in plan_recipe(8, 150, epochs=20).header()


def test_a_long_run_accumulates_to_the_nominal_batch_and_goes_sgd():
    # COCO-sized: 118k images at batch 16, 300 epochs: plenty of steps at 64 images each.
    recipe = plan_recipe(16, 7393, epochs=300)
    assert recipe.accumulate == 4 and recipe.images_per_step == 64
    assert recipe.optimizer == "sgd" and recipe.lr0 == pytest.approx(0.01)
    assert recipe.steps_per_epoch == math.ceil(7393 / 4)


def test_accumulation_starts_exactly_at_min_steps():
    nominal = 64 // 8
    enough = plan_recipe(8, MIN_STEPS * nominal, epochs=1, optimizer="adamw")
    short = plan_recipe(8, MIN_STEPS * nominal - 1, epochs=1, optimizer="adamw")
    assert (enough.accumulate, short.accumulate) == (nominal, 1)
    assert enough.lr0 == pytest.approx(0.01)  # 64 images per step: 4 x 0.003, at the cap


def test_user_settings_win_and_time_budgets_step_every_batch():
    assert plan_recipe(4, 10, 5, nbs=64).accumulate == 16  # --nbs: Ultralytics' rule, as typed
    assert plan_recipe(4, 10, 5, lr0=0.02).lr0 == 0.02
    timed = plan_recipe(8, MIN_STEPS * 100, epochs=1000, time_minutes=30)
    assert timed.accumulate == 1 and timed.optimizer == "adamw"  # --time <= 60: a short run
    assert "until the 30-minute budget or epoch 1000, whichever is first" in timed.header(30)
    assert plan_recipe(8, 10, epochs=5000, time_minutes=120).optimizer == "sgd"


def test_learning_rates_stay_in_range():
    assert plan_recipe(1, 100, 10).lr0 == pytest.approx(0.00075)  # sqrt(1/16) x 0.003
    assert plan_recipe(1, 100, 10, lr0=0.0001).lr0 == 0.0001  # a typed lr0 is not clamped
    assert plan_recipe(512, 100, 10).lr0 == pytest.approx(0.01)  # kept within the range
    assert "kept within" in plan_recipe(512, 100, 10).reason
    assert plan_recipe(16, 100, 10, optimizer="sgd").lr0 == pytest.approx(0.0025)  # 0.01 x 16/64


@pytest.mark.parametrize(
    ("options", "match"),
    [({"batch": 0}, "--batch 0"), ({"nbs": -1}, "--nbs -1"), ({"optimizer": "adam"}, "adam")],
)
def test_bad_settings_are_named(options, match):
    settings = {"batch": 8, "iterations_per_epoch": 10, "epochs": 1, **options}
    with pytest.raises(ConfigError, match=match):
        plan_recipe(**settings)


@pytest.mark.parametrize(("nbs", "accumulate"), [(0, 1), (8, 2)])
def test_a_training_run_takes_the_steps_the_rule_plans(tmp_path, capsys, nbs, accumulate):
    data = synthesize_detection(tmp_path / "voc", n_train=14, n_val=2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = api.train(
            data=str(data), model="nano-s", imgsz=64, epochs=2, batch=4, nbs=nbs, workers=0,
            mosaic=0.0, val=False, plots=False, verbose=False, project=str(tmp_path), name="run",
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    iterations = math.ceil(14 / 4)  # 4 batches, the last of 2 images
    steps = 2 * math.ceil(iterations / accumulate)
    assert f"batch 4, {iterations} batches per epoch -> accumulating {accumulate}" in (
        capsys.readouterr().out
    )
    assert summary["optimizer_steps"] == steps
    # AdamW's own per-parameter step counter, saved in last.pt, counted the same steps.
    state = load_checkpoint(tmp_path / "run" / "weights" / "last.pt")["optimizer"]["state"]
    assert {float(s["step"]) for s in state.values()} == {float(steps)}
