"""Necks: fuse the backbone's pyramid levels."""

from .pan import PAN, LightPAN

__all__ = ["PAN", "LightPAN"]
