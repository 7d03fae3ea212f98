"""The pose codec: the anchor-free box codec plus K keypoints per point, torch side.

Raw output: (B, A, 4 + C + 3K). Channels ``0 : 4 + C`` are the anchor-free contract (raw
``l, t, r, b`` distances, then class logits; :mod:`edgevision.models.codecs.anchor_free`
decodes them). The last 3K channels are, keypoint by keypoint, ``dx, dy, visibility logit``:

- ``x = cell centre x + 2 * dx * stride`` (``ops.keypoints.offsets_to_keypoints``), likewise y.
  This is Ultralytics v8's ``(2 dx + (ax - 0.5)) * stride`` moved by half a stride: offsets are
  measured from the cell *centre*, so a fresh head (bias 0) puts every keypoint on its point, and
  the ``-0.5`` stride shift, a constant, is learnt by the bias if a model is ported. Linear, not
  squashed: a keypoint may lie several strides away, outside the cell and even the box.
- ``visibility score = sigmoid(logit)``: the chance that the point is labelled (v > 0).

The box channels keep their contract so every box consumer (the detection loss, SimOTA,
``ops.nms.postprocess``, box mAP) works on a pose model unchanged: :meth:`PoseCodec.decode`
returns boxes and scores exactly as the anchor-free codec, and :meth:`PoseCodec.decode_keypoints`
the keypoints of every point, gathered after NMS with ``postprocess``'s kept ``index``. The numpy
twin is ``runtime/codecs/pose.py``; ``tests/runtime/test_pose_codec.py`` pins the two together.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from edgevision.models.codecs.anchor_free import AnchorFreeCodec
from edgevision.ops.grid import make_anchor_points
from edgevision.ops.keypoints import keypoints_to_offsets, offsets_to_keypoints

FAMILY = "pose"


class PoseCodec:
    """Decode the raw output of a pose head with the given level strides and keypoint count.

    Args:
        strides: input pixels per cell of each level, finest first.
        num_keypoints: K keypoints per object.

    Attributes:
        box_codec: the :class:`AnchorFreeCodec` of the box and class channels.
    """

    family = FAMILY

    def __init__(self, strides: Sequence[int], num_keypoints: int):
        if num_keypoints < 1:
            raise ValueError(f"num_keypoints must be at least 1, got {num_keypoints}")
        self.box_codec = AnchorFreeCodec(strides)
        self.strides = self.box_codec.strides
        self.num_keypoints = int(num_keypoints)

    def points(self, input_hw: tuple[int, int], device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, 2) cell centres and (A,) strides of the grid for an input of ``input_hw``."""
        return self.box_codec.points(input_hw, device)

    def split(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, A, 4 + C + 3K) -> box channels (B, A, 4 + C) and keypoint channels (B, A, K, 3).

        Raises:
            ValueError: fewer channels than 4 + 1 class + 3K.
        """
        keypoint_channels = 3 * self.num_keypoints
        if raw.dim() != 3 or raw.shape[2] < 5 + keypoint_channels:
            raise ValueError(
                f"raw output of shape {tuple(raw.shape)} is not a pose output with "
                f"{self.num_keypoints} keypoints: expected (B, A, 4 + classes + "
                f"{keypoint_channels}); was the model built with another num_keypoints?"
            )
        # unflatten, not reshape to sizes read from the tensor: a trace would freeze those sizes,
        # and the graph would refuse another batch or input size.
        keypoints = raw[..., -keypoint_channels:].unflatten(-1, (self.num_keypoints, 3))
        return raw[..., :-keypoint_channels], keypoints

    def decode(
        self, raw: torch.Tensor, input_hw: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes (B, A, 4) xyxy in input pixels and scores (B, A, C), as the anchor-free codec.

        Raises:
            ValueError: the channels or A do not fit this codec and ``input_hw``.
        """
        return self.box_codec.decode(self.split(raw)[0], input_hw)

    def decode_keypoints(self, raw: torch.Tensor, input_hw: tuple[int, int]) -> torch.Tensor:
        """(B, A, K, 3) float32 keypoints of every point: ``x, y`` in input pixels and the
        visibility score in [0, 1].

        Raises:
            ValueError: the channels or A do not fit this codec and ``input_hw``.
        """
        box_raw, keypoint_raw = self.split(raw)
        points, point_strides = self.points(input_hw, raw.device)
        if box_raw.shape[1] != points.shape[0]:
            raise ValueError(
                f"raw output of shape {tuple(raw.shape)} does not fit input "
                f"{input_hw[0]}x{input_hw[1]} with strides {self.strides}: expected "
                f"{points.shape[0]} points; the input size must be divisible by {max(self.strides)}"
            )
        return self._keypoints(keypoint_raw, points, point_strides)

    @staticmethod
    def _keypoints(
        keypoint_raw: torch.Tensor, points: torch.Tensor, point_strides: torch.Tensor
    ) -> torch.Tensor:
        # float32 even under AMP: fp16 cannot place a point at 600 px closer than 0.5 px.
        keypoint_raw = keypoint_raw.float()
        xy = offsets_to_keypoints(points, point_strides, keypoint_raw[..., :2])
        return torch.cat([xy, keypoint_raw[..., 2:].sigmoid()], dim=-1)

    def encode_keypoints(self, keypoints: torch.Tensor, input_hw: tuple[int, int]) -> torch.Tensor:
        """The raw ``dx, dy`` that decode to ``keypoints`` at every point (the inverse of the
        position part of :meth:`decode_keypoints`; the loss compares decoded points instead).

        Args:
            keypoints: (..., A, K, 2|3) keypoints in input pixels, one set per point.

        Returns:
            (..., A, K, 2) raw offsets.
        """
        points, point_strides = self.points(input_hw, keypoints.device)
        return keypoints_to_offsets(points, point_strides, keypoints.float())

    def _traced_points(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = images.shape[2], images.shape[3]
        sizes = [(height // stride, width // stride) for stride in self.strides]
        return make_anchor_points(sizes, list(self.strides), device=images.device)

    def decode_traced(
        self, raw: torch.Tensor, images: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`decode` for an ONNX trace (the grid built from ``images.shape``)."""
        return self.box_codec.decode_traced(self.split(raw)[0], images)

    def decode_keypoints_traced(self, raw: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """:meth:`decode_keypoints` for an ONNX trace: the grid is built from ``images.shape``,
        so a dynamic-size graph builds it for each input."""
        points, point_strides = self._traced_points(images)
        return self._keypoints(self.split(raw)[1], points, point_strides)

    def metadata(self) -> dict:
        """What the runtime twin needs, written into checkpoints and ONNX files."""
        return {
            "head": self.family,
            "strides": list(self.strides),
            "num_keypoints": self.num_keypoints,
        }
