"""Mixed precision for the training step: which autocast a run gets, and the line that says so.

- CUDA: bfloat16 where the GPU supports it, else float16 with a loss scaler.
- CPU: bfloat16 autocast only where the CPU computes bfloat16 in hardware (``avx512_bf16`` or
  ``amx_bf16`` among its flags: Intel Cooper Lake / Sapphire Rapids and later, AMD Zen 4 and
  later). Elsewhere PyTorch would emulate bfloat16 with float32 instructions plus conversions,
  slower than plain float32, so those CPUs train in float32. Weights, optimiser state, EMA and
  the loss stay float32 (the task casts the head's output back before its loss); only the
  layers autocast lists (convolutions, matrix products) run in bfloat16.
- One exception on CPU: a strided convolution whose input is one pixel high or wide runs in
  float32 (:func:`guard_strided_convs_on_one_pixel`). PyTorch 2.13's bfloat16 CPU kernel for that
  shape reads memory it never wrote: on a (4, 64, 1, 1) input the weight gradient of a 3x3
  stride-2 conv came out non-finite in 5-8 of 8 tries, of a 5x5 stride-2 one in 2-7 (every
  stride-1 conv and every input of 2, 3, 4, 5 or 8 px was clean: kernels 1/3/5, dense and
  depthwise, both memory layouts). SSD's last extra layers meet it at small input
  sizes; the guard keeps those few tiny convs exact instead of training a model into NaN.
- Where bfloat16 is possible on a CPU the trainer still times it before using it
  (:func:`choose_by_timing`): one forward + backward of a random batch of the run's size, on a
  copy of the model, in each precision, and uses bfloat16 only when it is at least
  :data:`MIN_SPEEDUP` (1.2) times as fast. bfloat16 pays where dense convolutions dominate (yolo-n
  at 320, batch 32: 2.07x faster per batch) and not where depthwise convolutions and BatchNorm
  do (cls-shufflenetv2-x0.5 at 128, batch 64: 0.97x; its 5-minute run took 57 epochs in
  bfloat16 against 73 in float32), so a rule by hardware alone would slow some runs down. A
  resumed run keeps the precision its checkpoint was trained in. Under torchrun (several
  processes) nothing is timed and the hardware rule decides, so every process trains alike; so
  too under ``--deterministic``, since a timing on a busy machine can fall either way and two
  launches of one command would then train in different precisions.
- ``--no-amp``: float32 everywhere.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

# bfloat16 must time at least this much faster than float32 to be used. The timing covers the
# model's forward + backward only, and a whole epoch gains less (loss, optimiser, EMA, loader and
# validation do not speed up): on the photo set nano-s timed 1.17x / 1.14x faster at batch 8 / 16
# and its epochs took as long or longer (0.86 vs 0.82 min on average, 0.75 vs 0.76); at batch 32,
# timed 1.25-1.36x, they took 0.66-0.69 vs 0.71-0.74 min. Below this margin a run would give up
# float32's precision for no time.
MIN_SPEEDUP = 1.2

# Flags in /proc/cpuinfo that mean bfloat16 arithmetic in hardware.
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@dataclass(frozen=True)
class Precision:
    """A training step's precision: the autocast factory, its loss scaler and a log line."""

    autocast: Callable[[], contextlib.AbstractContextManager]
    scaler: torch.amp.GradScaler
    text: str
    name: str = "float32"  # the autocast dtype's name, or float32 (kept in checkpoints)
    cpu_flag: str | None = None  # set for bfloat16 autocast on a CPU (the hardware flag)


