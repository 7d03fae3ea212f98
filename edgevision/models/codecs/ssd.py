"""The SSD prior-box codec (SSD, SSDLite, the fastai multi-grid SSD), torch side.

**Raw output** (B, N, 4 + C + 1). N counts every prior: levels in stride order, cells row-major
within a level, the priors of one cell consecutive (torchvision's ``DefaultBoxGenerator`` and
``SSDHead`` order). Channels 0:4 are the offsets ``tx, ty, tw, th`` of the prior, channels 4:
are C + 1 class logits with **background first** (index 0), object class c at index 1 + c.

**Priors** are ``(cx, cy, w, h)`` relative to the input (0..1 on each axis; the pixel box is
``cx * W`` etc., so on a non-square input a "square" prior is stretched like the image, as in
SSD). Centres are ``((j + 0.5) / f_w, (i + 0.5) / f_h)`` for the cell in row i, column j of a
level of f_h x f_w cells. Every level is one :class:`PriorLevel`: a ``scale``, ``zooms`` and
``shapes`` (w, h multipliers); its priors per cell are, zoom by zoom, shape by shape,
``w = min(scale * zoom * shape_w, 1)``, ``h = min(scale * zoom * shape_h, 1)`` (sizes above the
input are clipped to it, torchvision's ``clip=True``). The same description covers:

- SSD / SSDLite (:func:`ssd_prior_levels`): scales ``s_k`` linear from ``min_scale`` to
  ``max_scale`` over the K levels, ``s_K = 1``; zooms ``(1,)``; shapes ``(1, 1)``,
  ``(r, r)`` with ``r = sqrt(s_k+1 / s_k)`` (the extra box of side ``sqrt(s_k * s_k+1)``), then
  ``(sqrt(a), 1/sqrt(a))`` and ``(1/sqrt(a), sqrt(a))`` for each aspect ratio a of the level.
  SSDLite's ``min_scale=0.2, max_scale=0.95, aspect_ratios=(2, 3)`` on 6 levels gives per cell
  (w = h for the first two; clipped values marked *):

  ====== ====== ============ ============= =============
  level  s_k    sqrt(s s')   a = 2 (w, h)  a = 3 (w, h)
  ====== ====== ============ ============= =============
  0      0.20   0.2646       0.2828 0.1414 0.3464 0.1155
  1      0.35   0.4183       0.4950 0.2475 0.6062 0.2021
  2      0.50   0.5701       0.7071 0.3536 0.8660 0.2887
  3      0.65   0.7211       0.9192 0.4596 1.0*   0.3753
  4      0.80   0.8718       1.0*   0.5657 1.0*   0.4619
  5      0.95   0.9747       1.0*   0.6718 1.0*   0.5485
  ====== ====== ============ ============= =============

  (each a-pair is followed by its transpose (h, w)), so 6 priors per cell.
- the fastai multi-grid SSD (:func:`grid_prior_levels`): a level with g cells per side at the
  design size gets ``scale = 1 / g`` (the cell), zooms ``(0.7, 1.0, 1.3)``, shapes ``(1, 1),
  (1, 0.5), (0.5, 1)``: 9 priors per cell.

**Feature sizes** follow the input: ``f = ceil(H / stride)`` on each axis. For the backbone
levels (stride 16, 32 on an input divisible by 32) that is ``H / stride``; each extra level is a
3x3 stride-2 conv with padding 1, whose output is ``ceil(prev / 2)``, and chained ceilings
compose: ``ceil(ceil(H / 32) / 2) = ceil(H / 64)``. So a 320 input has 20, 10, 5, 3, 2, 1 cells
per side and a 256 one 16, 8, 4, 2, 1, 1.

**Offsets** (SSD's, with variances ``(0.1, 0.2)``): ``cx = p_cx + tx * 0.1 * p_w``,
``w = p_w * exp(tw * 0.2)`` (likewise y, h); the exponent is clipped at ``log(1000 / 16)`` as in
torchvision so a wild raw value cannot overflow. **Scores**: ``softmax`` over the C + 1 logits
with the background column dropped (SSD's cross-entropy training), or, for heads trained with
the sigmoid focal loss (the fastai lesson), ``sigmoid`` of the C class logits, the background
logit unused. The numpy twin is ``runtime/codecs/ssd.py``; ``tests/models/test_ssd.py`` pins the
two together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from edgevision.ops.boxes import cxcywh_to_xyxy, xyxy_to_cxcywh

FAMILY = "ssd"
VARIANCES = (0.1, 0.2)  # SSD's: centre offsets in tenths, log-sizes in fifths of the prior
# torchvision's bbox_xform_clip: a box can grow at most 62.5x its prior, and exp never overflows.
MAX_LOG_SCALE = math.log(1000.0 / 16)
SCORE_KINDS = ("softmax", "sigmoid")


@dataclass(frozen=True)
class PriorLevel:
    """The priors of every cell of one level (see the module docstring for the formula).

    Attributes:
        scale: base side, relative to the input.
        shapes: (w, h) multipliers of ``scale``.
        zooms: extra multipliers; each zoom repeats every shape.
    """

    scale: float
    shapes: tuple[tuple[float, float], ...]
    zooms: tuple[float, ...] = (1.0,)

    def sizes(self) -> list[tuple[float, float]]:
        """Per-cell prior (w, h) relative to the input, zoom-major, clipped to 1."""
        return [
            (min(self.scale * zoom * w, 1.0), min(self.scale * zoom * h, 1.0))
            for zoom in self.zooms
            for w, h in self.shapes
        ]

    def to_dict(self) -> dict:
        return {
            "scale": self.scale,
            "zooms": list(self.zooms),
            "shapes": [list(s) for s in self.shapes],
        }

    @classmethod
    def from_dict(cls, values: dict) -> PriorLevel:
        shapes = tuple((float(w), float(h)) for w, h in values["shapes"])
        return cls(float(values["scale"]), shapes, tuple(float(z) for z in values["zooms"]))


def ssd_prior_levels(
    num_levels: int = 6,
    min_scale: float = 0.2,
    max_scale: float = 0.95,
    aspect_ratios: Sequence[Sequence[float]] | None = None,
) -> tuple[PriorLevel, ...]:
    """SSD's prior table: linear scales, the extra ``sqrt(s_k * s_k+1)`` box, aspect-ratio pairs.

    Args:
        num_levels: K levels.
        min_scale, max_scale: ``s_0`` and ``s_K-1``; ``s_K = 1`` sizes the last extra box.
        aspect_ratios: per level, the ratios a > 1 whose (a, 1/a) pair is added; (2, 3) on every
            level when None (SSDLite).
    """
    if num_levels < 2:
        raise ValueError(f"SSD priors need at least 2 levels, got {num_levels}")
    ratios = aspect_ratios if aspect_ratios is not None else [(2.0, 3.0)] * num_levels
    if len(ratios) != num_levels:
        raise ValueError(f"{len(ratios)} aspect-ratio lists for {num_levels} levels; give one each")
    step = (max_scale - min_scale) / (num_levels - 1)
    scales = [min_scale + step * k for k in range(num_levels)] + [1.0]
    levels = []
    for k, level_ratios in enumerate(ratios):
        extra = math.sqrt(scales[k + 1] / scales[k])
        shapes = [(1.0, 1.0), (extra, extra)]
        for ratio in level_ratios:
            root = math.sqrt(ratio)
            shapes += [(root, 1 / root), (1 / root, root)]
        levels.append(PriorLevel(scales[k], tuple(shapes)))
    return tuple(levels)


def grid_prior_levels(
    grid_sizes: Sequence[int],
    zooms: Sequence[float] = (0.7, 1.0, 1.3),
    shapes: Sequence[tuple[float, float]] = ((1.0, 1.0), (1.0, 0.5), (0.5, 1.0)),
) -> tuple[PriorLevel, ...]:
    """The fastai multi-grid table: a level of g cells per side has priors of the cell's size
    (``scale = 1 / g``) times each zoom and (w, h) shape."""
    return tuple(
        PriorLevel(1.0 / g, tuple(tuple(s) for s in shapes), tuple(zooms)) for g in grid_sizes
    )


def ceil_div(value, divisor: int):
    """``ceil(value / divisor)`` with integer ops only, so a traced size stays a graph value."""
    return (value + divisor - 1) // divisor


def level_priors(
    level_sizes: Sequence[tuple[float, float]], height, width, device=None
) -> torch.Tensor:
    """(h * w * A, 4) relative ``cx, cy, w, h`` priors of one level of ``height x width`` cells
    (Python ints or traced sizes), cell-major and row-major, from its A prior (w, h) sizes."""
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    centres = torch.stack([grid_x, grid_y], dim=-1).reshape(-1, 1, 2)
    centres = centres.repeat(1, len(level_sizes), 1)  # (cells, A, 2)
    sizes = torch.tensor(level_sizes, dtype=torch.float32, device=device)[None].expand_as(centres)
    return torch.cat([centres, sizes], dim=-1).reshape(-1, 4)


def encode(gt_xyxy: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """SSD offsets of boxes against priors: (..., 4) xyxy and (..., 4) ``cx, cy, w, h`` ->
    (..., 4) ``tx, ty, tw, th``. Boxes and priors share units (both relative or both pixels).
    A box of zero width or height gets a large finite size offset (ratio floored at 1e-6).
    """
    boxes = xyxy_to_cxcywh(gt_xyxy)
    centre = (boxes[..., :2] - priors[..., :2]) / (VARIANCES[0] * priors[..., 2:])
    size = torch.log((boxes[..., 2:] / priors[..., 2:]).clamp(min=1e-6)) / VARIANCES[1]
    return torch.cat([centre, size], dim=-1)


def decode_offsets(offsets: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`encode`: (..., 4) offsets and priors -> (..., 4) xyxy in the priors'
    units."""
    centre = priors[..., :2] + offsets[..., :2] * VARIANCES[0] * priors[..., 2:]
    size = priors[..., 2:] * torch.exp((offsets[..., 2:] * VARIANCES[1]).clamp(max=MAX_LOG_SCALE))
    return cxcywh_to_xyxy(torch.cat([centre, size], dim=-1))


