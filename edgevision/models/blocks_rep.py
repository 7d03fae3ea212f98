"""RepVGG re-parameterisable blocks (the YOLOv6 family's building block) and the fusion that
turns them into plain 3x3 convs for deployment.

A :class:`RepConv` trains as three parallel branches, a 3x3 conv + BN, a 1x1 conv + BN and (when
the shapes allow) an identity BN, summed before the activation. The extra branches help
optimisation (a ResNet-like gradient path) but cost nothing after training: all three are linear,
so with BN's running statistics they collapse into one biased 3x3 conv. :func:`reparameterize`
does that collapse in place, once training is over, for evaluation and export only. A dense 3x3
conv followed by ReLU is the fastest conv shape on CPUs and accelerators alike, which is why the
fused graph is what should be benchmarked and deployed.
"""

from __future__ import annotations

import torch
from torch import nn

from edgevision.models.blocks import ActFactory, _make_act


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int) -> nn.Sequential:
    """Conv2d (no bias) -> BN as an ``nn.Sequential``: the layout ``fuse_conv_bn`` also folds."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    )


def _apply_bn(
    weight: torch.Tensor, bias: torch.Tensor, bn: nn.Module
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold an eval-mode BN (or an ``nn.Identity`` left by ``fuse_conv_bn``) into (weight, bias)."""
    if isinstance(bn, nn.Identity):
        return weight, bias
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return weight * scale.reshape(-1, 1, 1, 1), bn.bias + (bias - bn.running_mean) * scale


def _branch_kernel(branch: nn.Sequential) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, in, 3, 3) kernel and (out,) bias of one conv + BN branch, a 1x1 padded to 3x3.

    The branch may already have been folded by ``fuse_conv_bn`` (biased conv, Identity).
    """
    conv, bn = branch[0], branch[1]
    bias = conv.bias if conv.bias is not None else torch.zeros_like(conv.weight[:, 0, 0, 0])
    weight, bias = _apply_bn(conv.weight, bias, bn)
    # Both convs pad by kernel // 2, so a 1x1 kernel sits at the centre of the 3x3 window.
    pad = (3 - weight.shape[-1]) // 2
    return nn.functional.pad(weight, [pad] * 4), bias


def _identity_kernel(bn: nn.BatchNorm2d, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The identity BN branch as a 3x3 kernel: a 1 at the centre of channel i -> i, then BN."""
    weight = bn.weight.new_zeros(channels, channels, 3, 3)
    weight[torch.arange(channels), torch.arange(channels), 1, 1] = 1.0
    return _apply_bn(weight, torch.zeros_like(bn.running_mean), bn)


class RepConv(nn.Module):
    """RepVGG block: ``act(bn(conv3x3(x)) + bn(conv1x1(x)) [+ bn(x)])``, fusable to ``act(conv3x3(x))``.

    The identity branch exists only when ``in_channels == out_channels`` and ``stride == 1``
    (otherwise ``x`` has another shape than the output). After :meth:`reparameterize` the block
    holds a single biased ``nn.Conv2d`` in ``fused`` and its branches are ``None``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: 1 or 2 (2 halves H and W; inputs with even sides map exactly to H/2 x W/2).
        act: activation factory; ReLU as YOLOv6's n and s models.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, act: ActFactory = nn.ReLU
    ):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"RepConv stride must be 1 or 2, got {stride}")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.dense: nn.Sequential | None = _conv_bn(in_channels, out_channels, 3, stride)
        # Stride 1 here, the input subsampled in forward instead: the same numbers (a 1x1 conv
        # at stride 2 reads every other pixel), but PyTorch 2.13's CPU backward of a strided 1x1
        # conv on a channels_last input with few channels corrupts the heap (measured: 3 -> 16
        # channels at 64 px aborts the process; tests/models/test_rep.py runs the case).
        self.pointwise: nn.Sequential | None = _conv_bn(in_channels, out_channels, 1, 1)
        has_identity = in_channels == out_channels and stride == 1
        self.identity: nn.BatchNorm2d | None = nn.BatchNorm2d(in_channels) if has_identity else None
        self.fused: nn.Conv2d | None = None
        self.act = _make_act(act)

    @property
    def is_fused(self) -> bool:
        """True once :meth:`reparameterize` has replaced the branches by one conv."""
        return self.fused is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in, H, W) -> (B, out, H / stride, W / stride)."""
        if self.fused is not None:
            return self.act(self.fused(x))
        y = self.dense(x) + self.pointwise(x[..., ::2, ::2] if self.stride == 2 else x)
        if self.identity is not None:
            y = y + self.identity(x)
        return self.act(y)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Replace the branches by one biased 3x3 conv with the same eval-mode output, in place.

        Uses the BNs' running statistics, so the fused block no longer learns BN statistics:
        call it on a trained model for evaluation or export, never before or during training.
        A second call does nothing.
        """
        if self.fused is not None:
            return
        weight, bias = _branch_kernel(self.dense)
        pointwise_weight, pointwise_bias = _branch_kernel(self.pointwise)
        weight, bias = weight + pointwise_weight, bias + pointwise_bias
        if self.identity is not None:
            identity_weight, identity_bias = _identity_kernel(self.identity, self.in_channels)
            weight, bias = weight + identity_weight, bias + identity_bias
        fused = nn.Conv2d(self.in_channels, self.out_channels, 3, self.stride, 1, bias=True)
        fused = fused.to(device=weight.device, dtype=weight.dtype)
        fused.weight.copy_(weight)
        fused.bias.copy_(bias)
        self.fused = fused
        self.dense = self.pointwise = self.identity = None


class RepBlock(nn.Sequential):
    """``num_blocks`` stride-1 RepConvs: the first maps ``in_channels`` to ``out_channels``."""

    def __init__(
        self, in_channels: int, out_channels: int, num_blocks: int = 1, act: ActFactory = nn.ReLU
    ):
        channels = [in_channels] + [out_channels] * num_blocks
        super().__init__(
            *(RepConv(a, b, 1, act) for a, b in zip(channels, channels[1:], strict=False))
        )


def reparameterize(model: nn.Module) -> nn.Module:
    """Fuse every :class:`RepConv` of ``model`` into one 3x3 conv, in place (see
    :meth:`RepConv.reparameterize`).

    For evaluation and export only: the fused model computes the eval-mode output (BN running
    statistics) and can no longer be trained as a RepVGG model, so call it on a copy
    (``reparameterize(copy.deepcopy(model).eval())``) when the original is still needed.
    Idempotent. It leaves other BNs alone; ``blocks.fuse_conv_bn`` may run before or after it.

    Returns:
        ``model`` itself, for chaining.
    """
    for module in list(model.modules()):  # a list: fusing edits the module tree
        if isinstance(module, RepConv):
            module.reparameterize()
    return model


def is_reparameterized(model: nn.Module) -> bool:
    """True when no :class:`RepConv` of ``model`` still has its training branches (so also for a
    model without RepConvs: there is nothing left to fuse)."""
    return all(module.is_fused for module in model.modules() if isinstance(module, RepConv))
