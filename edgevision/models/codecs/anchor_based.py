"""The anchor-based codec (YOLOv5 parameterisation, used by ``yolo-tiny-anchor``), torch side.

Raw output: (B, N, 5 + C), N = sum over levels of ``h * w * na``, ordered level (finest first)
-> cell (row-major) -> anchor. Per prediction the channels are ``tx, ty, tw, th``, the objectness
logit, then C class logits. A prediction at cell ``(gx, gy)`` of a level with stride ``s``, made
with anchor ``(aw, ah)`` (input pixels), decodes as::

    cx = (sigmoid(tx) * 2 - 0.5 + gx) * s          w = (sigmoid(tw) * 2) ** 2 * aw
    cy = (sigmoid(ty) * 2 - 0.5 + gy) * s          h = (sigmoid(th) * 2) ** 2 * ah
    score[c] = sigmoid(objectness) * sigmoid(class c)

Why this and not YOLOv3's ``exp(tw) * aw``: the centre may reach half a cell into both
neighbours, so the two neighbouring cells the matcher (``assign/shape_match.py``) also makes
positive can represent the box; and the size is bounded to ``(0, 4)`` anchors, so an early,
wild ``tw`` cannot overflow ``exp`` into infinite boxes and NaN losses. The bound is also why the
matcher pairs a box only with anchors within a side ratio of 4 (``anchor_t``).

The numpy twin is ``runtime/codecs/anchor_based.py``; ``tests/models/test_anchor_based.py`` pins
the two together.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from edgevision.ops.boxes import cxcywh_to_xyxy

FAMILY = "anchor"


def decode_offsets(raw_box: torch.Tensor, anchor_wh: torch.Tensor) -> torch.Tensor:
    """Raw ``tx, ty, tw, th`` (..., 4) and anchor sizes (..., 2) -> (..., 4) ``ox, oy, w, h``.

    ``ox, oy`` is the centre relative to the cell's top-left corner, in cells, in (-0.5, 1.5);
    ``w, h`` are in the anchor's units, in (0, 4) anchors. The loss uses this form directly (in
    grid units); :meth:`AnchorCodec.decode` adds the cell and multiplies by the stride.
    """
    xy = raw_box[..., :2].sigmoid() * 2 - 0.5
    wh = (raw_box[..., 2:4].sigmoid() * 2) ** 2 * anchor_wh
    return torch.cat([xy, wh], dim=-1)


def encode_offsets(offsets: torch.Tensor, anchor_wh: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`decode_offsets`: (..., 4) ``ox, oy, w, h`` -> raw ``tx, ty, tw, th``.

    Raises:
        ValueError: a centre offset outside (-0.5, 1.5) cells or a size outside (0, 4) anchors,
            which no raw value decodes to.
    """
    probabilities = torch.cat(
        [(offsets[..., :2] + 0.5) / 2, (offsets[..., 2:4] / anchor_wh).sqrt() / 2], dim=-1
    )
    if not bool(((probabilities > 0) & (probabilities < 1)).all()):
        raise ValueError(
            "box not representable: centres must lie within (-0.5, 1.5) cells of their cell and "
            "sizes within (0, 4) times their anchor"
        )
    return torch.logit(probabilities)


def anchors_by_level(anchors, num_levels: int) -> torch.Tensor:
    """Anchors as a (L, na, 2) float32 tensor of input-pixel sizes.

    Args:
        anchors: (L, na, 2) per level, finest first; or (K, 2) flat (a k-means or anchors-file
            result), which is sorted by area and split into L levels of K / L anchors, the
            smallest going to the finest level.
        num_levels: L, the detector's number of levels.

    Raises:
        ValueError: the shape or the count does not fit L levels, or a size is not positive.
    """
    # On the CPU: sizes are validated as numbers even while a model is built on the meta device.
    anchors = torch.as_tensor(anchors, dtype=torch.float32, device="cpu")
    if anchors.dim() == 2 and anchors.shape[-1] == 2 and len(anchors) % num_levels == 0:
        order = torch.argsort(anchors[:, 0] * anchors[:, 1], stable=True)
        anchors = anchors[order].reshape(num_levels, -1, 2)
    if anchors.dim() != 3 or anchors.shape[0] != num_levels or anchors.shape[2] != 2:
        raise ValueError(
            f"anchors of shape {tuple(anchors.shape)} do not fit {num_levels} levels: give "
            f"({num_levels}, anchors per level, 2) or a flat (K, 2) list with K a multiple of "
            f"{num_levels}"
        )
    if anchors.numel() == 0 or not bool((anchors > 0).all() and anchors.isfinite().all()):
        raise ValueError(f"anchor sizes must be positive and finite, got {anchors.tolist()}")
    return anchors


