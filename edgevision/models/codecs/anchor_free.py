"""The anchor-free distance codec (FCOS / NanoDet-Plus / YOLOX heads), torch side.

Raw output: (B, A, 4 + C). A is every cell of every level, levels in stride order, row-major
within a level. Channels 0:4 are raw ``l, t, r, b`` distances from the cell centre, decoded as
``softplus(d) * stride`` (softplus keeps them positive with a smooth gradient; the stride lets
each level predict in its own units); channels 4: are class logits, scored with a sigmoid.

There is no ``encode``: the loss compares *decoded* boxes with the ground truth (IoU loss) and
SimOTA assigns on decoded boxes, so targets never need the raw parameterisation. The numpy twin
is ``runtime/codecs/anchor_free.py``; ``tests/runtime/test_codecs.py`` pins the two together.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional

from edgevision.ops.grid import distance_to_xyxy, make_anchor_points

FAMILY = "anchor_free"


class AnchorFreeCodec:
    """Decode the anchor-free raw output of a head with the given level strides.

    Args:
        strides: input pixels per cell of each level, finest first.
    """

    family = FAMILY

    def __init__(self, strides: Sequence[int]):
        self.strides = tuple(int(s) for s in strides)

    def points(self, input_hw: tuple[int, int], device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, 2) cell centres and (A,) strides of the grid for an input of ``input_hw``."""
        height, width = int(input_hw[0]), int(input_hw[1])
        sizes = [(height // s, width // s) for s in self.strides]
        return make_anchor_points(sizes, list(self.strides), device=device)

    def decode(
        self, raw: torch.Tensor, input_hw: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes in input pixels and class scores.

        Args:
            raw: (B, A, 4 + C) from the detector.
            input_hw: (H, W) of the network input the raw output came from.

        Returns:
            boxes (B, A, 4) float32 xyxy in input pixels; scores (B, A, C) float32 in [0, 1].

        Raises:
            ValueError: A does not match the grid of ``input_hw`` (wrong size or strides, or an
                input not divisible by the largest stride).
        """
        height, width = int(input_hw[0]), int(input_hw[1])
        points, point_strides = self.points((height, width), raw.device)
        if raw.dim() != 3 or raw.shape[1] != points.shape[0] or raw.shape[2] < 5:
            raise ValueError(
                f"raw output of shape {tuple(raw.shape)} does not fit input {height}x{width} with "
                f"strides {self.strides}: expected (B, {points.shape[0]}, 4 + classes); the input "
                f"size must be divisible by {max(self.strides)}"
            )
        # float32 even under AMP: fp16 cannot place a corner at 600 px closer than 0.5 px.
        raw = raw.float()
        distances = functional.softplus(raw[..., :4]) * point_strides[:, None]
        return distance_to_xyxy(points, distances), raw[..., 4:].sigmoid()

    def decode_traced(
        self, raw: torch.Tensor, images: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`decode` for an ONNX trace: the grid is built from ``images.shape``.

        ``decode`` takes the input size as Python ints, which a trace freezes into constants; here
        the sizes stay traced values, so a dynamic-size graph builds its grid for each input.
        Every export's parity check compares this against ``decode``.
        """
        height, width = images.shape[2], images.shape[3]
        sizes = [(height // stride, width // stride) for stride in self.strides]
        points, point_strides = make_anchor_points(sizes, list(self.strides), device=raw.device)
        distances = functional.softplus(raw[..., :4].float()) * point_strides[:, None]
        return distance_to_xyxy(points, distances), raw[..., 4:].float().sigmoid()

    def metadata(self) -> dict:
        """What the runtime twin needs, written into checkpoints and ONNX files."""
        return {"head": self.family, "strides": list(self.strides)}
