"""ShuffleNetV2 (Ma et al., 2018): classifier and detection backbone in one class.

Parameter names and shapes follow torchvision's layout (``conv1.0.weight``, ``conv1.1.*``,
``stage2.0.branch1.0.weight``, ..., ``conv5.*``, ``fc.*``), so a user's ImageNet ``.pth`` for
torchvision loads with :meth:`ShuffleNetV2.load_state_dict` (classifier) or
:meth:`ShuffleNetV2.load_imagenet_state_dict` (backbone). The layout is why the blocks are plain
``nn.Sequential`` with positional children rather than named sub-modules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

# Output channels of conv1, stage2, stage3, stage4 and conv5 for each width multiplier (paper
# Table 5); stage repeats are 4, 8, 4 for all of them.
STAGE_CHANNELS: dict[float, tuple[int, int, int, int, int]] = {
    0.5: (24, 48, 96, 192, 1024),
    1.0: (24, 116, 232, 464, 1024),
    1.5: (24, 176, 352, 704, 1024),
    2.0: (24, 244, 488, 976, 2048),
}
STAGE_REPEATS = (4, 8, 4)


def shuffle_order(channels: int, groups: int = 2) -> torch.Tensor:
    """Channel order of a shuffle: output channel i is input channel ``shuffle_order(...)[i]``
    ((g, n) -> (n, g): the groups' channels interleaved)."""
    if channels % groups:
        raise ValueError(f"cannot shuffle {channels} channels in {groups} groups")
    return torch.arange(channels).view(groups, -1).t().reshape(-1)


def _depthwise(channels: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, 3, stride, 1, groups=channels, bias=False)


def _pointwise(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, 1, 0, bias=False)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit: split (stride 1) or duplicate (stride 2) the input, convolve one half.

    Stride 1: channels split in two; ``branch2`` (1x1 -> depthwise 3x3 -> 1x1) transforms one half,
    the other passes through. Stride 2: both branches see the whole input and halve its resolution.
    The concatenation is channel-shuffled so the next unit's split mixes both branches.

    Where the shuffle happens (the function is the paper's and torchvision's): a unit followed by
    a stride-1 unit passes its concatenation on unshuffled (``shuffle_output=False``), and the
    stride-1 unit does shuffle + split as two channel gathers of the halves it needs. Exported,
    that is 2 ONNX Gathers per unit instead of Reshape, Transpose, Reshape (and Slices), which
    ONNX Runtime's INT8 graph wraps in NHWC <-> NCHW transposes at every unit: nano-s INT8 went
    from 0.81-0.84x to 0.93-0.95x of FP32 at 2 threads (0.90x to 1.00x at 1), FP32 itself 1-3 %
    faster, training speed unchanged (benchmarks/RESULTS.md). Only a stage's last unit shuffles
    its output, so a stride-1 unit expects the unshuffled output of the unit before it.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, shuffle_output: bool = True
    ):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"ShuffleUnit stride must be 1 or 2, got {stride}")
        branch_channels = out_channels // 2
        if stride == 1 and in_channels != 2 * branch_channels:
            raise ValueError(
                f"a stride-1 ShuffleUnit needs in_channels == out_channels (even), got "
                f"{in_channels} -> {out_channels}"
            )
        self.stride = stride
        self.shuffle_output = shuffle_output
        # Index buffers, not parameters: outside the state dict (torchvision's keys stay exact).
        if stride == 1:
            order = shuffle_order(in_channels)
            self.register_buffer("passthrough_index", order[:branch_channels], persistent=False)
            self.register_buffer("transformed_index", order[branch_channels:], persistent=False)
        if shuffle_output:
            self.register_buffer("output_order", shuffle_order(out_channels), persistent=False)
        if stride > 1:
            self.branch1 = nn.Sequential(
                _depthwise(in_channels, stride),
                nn.BatchNorm2d(in_channels),
                _pointwise(in_channels, branch_channels),
                nn.BatchNorm2d(branch_channels),
                nn.ReLU(inplace=True),
            )
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            _pointwise(in_channels if stride > 1 else branch_channels, branch_channels),
            nn.BatchNorm2d(branch_channels),
            nn.ReLU(inplace=True),
            _depthwise(branch_channels, stride),
            nn.BatchNorm2d(branch_channels),
            _pointwise(branch_channels, branch_channels),
            nn.BatchNorm2d(branch_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:  # x: the previous unit's unshuffled concatenation
            passthrough = x.index_select(1, self.passthrough_index)
            transformed = x.index_select(1, self.transformed_index)
            out = torch.cat([passthrough, self.branch2(transformed)], dim=1)
        else:
            out = torch.cat([self.branch1(x), self.branch2(x)], dim=1)
        return out.index_select(1, self.output_order) if self.shuffle_output else out


def _stage(in_channels: int, out_channels: int, repeats: int) -> nn.Sequential:
    """``repeats`` units; only the last shuffles its output (see :class:`ShuffleUnit`)."""
    units = [ShuffleUnit(in_channels, out_channels, 2, shuffle_output=repeats == 1)]
    units += [
        ShuffleUnit(out_channels, out_channels, 1, shuffle_output=index == repeats - 1)
        for index in range(1, repeats)
    ]
    return nn.Sequential(*units)


class ShuffleNetV2(nn.Module):
    """ShuffleNetV2 as an ImageNet-style classifier or as a multi-scale detection backbone.

    Args:
        stage_channels: 5 output channel counts (conv1, stage2, stage3, stage4, conv5); see
            :data:`STAGE_CHANNELS` or use :func:`shufflenet_v2`.
        stage_repeats: units per stage 2, 3, 4.
        num_classes: classifier outputs (only used when ``out_stages`` is None).
        out_stages: None builds the classifier (``conv5`` + ``fc``; forward returns (B, classes)
            logits). A tuple such as (2, 3, 4) builds a backbone without ``fc`` whose forward
            returns those stages' feature maps (strides 8, 16, 32).
        with_conv5: backbone only: keep ``conv5`` and apply it to the last stage's output (NanoDet's
            ``with_last_conv``); off by default because the 1x1 to 1024 channels is costly.

    Attributes:
        out_channels: channels of each map :meth:`forward_features` returns.
        strides: input pixels per cell of each of those maps.
    """

    def __init__(
        self,
        stage_channels: Sequence[int],
        stage_repeats: Sequence[int] = STAGE_REPEATS,
        num_classes: int = 1000,
        out_stages: Sequence[int] | None = None,
        with_conv5: bool = False,
    ):
        super().__init__()
        if len(stage_channels) != 5 or len(stage_repeats) != 3:
            raise ValueError("stage_channels needs 5 values and stage_repeats 3")
        self.out_stages = tuple(out_stages) if out_stages is not None else (2, 3, 4)
        if not set(self.out_stages) <= {2, 3, 4}:
            raise ValueError(f"out_stages must be drawn from (2, 3, 4), got {self.out_stages}")
        self.is_classifier = out_stages is None
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, stage_channels[0], 3, 2, 1, bias=False),
            nn.BatchNorm2d(stage_channels[0]),
            nn.ReLU(inplace=True),
        )
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.stage2 = _stage(stage_channels[0], stage_channels[1], stage_repeats[0])
        self.stage3 = _stage(stage_channels[1], stage_channels[2], stage_repeats[1])
        self.stage4 = _stage(stage_channels[2], stage_channels[3], stage_repeats[2])
        self.conv5 = None
        self.fc = None
        if self.is_classifier or with_conv5:
            self.conv5 = nn.Sequential(
                nn.Conv2d(stage_channels[3], stage_channels[4], 1, 1, 0, bias=False),
                nn.BatchNorm2d(stage_channels[4]),
                nn.ReLU(inplace=True),
            )
        if self.is_classifier:
            self.fc = nn.Linear(stage_channels[4], num_classes)
        channels = {2: stage_channels[1], 3: stage_channels[2], 4: stage_channels[3]}
        if with_conv5 and not self.is_classifier:
            channels[4] = stage_channels[4]
        self.out_channels = [channels[stage] for stage in self.out_stages]
        self.strides = [2 ** (stage + 1) for stage in self.out_stages]

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) -> feature maps of ``out_stages``, each (B, out_channels[i], H/s, W/s)."""
        x = self.maxpool(self.conv1(x))
        features = []
        for stage_index, stage in ((2, self.stage2), (3, self.stage3), (4, self.stage4)):
            x = stage(x)
            if stage_index == 4 and self.conv5 is not None and not self.is_classifier:
                x = self.conv5(x)
            if stage_index in self.out_stages:
                features.append(x)
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Classifier: (B, 3, H, W) -> (B, num_classes) logits. Backbone: same as forward_features."""
        if not self.is_classifier:
            return self.forward_features(x)
        x = self.stage4(self.stage3(self.stage2(self.maxpool(self.conv1(x)))))
        return self.fc(self.conv5(x).mean(dim=(2, 3)))

    def load_imagenet_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> list[str]:
        """Load a torchvision-layout classifier state dict into this (possibly headless) network.

        Keys for parts this network does not have (``fc``, and ``conv5`` when it was dropped) are
        skipped; every other key must match exactly, so a wrong width fails loudly instead of
        leaving layers silently random.

        Returns:
            The skipped keys.
        """
        own = self.state_dict()
        skipped = [
            key for key in state_dict if key not in own and key.startswith(("fc.", "conv5."))
        ]
        kept = {key: value for key, value in state_dict.items() if key not in skipped}
        self.load_state_dict(kept, strict=True)
        return skipped


def shufflenet_v2(
    width_multiple: float,
    num_classes: int = 1000,
    out_stages: Sequence[int] | None = None,
    with_conv5: bool = False,
) -> ShuffleNetV2:
    """ShuffleNetV2 at width 0.5, 1.0, 1.5 or 2.0 (torchvision's ``shufflenet_v2_x*``)."""
    if width_multiple not in STAGE_CHANNELS:
        raise ValueError(
            f"ShuffleNetV2 width {width_multiple} is not one of {sorted(STAGE_CHANNELS)}"
        )
    return ShuffleNetV2(
        STAGE_CHANNELS[width_multiple], STAGE_REPEATS, num_classes, out_stages, with_conv5
    )
