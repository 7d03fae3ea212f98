"""Which loss trains which head family: one literal table, keyed by the codec's ``family``.

The detection task builds its loss here, so a new family adds its loss module and one line, and
the trainer, evaluator and exporter stay as they are. A head may carry ``loss_options`` (a dict of
keyword arguments for its loss, e.g. ``ssd-grid``'s focal classification) so that a zoo entry, not
the task, says how its model is trained.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from edgevision.core.errors import ConfigError
from edgevision.losses.anchor_based import AnchorLoss
from edgevision.losses.detection import DetectionLoss
from edgevision.losses.ssd import SSDLoss

LOSSES: dict[str, Callable[..., Callable]] = {
    "anchor_free": DetectionLoss,
    "anchor": AnchorLoss,
    "ssd": SSDLoss,
}


def detection_loss(
    model: nn.Module, fl_gamma: float | None = None, fl_alpha: float | None = None
) -> Callable:
    """The loss of a detector's head family, built with its codec and the head's ``loss_options``.

    Args:
        model: the detector.
        fl_gamma, fl_alpha: focusing exponent and positive weight for a head trained with a focal
            loss (``loss_options["focal"]``, ssd-grid); None keeps the loss's defaults (2, 0.25).

    Raises:
        ConfigError: the family has no loss here (a head added without its line in LOSSES).
    """
    family = model.codec.family
    if family not in LOSSES:
        raise ConfigError(
            f"no training loss for head family {family!r}; families with one: {', '.join(LOSSES)}"
        )
    options = dict(getattr(model.head, "loss_options", None) or {})
    if options.get("focal"):
        given = {"gamma": fl_gamma, "alpha": fl_alpha}
        options.update({key: value for key, value in given.items() if value is not None})
    return LOSSES[family](model.num_classes, model.codec, **options)