class AnchorCodec:
    """Decode the raw output of an anchor-based head.

    Args:
        strides: input pixels per cell of each level, finest first.
        anchors: (L, na, 2) anchor sizes in input pixels; or the head module that holds them as
            its ``anchors`` buffer. Holding the module means the codec always reads the live
            buffer: after ``set_anchors``, ``load_state_dict``, ``.to(device)`` (which replaces
            buffer tensors) or a deep copy (EMA, export), it decodes with the model's anchors.
    """

    family = FAMILY

    def __init__(self, strides: Sequence[int], anchors: torch.Tensor | nn.Module):
        self.strides = tuple(int(s) for s in strides)
        self._source = anchors
        if self.anchors.dim() != 3 or self.anchors.shape[0] != len(self.strides):
            raise ValueError(
                f"anchors of shape {tuple(self.anchors.shape)} do not fit strides {self.strides}: "
                f"expected ({len(self.strides)}, anchors per level, 2)"
            )

    @property
    def anchors(self) -> torch.Tensor:
        """(L, na, 2) anchor sizes in input pixels, as the model holds them now."""
        source = self._source
        return source if isinstance(source, torch.Tensor) else source.anchors

    @property
    def num_anchors(self) -> int:
        """na, anchors per cell."""
        return int(self.anchors.shape[1])

    def feature_sizes(self, input_hw: tuple[int, int]) -> list[tuple[int, int]]:
        """(h, w) of each level's grid for an input of ``input_hw``."""
        return [(int(input_hw[0]) // s, int(input_hw[1]) // s) for s in self.strides]

    def level_starts(self, input_hw: tuple[int, int]) -> list[int]:
        """Index in N of each level's first prediction, plus N at the end (L + 1 values)."""
        starts = [0]
        for height, width in self.feature_sizes(input_hw):
            starts.append(starts[-1] + height * width * self.num_anchors)
        return starts

    def grid(
        self, input_hw: tuple[int, int], device=None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per prediction, in raw-output order: (N, 2) cell ``gx, gy`` (cell indices, float),
        (N, 1) stride and (N, 2) anchor ``w, h`` in input pixels."""
        return self._grid(self.feature_sizes(input_hw), device)

    def _grid(self, sizes, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`grid` from (h, w) sizes that may be traced values (ONNX dynamic axes)."""
        anchors = self.anchors.to(device=device, dtype=torch.float32)
        cells, strides, anchor_wh = [], [], []
        for (height, width), stride, level_anchors in zip(
            sizes, self.strides, anchors, strict=True
        ):
            ys = torch.arange(height, device=device, dtype=torch.float32)
            xs = torch.arange(width, device=device, dtype=torch.float32)
            grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
            level_cells = torch.stack([grid_x, grid_y], dim=-1)[:, :, None, :]  # (h, w, 1, 2)
            level_cells, level_anchors = torch.broadcast_tensors(
                level_cells, level_anchors[None, None]
            )  # both (h, w, na, 2): cell-major, anchor-minor, the head's order
            cells.append(level_cells.reshape(-1, 2))
            anchor_wh.append(level_anchors.reshape(-1, 2))
            strides.append(torch.ones_like(cells[-1][:, :1]) * stride)
        return torch.cat(cells), torch.cat(strides), torch.cat(anchor_wh)

    def decode(
        self, raw: torch.Tensor, input_hw: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes in input pixels and class scores.

        Args:
            raw: (B, N, 5 + C) from the detector.
            input_hw: (H, W) of the network input the raw output came from.

        Returns:
            boxes (B, N, 4) float32 xyxy in input pixels; scores (B, N, C) float32 in [0, 1],
            ``sigmoid(objectness) * sigmoid(class logit)``.

        Raises:
            ValueError: N does not match the grid of ``input_hw`` (wrong size, strides or anchor
                count, or an input not divisible by the largest stride).
        """
        height, width = int(input_hw[0]), int(input_hw[1])
        expected = self.level_starts((height, width))[-1]
        if raw.dim() != 3 or raw.shape[1] != expected or raw.shape[2] < 6:
            raise ValueError(
                f"raw output of shape {tuple(raw.shape)} does not fit input {height}x{width} with "
                f"strides {self.strides} and {self.num_anchors} anchors per cell: expected "
                f"(B, {expected}, 5 + classes); the input size must be divisible by "
                f"{max(self.strides)}"
            )
        return self._decode(raw, self.grid((height, width), raw.device))

    def decode_traced(
        self, raw: torch.Tensor, images: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`decode` for an ONNX trace: the grid is built from ``images.shape``, so a
        dynamic-size graph builds its grid for each input."""
        height, width = images.shape[2], images.shape[3]
        sizes = [(height // stride, width // stride) for stride in self.strides]
        return self._decode(raw, self._grid(sizes, raw.device))

    @staticmethod
    def _decode(raw: torch.Tensor, grid) -> tuple[torch.Tensor, torch.Tensor]:
        cells, strides, anchor_wh = grid
        # float32 even under AMP: fp16 cannot place a corner at 600 px closer than 0.5 px.
        raw = raw.float()
        offsets = decode_offsets(raw[..., :4], anchor_wh)
        centres = (offsets[..., :2] + cells) * strides
        boxes = cxcywh_to_xyxy(torch.cat([centres, offsets[..., 2:]], dim=-1))
        return boxes, raw[..., 4:5].sigmoid() * raw[..., 5:].sigmoid()

    def encode(
        self, boxes: torch.Tensor, index: torch.Tensor, input_hw: tuple[int, int]
    ) -> torch.Tensor:
        """Raw ``tx, ty, tw, th`` that predictions ``index`` need to decode to ``boxes``.

        Args:
            boxes: (M, 4) xyxy in input pixels.
            index: (M,) prediction indices in N (raw-output order).
            input_hw: (H, W) of the network input.

        Returns:
            (M, 4) raw box channels; ``decode`` of a raw output holding them gives ``boxes``.

        Raises:
            ValueError: a box lies outside what its prediction can represent (see
                :func:`encode_offsets`).
        """
        cells, strides, anchor_wh = self.grid(input_hw, boxes.device)
        cells, strides, anchor_wh = cells[index], strides[index], anchor_wh[index]
        boxes = boxes.float()
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        offsets = torch.cat([centres / strides - cells, boxes[:, 2:] - boxes[:, :2]], dim=-1)
        return encode_offsets(offsets, anchor_wh)

    def metadata(self) -> dict:
        """What the runtime twin needs, written into checkpoints and ONNX files: the family, the
        strides and the anchors (L, na, 2) in input pixels."""
        anchors = self.anchors.detach().cpu().tolist()
        return {
            "head": self.family,
            "strides": list(self.strides),
            "anchors": [[[float(v) for v in size] for size in level] for level in anchors],
        }
