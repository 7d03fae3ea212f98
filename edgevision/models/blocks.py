"""Building blocks shared by backbones, necks and heads, plus conv-BN folding for deployment.

Every block takes explicit channel counts and an ``act`` argument: a zero-argument callable that
returns an activation module (``nn.ReLU``, ``nn.SiLU``, ``nn.Hardswish``, ``nn.LeakyReLU`` or a
``functools.partial`` of one), or ``None`` for no activation. Tensors are (B, C, H, W).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

ActFactory = Callable[[], nn.Module] | None


def _make_act(act: ActFactory) -> nn.Module:
    """Instantiate an activation. ReLU runs in place: its backward needs only its output, so
    overwriting the BN output saves a feature map of training memory per conv."""
    if act is None:
        return nn.Identity()
    if act is nn.ReLU:
        return nn.ReLU(inplace=True)
    return act()


class ConvBNAct(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d -> activation; padding defaults to ``kernel_size // 2``
    ("same" for odd kernels, so a stride-s conv maps H to H/s for H divisible by s).

    The conv has no bias because BN's shift replaces it; :func:`fuse_conv_bn` folds the BN back
    into a biased conv for inference.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        groups: int = 1,
        act: ActFactory = nn.ReLU,
        padding: int | None = None,
    ):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding=kernel_size // 2 if padding is None else padding,
            groups=groups,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = _make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class DepthwiseSeparable(nn.Module):
    """Depthwise kxk conv -> optional attention -> pointwise 1x1 conv (MobileNet / NanoDet style).

    Costs about ``k*k/out + 1/in`` of a full conv's multiply-adds, which is why the nano neck and
    head use it. ``attention`` (e.g. :class:`SqueezeExcite`) sits between the two convs, as in
    MobileNetV3.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        act: ActFactory = nn.ReLU,
        attention: Callable[[int], nn.Module] | None = None,
    ):
        super().__init__()
        self.depthwise = ConvBNAct(in_channels, in_channels, kernel_size, stride, in_channels, act)
        self.attention = attention(in_channels) if attention is not None else nn.Identity()
        self.pointwise = ConvBNAct(in_channels, out_channels, 1, 1, 1, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.attention(self.depthwise(x)))


class SqueezeExcite(nn.Module):
    """Channel attention: global average -> bottleneck MLP (1x1 convs) -> gate in [0, 1] per channel.

    Uses hard-sigmoid as MobileNetV3 does: cheaper than sigmoid on CPU and exports to one ONNX op.
    """

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(8, channels // reduction)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(hidden, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = x.mean(dim=(2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(weights))))


class CBAM(nn.Module):
    """Convolutional Block Attention Module: channel gate (avg+max MLP) then spatial gate.

    The spatial gate convolves the per-pixel channel mean and max with a ``spatial_kernel`` conv, so
    the block can emphasise *where* as well as *what*.
    """

    def __init__(self, channels: int, reduction: int = 16, spatial_kernel: int = 7):
        super().__init__()
        hidden = max(8, channels // reduction)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1)
        )
        self.spatial = nn.Conv2d(2, 1, spatial_kernel, padding=spatial_kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = x.mean(dim=(2, 3), keepdim=True)
        peak = x.amax(dim=(2, 3), keepdim=True)
        x = x * torch.sigmoid(self.mlp(avg) + self.mlp(peak))
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class Bottleneck(nn.Module):
    """1x1 conv -> 3x3 conv, plus the input when ``shortcut`` and the shapes allow (YOLOv5)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        shortcut: bool = True,
        expansion: float = 1.0,
        act: ActFactory = nn.SiLU,
    ):
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = ConvBNAct(in_channels, hidden, 1, act=act)
        self.conv2 = ConvBNAct(hidden, out_channels, 3, act=act)
        self.add = shortcut and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    """CSP bottleneck with 3 convs (YOLOv5): half the channels go through the bottlenecks.

    Splitting the input into a cheap 1x1 path and a bottleneck path, then merging, keeps gradient
    paths diverse at about half the cost of running every channel through the bottlenecks.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_blocks: int = 1,
        shortcut: bool = True,
        expansion: float = 0.5,
        act: ActFactory = nn.SiLU,
    ):
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = ConvBNAct(in_channels, hidden, 1, act=act)
        self.conv2 = ConvBNAct(in_channels, hidden, 1, act=act)
        self.conv3 = ConvBNAct(2 * hidden, out_channels, 1, act=act)
        self.blocks = nn.Sequential(
            *(Bottleneck(hidden, hidden, shortcut, 1.0, act) for _ in range(num_blocks))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(torch.cat([self.blocks(self.conv1(x)), self.conv2(x)], dim=1))


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast (YOLOv5): three chained k x k max-pools concatenated.

    Chaining three 5x5 pools gives the 5/9/13 receptive fields of SPP for a third of the pooling.
    """

    def __init__(
        self, in_channels: int, out_channels: int, pool_size: int = 5, act: ActFactory = nn.SiLU
    ):
        super().__init__()
        hidden = in_channels // 2
        self.conv1 = ConvBNAct(in_channels, hidden, 1, act=act)
        self.pool = nn.MaxPool2d(pool_size, stride=1, padding=pool_size // 2)
        self.conv2 = ConvBNAct(hidden * 4, out_channels, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        pooled1 = self.pool(x)
        pooled2 = self.pool(pooled1)
        return self.conv2(torch.cat([x, pooled1, pooled2, self.pool(pooled2)], dim=1))


@torch.no_grad()
def _fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A biased conv equal to ``bn(conv(x))`` with BN's running statistics (eval-mode BN)."""
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
    ).to(device=conv.weight.device, dtype=conv.weight.dtype)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias.copy_(bn.bias + (bias - bn.running_mean) * scale)
    return fused


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm that directly follows a conv into that conv, in place.

    Handles :class:`ConvBNAct` and ``nn.Sequential`` runs of ``Conv2d, BatchNorm2d`` (the
    torchvision ShuffleNetV2 layout). Modules with a ``reparameterize()`` method (RepVGG's
    :class:`~edgevision.models.blocks_rep.RepConv`) first fuse their branches into one conv, so
    every inference path (export, bench, the parity checks) runs the deployed graph. The BN
    becomes ``nn.Identity``, so an exported graph has one op fewer per conv. Then modules with a
    ``fuse_branches()`` method (the anchor-free head's levels) merge parallel branches into one
    path. Only valid for inference: the folded model uses BN's running statistics and no longer
    updates them, so call it on a model in ``eval()`` mode, for export or prediction.

    Returns:
        ``model`` itself, for chaining.
    """
    for module in list(model.modules()):
        if callable(getattr(module, "reparameterize", None)):  # duck-typed: blocks_rep imports us
            module.reparameterize()
    for module in list(model.modules()):
        if isinstance(module, ConvBNAct) and isinstance(module.bn, nn.BatchNorm2d):
            module.conv = _fold_bn(module.conv, module.bn)
            module.bn = nn.Identity()
        elif isinstance(module, nn.Sequential):
            names = list(module._modules)
            for first, second in zip(names, names[1:], strict=False):
                conv, bn = module._modules[first], module._modules[second]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    module._modules[first] = _fold_bn(conv, bn)
                    module._modules[second] = nn.Identity()
    for module in list(model.modules()):  # BN-free now: a head may merge parallel branches
        if callable(getattr(module, "fuse_branches", None)):
            module.fuse_branches()
    return model
