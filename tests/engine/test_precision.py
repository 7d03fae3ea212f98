"""The training step's precision: bfloat16 autocast on CPUs with bfloat16 hardware, float32
elsewhere and with --no-amp; the weights and the loss stay float32 either way."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgevision.engine.precision import (
    choose_by_timing,
    cpu_bf16_flag,
    guard_strided_convs_on_one_pixel,
    training_precision,
)

CPU = torch.device("cpu")


def _cpuinfo(tmp_path, flags: str):
    path = tmp_path / "cpuinfo"
    path.write_text(
        "processor\t: 0\nmodel name\t: Test CPU\n"
        f"flags\t\t: fpu sse2 avx2 {flags}\n\nprocessor\t: 1\nflags\t\t: fpu\n"
    )
    return path


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("avx512f amx_tile amx_bf16 avx512_bf16", "amx_bf16"),
        ("avx512f avx512_bf16", "avx512_bf16"),
        ("avx512f avx512_vnni amx_int8", None),  # int8 hardware is not bfloat16 hardware
        ("", None),
    ],
)
def test_cpu_bf16_flag_reads_the_first_processor_flags(tmp_path, flags, expected):
    assert cpu_bf16_flag(_cpuinfo(tmp_path, flags)) == expected


def test_cpu_bf16_flag_without_cpuinfo_is_none(tmp_path):
    assert cpu_bf16_flag(tmp_path / "missing") is None


def _conv_dtypes(precision) -> tuple[torch.dtype, torch.dtype]:
    """(output dtype, weight dtype) of a conv run under the precision's autocast."""
    conv = nn.Conv2d(3, 4, 3)
    with precision.autocast():
        out = conv(torch.rand(1, 3, 8, 8))
    return out.dtype, conv.weight.dtype


def test_cpu_with_bf16_hardware_autocasts_convs_to_bfloat16(tmp_path):
    precision = training_precision(CPU, amp=True, cpuinfo=_cpuinfo(tmp_path, "amx_bf16"))
    assert _conv_dtypes(precision) == (torch.bfloat16, torch.float32)
    assert not precision.scaler.is_enabled()  # bfloat16 has float32's range: no loss scaling
    assert (
        precision.text
        == "precision: bfloat16 autocast (the CPU has amx_bf16; --no-amp for float32)"
    )


def test_cpu_without_bf16_hardware_trains_in_float32(tmp_path):
    precision = training_precision(CPU, amp=True, cpuinfo=_cpuinfo(tmp_path, "avx2 fma"))
    assert _conv_dtypes(precision) == (torch.float32, torch.float32)
    assert precision.text == "precision: float32 (no bfloat16 in this CPU's hardware)"


def test_no_amp_is_float32_even_with_bf16_hardware(tmp_path):
    precision = training_precision(CPU, amp=False, cpuinfo=_cpuinfo(tmp_path, "amx_bf16"))
    assert _conv_dtypes(precision) == (torch.float32, torch.float32)
    assert precision.text == "precision: float32 (--no-amp)"


