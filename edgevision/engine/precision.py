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
  shape reads memory it never wrote: on a (4, 64, 1, 1) input, a 3x3 stride-2 conv's weight
  gradient came out non-finite in 5-8 of 8 tries (never for other shapes tried: 1-8 px inputs,
  kernels 1/3/5, strides 1/2, dense and depthwise). SSD's last extra layers meet it at small input
  sizes; the guard keeps those few tiny convs exact instead of training a model into NaN.
- ``--no-amp``: float32 everywhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

# Flags in /proc/cpuinfo that mean bfloat16 arithmetic in hardware.
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@dataclass(frozen=True)
class Precision:
    """A training step's precision: the autocast factory, its loss scaler and a log line."""

    autocast: Callable[[], contextlib.AbstractContextManager]
    scaler: torch.amp.GradScaler
    text: str
    cpu_bf16: bool = False  # bfloat16 autocast on a CPU: :func:`guard_strided_convs_on_one_pixel`


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
            lambda: torch.autocast("cuda", dtype=dtype), scaler, f"precision: {name} autocast"
        )
    if device.type == "cpu":
        flag = cpu_bf16_flag(cpuinfo)
        if flag:
            return Precision(
                lambda: torch.autocast("cpu", dtype=torch.bfloat16),
                off,
                f"precision: bfloat16 autocast (the CPU has {flag}; --no-amp for float32)",
                cpu_bf16=True,
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
