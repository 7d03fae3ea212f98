"""Forward + backward of one training batch in float32 and under CPU bfloat16 autocast.

What the trainer's precision choice (``edgevision/engine/precision.py``) buys per model, without
the loader, loss or optimiser around it: a zoo model in train mode, channels-last (as the
trainer runs it), a random batch, the mean square of its outputs as the loss (the trainer's own
timing step, ``precision.step_seconds``). The modes take
turns (float32, bfloat16, float32, ...) so a load change on a shared machine hits both; the
median of the rounds is printed.

    .venv/bin/python benchmarks/train_step_precision.py --model nano-s yolo-n --batch 32
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics

import torch

from edgevision.engine.precision import step_seconds
from edgevision.models.zoo import build_model


def autocast(bf16: bool):
    """The autocast factory ``step_seconds`` takes: CPU bfloat16, or none."""
    if bf16:
        return lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=["nano-s", "yolo-n"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {args.threads} threads")
    for name in args.model:
        torch.manual_seed(0)
        model = build_model(name, num_classes=8).train().to(memory_format=torch.channels_last)
        images = torch.rand(args.batch, 3, args.imgsz, args.imgsz)
        images = images.contiguous(memory_format=torch.channels_last)
        times: dict[bool, list[float]] = {False: [], True: []}
        for bf16 in (False, True):  # warm-up: first calls pick and cache kernels
            step_seconds(model, images, autocast(bf16))
        for _ in range(args.rounds):
            for bf16 in (False, True):
                times[bf16].append(step_seconds(model, images, autocast(bf16)))
        fp32, bf16 = (statistics.median(times[mode]) for mode in (False, True))
        print(
            f"{name}: batch {args.batch} @ {args.imgsz}: float32 {fp32:.3f} s, "
            f"bfloat16 {bf16:.3f} s ({fp32 / bf16:.2f}x)"
        )


if __name__ == "__main__":
    main()