def test_bf16_step_gives_float32_gradients_close_to_float32_ones(tmp_path):
    """One loss step under bfloat16 autocast: gradients land in the float32 weights and agree
    with the float32 step to bfloat16's precision (8 bits of mantissa)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 2, 1))
    images = torch.rand(4, 3, 16, 16)
    grads = []
    for flags in ("amx_bf16", ""):
        precision = training_precision(CPU, amp=True, cpuinfo=_cpuinfo(tmp_path, flags))
        model.zero_grad()
        with precision.autocast():
            out = model(images)
        out.float().square().mean().backward()
        grads.append(model[0].weight.grad.clone())
    assert grads[0].dtype == torch.float32
    assert not torch.equal(grads[0], grads[1])  # the bfloat16 step really ran in bfloat16
    torch.testing.assert_close(
        grads[0], grads[1], rtol=0.05, atol=0.05 * grads[1].abs().max().item()
    )


def _strided_conv_grads(guarded: bool, size: int, tmp_path, trials: int = 8):
    """Weight gradients of a 3x3 stride-2 conv on a (4, 64, size, size) input under the CPU
    bfloat16 precision, with memory full of NaN freed just before each step (what makes the
    unguarded kernel's unwritten reads show)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(64, 64, 3, stride=2, padding=1, bias=False)
    images = torch.randn(4, 64, size, size)
    precision = training_precision(CPU, amp=True, cpuinfo=_cpuinfo(tmp_path, "amx_bf16"))
    handles = guard_strided_convs_on_one_pixel(conv) if guarded else []
    grads, dtypes = [], set()
    for _ in range(trials):
        del_me = torch.full((1 << 20,), float("nan"))
        del del_me
        conv.zero_grad()
        with precision.autocast():
            out = conv(images.to(torch.bfloat16))
            still_on = torch.is_autocast_enabled("cpu")
        out.float().sum().backward()
        grads.append(conv.weight.grad.clone())
        dtypes.add(out.dtype)
        assert still_on  # the guard gives autocast back after the conv
    for handle in handles:
        handle.remove()
    return grads, dtypes


def test_guard_runs_strided_convs_on_one_pixel_in_float32(tmp_path):
    grads, dtypes = _strided_conv_grads(guarded=True, size=1, tmp_path=tmp_path)
    assert dtypes == {torch.float32}
    torch.manual_seed(0)
    conv = nn.Conv2d(64, 64, 3, stride=2, padding=1, bias=False)
    images = torch.randn(4, 64, 1, 1)
    conv(images.to(torch.bfloat16).float()).sum().backward()  # the float32 reference
    for grad in grads:
        assert torch.equal(grad, conv.weight.grad)


def test_guard_leaves_larger_inputs_to_autocast(tmp_path):
    _, dtypes = _strided_conv_grads(guarded=True, size=4, tmp_path=tmp_path, trials=1)
    assert dtypes == {torch.bfloat16}


def _fake_timer(bf16_seconds: float, fp32_seconds: float, calls: list):
    def timer(model, images, autocast):
        with autocast():
            bf16 = torch.is_autocast_enabled("cpu")
        calls.append((bf16, tuple(images.shape)))
        return bf16_seconds if bf16 else fp32_seconds

    return timer


@pytest.mark.parametrize(
    ("bf16_s", "fp32_s", "name"),
    [
        (0.5, 1.0, "bfloat16"),
        (0.5, 0.6, "bfloat16"),  # exactly the 1.2x margin
        (0.85, 1.0, "float32"),  # faster, but by less than the margin
        (1.2, 1.0, "float32"),
    ],
)
def test_choose_by_timing_keeps_bf16_only_when_faster_by_the_margin(tmp_path, bf16_s, fp32_s, name):
    precision = training_precision(CPU, amp=True, cpuinfo=_cpuinfo(tmp_path, "amx_bf16"))
    calls = []
    model = nn.Conv2d(3, 4, 3)
    chosen = choose_by_timing(precision, model, 8, 32, timer=_fake_timer(bf16_s, fp32_s, calls))
    assert calls == [(False, (8, 3, 32, 32)), (True, (8, 3, 32, 32))] * 4  # warm-up + 3 rounds
    assert chosen.name == name
    assert _conv_dtypes(chosen)[0] == (torch.bfloat16 if name == "bfloat16" else torch.float32)
    timed = f"a batch of 8 at 32 px took {bf16_s:.2f} s vs {fp32_s:.2f} s in float32"
    if name == "bfloat16":
        assert (
            chosen.text
            == f"precision: bfloat16 autocast (the CPU has amx_bf16; {timed}; --no-amp for float32)"
        )
        assert chosen.cpu_flag == "amx_bf16"
    else:
        assert (
            chosen.text
            == f"precision: float32 (bfloat16 autocast is not 1.2x faster here: {timed})"
        )
        assert chosen.cpu_flag is None


def test_choose_by_timing_leaves_the_model_and_random_state_as_they_were(tmp_path):
    """The real timing on a model with BatchNorm and dropout: its statistics, weights, mode and
    the random stream after it are those of a run that never timed anything."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Dropout(0.5), nn.Conv2d(8, 2, 1)
    )
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    precision = training_precision(CPU, amp=True, cpuinfo=_cpuinfo(tmp_path, "amx_bf16"))
    chosen = choose_by_timing(precision, model, 2, 16)
    assert torch.equal(torch.rand(3), expected)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not model.training and all(p.grad is None for p in model.parameters())
    assert chosen.name in ("bfloat16", "float32")


def test_choose_by_timing_passes_other_precisions_through(tmp_path):
    precision = training_precision(CPU, amp=True, cpuinfo=_cpuinfo(tmp_path, "avx2"))
    calls = []
    assert (
        choose_by_timing(precision, nn.Conv2d(3, 4, 3), 8, 32, timer=_fake_timer(0.1, 1, calls))
        is precision
    )
    assert calls == []


def test_choose_by_timing_without_a_conv_keeps_the_hardware_rule_untimed(tmp_path):
    precision = training_precision(CPU, amp=True, cpuinfo=_cpuinfo(tmp_path, "amx_bf16"))
    calls = []
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    assert choose_by_timing(precision, model, 8, 32, timer=_fake_timer(2, 1, calls)) is precision
    assert calls == []


@pytest.mark.parametrize("saved", ["bfloat16", "float32"])
def test_a_resumed_run_keeps_its_checkpoint_precision_without_timing(tmp_path, monkeypatch, saved):
    from edgevision.config import TrainConfig
    from edgevision.engine import trainer as trainer_module

    def no_timing(*args, **kwargs):
        raise AssertionError("a resumed run must not time the precisions again")

    monkeypatch.setattr(trainer_module, "choose_by_timing", no_timing)
    trainer = trainer_module.Trainer(None, TrainConfig(), tmp_path, CPU)
    trainer.resumed_precision = saved
    precision = training_precision(CPU, amp=True, cpuinfo=_cpuinfo(tmp_path, "amx_bf16"))
    settled = trainer._settle_precision(precision, nn.Conv2d(3, 4, 3))
    assert settled.name == saved == trainer.precision_name
    assert _conv_dtypes(settled)[0] == getattr(torch, saved)
    if saved == "float32":
        assert settled.text == "precision: float32 (as the resumed run)"


def test_deterministic_keeps_the_hardware_rule_untimed(tmp_path, monkeypatch):
    """Two launches of one --deterministic command must train alike: no timing decides."""
    from edgevision.config import TrainConfig
    from edgevision.engine import trainer as trainer_module

    def no_timing(*args, **kwargs):
        raise AssertionError("--deterministic must not time the precisions")

    monkeypatch.setattr(trainer_module, "choose_by_timing", no_timing)
    trainer = trainer_module.Trainer(None, TrainConfig(deterministic=True), tmp_path, CPU)
    precision = training_precision(CPU, amp=True, cpuinfo=_cpuinfo(tmp_path, "avx512_bf16"))
    settled = trainer._settle_precision(precision, nn.Conv2d(3, 4, 3))
    assert settled.name == "bfloat16" == trainer.precision_name
    assert _conv_dtypes(settled)[0] == torch.bfloat16
    assert settled.text == (
        "precision: bfloat16 autocast (the CPU has avx512_bf16; not timed under --deterministic; "
        "--no-amp for float32)"
    )
    elsewhere = training_precision(CPU, amp=True, cpuinfo=_cpuinfo(tmp_path, "avx2"))
    assert trainer._settle_precision(elsewhere, nn.Conv2d(3, 4, 3)).name == "float32"


@pytest.mark.parametrize(("step_s", "rounds_timed"), [(0.5, 3), (0.34, 3), (0.21, 5), (0.01, 10)])
def test_short_steps_are_timed_more_often(tmp_path, step_s, rounds_timed):
    """At least 3 rounds, then more until each precision has 1 s of timing, at most 10: with
    steps of a few hundredths of a second, 3 rounds let a busy moment decide."""
    precision = training_precision(CPU, amp=True, cpuinfo=_cpuinfo(tmp_path, "amx_bf16"))
    calls = []
    choose_by_timing(precision, nn.Conv2d(3, 4, 3), 8, 32, timer=_fake_timer(step_s, step_s, calls))
    assert len(calls) == 2 * (1 + rounds_timed)  # a warm-up round, then the timed ones
