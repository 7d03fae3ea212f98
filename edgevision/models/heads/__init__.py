"""Heads: map neck levels to the raw (B, A, 4 + C) output."""

from .anchor_free import AnchorFreeHead

__all__ = ["AnchorFreeHead"]
