"""Configuration dataclasses. Every field has a default and a one-line comment.

YAML is used only to save a run's config (``args.yaml``) and read it back for ``--resume``; a config
file is never executed or imported.
"""

from __future__ import annotations

import difflib
import inspect
import io
import tokenize
from dataclasses import asdict, dataclass, fields

from edgevision.core.errors import ConfigError


@dataclass
class TrainConfig:
    """Everything ``edgevision train`` accepts; CLI flags use the same names (Ultralytics spelling)."""

    data: str = ""  # dataset: VOC root, COCO json, Ultralytics data YAML or edgevision data YAML
    model: str = "nano-s"  # zoo name (see `edgevision models`)
    task: str = ""  # detect | classify; "" = the model's task (`edgevision models` lists it)
    epochs: int = 100  # passes over the training split
    imgsz: int = 0  # square input size; 0 = the model's default
    batch: int = 32  # images per iteration (per process under DDP)
    nbs: int = 0  # nominal batch: accumulate gradients to this many images; 0 = the README's rule
    optimizer: str = (
        "auto"  # auto | sgd | adamw (auto: AdamW below 10k iterations or --time <= 60, else SGD)
    )
    lr0: float = 0.0  # initial learning rate; 0 = scaled with images per step (README's rule)
    lrf: float = 0.05  # final learning rate as a fraction of lr0 (cosine schedule)
    momentum: float = 0.937  # SGD momentum / Adam beta1
    weight_decay: float = 5e-4  # applied to weights only, not to biases and norm layers
    warmup_epochs: float = 1.0  # linear warm-up length in epochs (at least 100 iterations)
    warmup_bias_lr: float = 0.1  # bias learning rate at the start of warm-up (falls to lr0)
    ema: bool = True  # keep an exponential moving average of the weights for val and export
    ema_decay: float = 0.9998  # EMA decay at steady state (ramped up over the first updates)
    clip_grad: float = 10.0  # max gradient norm; 0 disables clipping
    amp: bool = True  # mixed precision: CUDA bf16 (else fp16); CPU bf16 if native and timed faster
    device: str = ""  # cpu | cuda | cuda:N; "" = cuda when available else cpu
    workers: int = -1  # data-loading worker processes; -1 = auto (0 on a CPU of <= 4 cores, else 2)
    sync_bn: bool = False  # synchronise BatchNorm statistics across DDP processes (CUDA only)
    seed: int = 0  # seed for every random choice (data order, augmentation, init)
    deterministic: bool = (
        False  # torch deterministic algorithms; CPU bf16 by hardware, untimed (README: Precision)
    )
    project: str = "runs/train"  # parent folder of run folders
    name: str = "exp"  # run folder name under project
    exist_ok: bool = False  # reuse project/name instead of creating name2, name3, ...
    cache: str = (
        "auto"  # auto | ram | none: decoded, resized training images in RAM (auto: when they fit)
    )
    close_mosaic: int = 10  # turn mosaic off for the last N epochs
    mosaic: float = 1.0  # probability of a 4-image mosaic
    mixup: float = 0.0  # probability of mixup
    degrees: float = 0.0  # random rotation range (+/- degrees)
    translate: float = 0.1  # random translation (fraction of image size)
    scale: float = 0.5  # random scale gain range (1 +/- scale)
    fliplr: float = 0.5  # horizontal flip probability
    hsv_h: float = 0.015  # hue jitter (fraction)
    hsv_s: float = 0.7  # saturation jitter (fraction)
    hsv_v: float = 0.4  # value jitter (fraction)
    val: bool = True  # validate during training
    val_interval: int = 1  # validate every N epochs (and always after the last)
    conf: float = 0.001  # confidence threshold used for validation mAP
    iou: float = 0.6  # NMS IoU threshold used for validation
    max_det: int = 300  # detections kept per image
    weights: str = ""  # initial weights (.pt) loaded by shape-matched keys
    freeze: str = ""  # "backbone" or N (freeze the first N top-level modules); "" = none
    head_lr_mult: float = 1.0  # learning-rate multiplier for the head (transfer learning)
    label_smoothing: float = 0.0  # classification: cross-entropy label smoothing (0.1 is common)
    erasing: float = 0.0  # classification: probability of erasing a random rectangle
    prog_resize: float = 1.0  # classification: first epochs at this share of --imgsz; 1 = off
    kpt_sigmas: str = (
        ""  # pose: comma-separated OKS sigma per keypoint; "" = the data's (see README)
    )
    fl_gamma: float = 2.0  # focal-loss heads (ssd-grid): focusing exponent gamma
    fl_alpha: float = 0.25  # focal-loss heads (ssd-grid): weight of the positive class
    anchors: str = (
        "auto"  # anchor-based heads: auto (check, re-cluster below 0.98 recall) | default | FILE
    )
    resume: str = ""  # run folder (or its last.pt) to continue from
    time: float = 0.0  # wall-clock budget in minutes; 0 = no limit (epochs still apply)
    patience: int = 0  # stop when val mAP has not improved for N epochs; 0 = never
    save_period: int = 0  # also save epochN.pt every N epochs; 0 = only last/best
    plots: bool = True  # write PNG plots into the run folder
    verbose: bool = True  # progress bar and per-epoch lines

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Build from a dict; an unknown key raises ConfigError naming the close matches."""
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise ConfigError(f"unknown train option {key!r}{hint}")
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


def field_comments(config_cls: type) -> dict[str, str]:
    """Each field's one-line comment in ``config_cls``'s source, by field name: the text the
    CLI shows in ``--help``, so the flags and their documentation cannot drift apart.

    A field's comment is the first ``#`` comment inside its statement (also when the value is
    wrapped in parentheses over several lines); comments on lines of their own are skipped.
    Without the source (a frozen build) the result is empty and the flags go without help.
    """
    try:
        source = inspect.getsource(config_cls)
    except (OSError, TypeError):
        return {}
    names = {f.name for f in fields(config_cls)}
    comments: dict[str, str] = {}
    current, previous = None, None  # the field whose statement is being read; the last token
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NEWLINE:
            current = None
        elif token.type == tokenize.OP and token.string == ":" and previous is not None:
            at_start = (
                previous.type == tokenize.NAME and previous.line[: previous.start[1]].strip() == ""
            )
            if at_start and previous.string in names:
                current = previous.string
        elif token.type == tokenize.COMMENT and current and current not in comments:
            comments[current] = token.string.lstrip("#").strip()
        if token.type not in (tokenize.NL, tokenize.COMMENT):
            previous = token
    return comments