def cpu_bf16_flag(cpuinfo: str | Path = "/proc/cpuinfo") -> str | None:
    """The first of :data:`NATIVE_BF16_FLAGS` this CPU lists, or None (also where there is no
    ``/proc/cpuinfo``: not Linux)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return next((flag for flag in NATIVE_BF16_FLAGS if flag in flags), None)
    return None


def training_precision(
    device: torch.device, amp: bool, cpuinfo: str | Path = "/proc/cpuinfo"
) -> Precision:
    """The autocast and scaler for ``device`` (``cpuinfo``: where the CPU's flags are read)."""
    off = torch.amp.GradScaler("cuda", enabled=False)
    if not amp:
        return Precision(contextlib.nullcontext, off, "precision: float32 (--no-amp)")
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
        name = str(dtype).removeprefix("torch.")
        return Precision(
            lambda: torch.autocast("cuda", dtype=dtype), scaler, f"precision: {name} autocast", name
        )
    if device.type == "cpu":
        flag = cpu_bf16_flag(cpuinfo)
        if flag:
            return Precision(
                lambda: torch.autocast("cpu", dtype=torch.bfloat16),
                off,
                f"precision: bfloat16 autocast (the CPU has {flag}; --no-amp for float32)",
                "bfloat16",
                flag,
            )
        return Precision(
            contextlib.nullcontext, off, "precision: float32 (no bfloat16 in this CPU's hardware)"
        )
    return Precision(contextlib.nullcontext, off, f"precision: float32 ({device.type})")


def guard_strided_convs_on_one_pixel(model: nn.Module) -> list:
    """Run every strided ``Conv2d`` of ``model`` in float32 (autocast off, input cast up) whenever
    its input is one pixel high or wide; other calls are left to autocast. See the module
    docstring for why.

    Returns:
        The hook handles (``handle.remove()`` undoes the guard).
    """

    def before(conv: nn.Conv2d, args: tuple):
        x = args[0]
        if not torch.is_autocast_enabled("cpu") or min(x.shape[-2:]) != 1:
            return None
        conv._autocast_was_on = True
        torch.set_autocast_enabled("cpu", False)
        return (x.float(), *args[1:])

    def after(conv: nn.Conv2d, args: tuple, output: torch.Tensor) -> None:
        if getattr(conv, "_autocast_was_on", False):
            conv._autocast_was_on = False
            torch.set_autocast_enabled("cpu", True)

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and max(module.stride) > 1:
            handles.append(module.register_forward_pre_hook(before))
            handles.append(module.register_forward_hook(after, always_call=True))
    return handles


def step_seconds(model: nn.Module, images: torch.Tensor, autocast) -> float:
    """One forward + backward of ``model`` on ``images`` (loss: mean square of the outputs)."""
    start = time.perf_counter()
    with autocast():
        out = model(images)
    outputs = out if isinstance(out, (list, tuple)) else [out]
    sum(o.float().square().mean() for o in outputs).backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def choose_by_timing(
    precision: Precision,
    model: nn.Module,
    batch: int,
    imgsz: int,
    rounds: int = 3,
    timer: Callable[..., float] = step_seconds,
    min_seconds: float = 1.0,
    max_rounds: int = 10,
) -> Precision:
    """``precision`` if its CPU bfloat16 autocast trains ``model`` at least :data:`MIN_SPEEDUP`
    times as fast as float32 at this batch and size, else float32; the text gives both times.
    Other precisions pass through.

    The input is a random batch with the first conv's channel count. The timing runs on a deep
    copy in train mode (the model's BatchNorm statistics are not touched) with the random number
    generators restored afterwards, so the run is the same as without it; each precision gets
    one warm-up step, then the fastest of ``rounds`` — or of more, up to ``max_rounds``, until
    each precision has been timed for ``min_seconds``. Short steps need the extra rounds: at
    nano-s, 64 px, batch 4 (0.04 s a step, bfloat16 0.92x as fast) beside a busy process, 3
    rounds chose bfloat16 in 40 of 340 tries and 10 rounds in 8 of 340 (benchmarks/RESULTS.md);
    steps over a third of a second keep 3 rounds. Only ``--deterministic`` rules a flip out.
    ``timer`` is :func:`step_seconds` (tests pass their own).
    """
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if not precision.cpu_flag or first_conv is None:  # no conv: no input shape to time with,
        return precision  # so the hardware rule stands
    probe = copy.deepcopy(model).train()
    float32 = Precision(contextlib.nullcontext, precision.scaler, "")
    times: dict[str, list[float]] = {"bf16": [], "fp32": []}
    with torch.random.fork_rng(devices=[]):
        images = torch.rand(max(batch, 1), first_conv.in_channels, imgsz, imgsz)
        images = images.contiguous(memory_format=torch.channels_last)
        for round_index in range(max(max_rounds, rounds) + 1):
            timed_s = min(sum(times["bf16"]), sum(times["fp32"]))
            if round_index > rounds and timed_s >= min_seconds:
                break
            for key, candidate in (("fp32", float32), ("bf16", precision)):
                seconds = timer(probe, images, candidate.autocast)
                if round_index:  # the first round is warm-up: kernels are chosen and cached
                    times[key].append(seconds)
    bf16, fp32 = min(times["bf16"]), min(times["fp32"])
    timed = f"a batch of {batch} at {imgsz} px took {bf16:.2f} s vs {fp32:.2f} s in float32"
    if fp32 >= MIN_SPEEDUP * bf16:
        return replace(
            precision,
            text=f"precision: bfloat16 autocast (the CPU has {precision.cpu_flag}; {timed}; "
            "--no-amp for float32)",
        )
    return Precision(
        contextlib.nullcontext,
        precision.scaler,
        f"precision: float32 (bfloat16 autocast is not {MIN_SPEEDUP:g}x faster here: {timed})",
    )
