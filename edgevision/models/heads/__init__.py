"""Heads: map neck levels to the raw (B, A, 4 + C) output."""

from edgevision.models.heads.anchor_free import AnchorFreeHead

__all__ = ["AnchorFreeHead"]
