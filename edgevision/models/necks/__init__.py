"""Necks: fuse the backbone's pyramid levels."""

from edgevision.models.necks.pan import PAN, LightPAN

__all__ = ["PAN", "LightPAN"]