class SSDCodec:
    """Priors, offsets and scores of an SSD head.

    Args:
        levels: one :class:`PriorLevel` per output level, finest first.
        strides: nominal input pixels per cell of each level (16, 32, 64, ...).
        size_divisor: what the input sides are multiples of (the backbone's stride).
        scores: "softmax" (C + 1 logits, background dropped) or "sigmoid" (C class logits).
    """

    family = FAMILY

    def __init__(
        self,
        levels: Sequence[PriorLevel],
        strides: Sequence[int],
        size_divisor: int = 32,
        scores: str = "softmax",
    ):
        if len(levels) != len(strides):
            raise ValueError(
                f"{len(levels)} prior levels for {len(strides)} strides; give one each"
            )
        if scores not in SCORE_KINDS:
            raise ValueError(f"scores must be one of {SCORE_KINDS}, got {scores!r}")
        self.levels = tuple(levels)
        self.strides = tuple(int(s) for s in strides)
        self.size_divisor = int(size_divisor)
        self.scores = scores
        # Plain floats, not tensors: the codec holds no device (a model may be built on "meta").
        self.level_sizes = [level.sizes() for level in self.levels]

    @property
    def priors_per_cell(self) -> list[int]:
        return [len(sizes) for sizes in self.level_sizes]

    def feature_sizes(self, input_hw: tuple[int, int]) -> list[tuple[int, int]]:
        """(f_h, f_w) of every level: ``ceil(H / stride)``, the size the convs produce."""
        height, width = input_hw
        return [(ceil_div(height, s), ceil_div(width, s)) for s in self.strides]

    def num_priors(self, input_hw: tuple[int, int]) -> int:
        sizes = self.feature_sizes((int(input_hw[0]), int(input_hw[1])))
        return sum(h * w * a for (h, w), a in zip(sizes, self.priors_per_cell, strict=True))

    def priors(self, input_hw: tuple[int, int], device=None) -> torch.Tensor:
        """(N, 4) relative ``cx, cy, w, h`` priors in raw-output order (works on traced sizes)."""
        return torch.cat(
            [
                level_priors(sizes, h, w, device)
                for sizes, (h, w) in zip(
                    self.level_sizes, self.feature_sizes(input_hw), strict=True
                )
            ]
        )

    def pixel_priors(self, input_hw: tuple[int, int], device=None) -> torch.Tensor:
        """(N, 4) ``cx, cy, w, h`` priors in input pixels (what the loss encodes against)."""
        height, width = int(input_hw[0]), int(input_hw[1])
        scale = torch.tensor([width, height, width, height], dtype=torch.float32, device=device)
        return self.priors((height, width), device) * scale

    def class_scores(self, logits: torch.Tensor) -> torch.Tensor:
        """(..., C + 1) logits -> (..., C) float32 scores, background dropped."""
        logits = logits.float()
        if self.scores == "sigmoid":
            return logits[..., 1:].sigmoid()
        return logits.softmax(dim=-1)[..., 1:]

    def decode(
        self, raw: torch.Tensor, input_hw: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes in input pixels and class scores.

        Args:
            raw: (B, N, 4 + C + 1) from the detector.
            input_hw: (H, W) of the network input the raw output came from.

        Returns:
            boxes (B, N, 4) float32 xyxy in input pixels; scores (B, N, C) float32 in [0, 1].

        Raises:
            ValueError: N does not match the priors of ``input_hw``.
        """
        height, width = int(input_hw[0]), int(input_hw[1])
        expected = self.num_priors((height, width))
        if raw.dim() != 3 or raw.shape[1] != expected or raw.shape[2] < 6:
            raise ValueError(
                f"raw output of shape {tuple(raw.shape)} does not fit input {height}x{width}: "
                f"expected (B, {expected}, 4 + classes + 1) for level sizes "
                f"{self.feature_sizes((height, width))} with {self.priors_per_cell} priors per "
                f"cell; the input sides must be multiples of {self.size_divisor} and the raw "
                "output must come from this model"
            )
        return self._decode(raw, self.priors((height, width), raw.device), height, width)

    def decode_traced(
        self, raw: torch.Tensor, images: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`decode` for an ONNX trace: level sizes and the pixel scale come from the traced
        ``images.shape``, so a dynamic-size graph builds its priors for each input."""
        height, width = images.shape[2], images.shape[3]
        return self._decode(raw, self.priors((height, width), raw.device), height, width)

    def _decode(self, raw: torch.Tensor, priors: torch.Tensor, height, width):
        # float32 even under AMP: fp16 cannot place a corner at 600 px closer than 0.5 px.
        relative = decode_offsets(raw[..., :4].float(), priors)
        boxes = torch.stack(
            [relative[..., 0] * width, relative[..., 1] * height,
             relative[..., 2] * width, relative[..., 3] * height],
            dim=-1,
        )  # fmt: skip
        return boxes, self.class_scores(raw[..., 4:])

    def metadata(self) -> dict:
        """What the numpy twin needs to rebuild the priors and decode, JSON-able."""
        return {
            "head": self.family,
            "strides": list(self.strides),
            "size_divisor": self.size_divisor,
            "variances": list(VARIANCES),
            "scores": self.scores,
            "levels": [level.to_dict() for level in self.levels],
        }
