"""How often the trainer's bfloat16-or-float32 timing comes out each way for one model and size.

``edgevision/engine/precision.py`` times one forward + backward per precision before a run and
keeps bfloat16 at >= 1.2x. This makes that choice ``--repeats`` times, as that many launches of
one command would, and prints the spread of the measured speed-up (float32 time / bfloat16
time) and how many times bfloat16 was chosen. ``--busy`` keeps one core loaded by a spinning
process, as a neighbour on a shared machine would. ``--fixed-rounds N`` times exactly N
rounds per choice instead of the trainer's rule (3, or more up to 10 for steps under 1/3 s).

    .venv/bin/python benchmarks/precision_choice_spread.py --model nano-s --imgsz 64 --batch 4
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics

import torch

from edgevision.engine.precision import (
    MIN_SPEEDUP,
    choose_by_timing,
    step_seconds,
    training_precision,
)
from edgevision.models.zoo import build_model


def _spin() -> None:
    while True:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="nano-s")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--imgsz", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--busy", action="store_true", help="one spinning process beside it")
    parser.add_argument("--fixed-rounds", type=int, default=0, help="0: the trainer's rule")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    precision = training_precision(torch.device("cpu"), amp=True)
    if not precision.cpu_flag:
        raise SystemExit("this CPU has no bfloat16 in hardware: the trainer does not time it")
    model = build_model(args.model, num_classes=8).to(memory_format=torch.channels_last)
    spinner = multiprocessing.Process(target=_spin, daemon=True) if args.busy else None
    if spinner:
        spinner.start()
    ratios: list[float] = []
    paired: list[float] = []  # median of each round's float32 / bfloat16 (an alternative rule)
    chose_bf16 = 0
    try:
        for _ in range(args.repeats):
            seen: dict[bool, list[float]] = {True: [], False: []}

            def timer(model, images, autocast, seen=seen):
                seconds = step_seconds(model, images, autocast)
                with autocast():
                    seen[torch.is_autocast_enabled("cpu")].append(seconds)
                return seconds

            rounds = {"rounds": args.fixed_rounds, "max_rounds": args.fixed_rounds}
            chosen = choose_by_timing(
                precision,
                model,
                args.batch,
                args.imgsz,
                timer=timer,
                **(rounds if args.fixed_rounds else {}),
            )
            # the first step of each precision is the warm-up, as in choose_by_timing
            ratios.append(min(seen[False][1:]) / min(seen[True][1:]))
            pairs = zip(seen[False][1:], seen[True][1:], strict=True)
            paired.append(statistics.median([f / b for f, b in pairs]))
            chose_bf16 += chosen.name == "bfloat16"
    finally:
        if spinner:
            spinner.terminate()
    print(
        f"{args.model} batch {args.batch} at {args.imgsz} px, {args.threads} threads, "
        f"{args.fixed_rounds or 'the trainer rule of'} timed rounds, {args.repeats} choices"
        f"{', one busy process beside' if args.busy else ''} "
        f"(load {os.getloadavg()[0]:.1f} at the end)"
    )
    values = sorted(ratios)
    print(
        f"  float32 / bfloat16 time: median {statistics.median(values):.2f}, range "
        f"{values[0]:.2f}-{values[-1]:.2f}; chose bfloat16 {chose_bf16} of {args.repeats}"
    )
    values = sorted(paired)
    print(
        f"  median of paired rounds: median {statistics.median(values):.2f}, range "
        f"{values[0]:.2f}-{values[-1]:.2f}; would choose bfloat16 "
        f"{sum(v >= MIN_SPEEDUP for v in values)} of {args.repeats}"
    )


if __name__ == "__main__":
    main()
