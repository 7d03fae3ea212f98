"""What every zoo classifier shares: a final ``nn.Linear`` head, found by name (torchvision's
``fc`` / ``classifier.1``), which transfer learning replaces and ``--head-lr-mult`` speeds up."""

from __future__ import annotations

from torch import nn


def head_module_name(model: nn.Module) -> str:
    """Name of the final ``nn.Linear`` (``"fc"`` or ``"classifier.1"``): the part that is replaced
    when the class count changes and that ``--head-lr-mult`` speeds up."""
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not names:
        raise ValueError(f"{type(model).__name__} has no nn.Linear classifier layer")
    return names[-1]


def head_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Parameter-name prefixes of the classifier head: the top-level module holding the final
    linear layer (``("fc.",)`` for ShuffleNetV2 / ResNet, ``("classifier.",)`` for MobileNetV2)."""
    return (head_module_name(model).split(".")[0] + ".",)
