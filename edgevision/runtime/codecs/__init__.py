"""Numpy twins of the head codecs (``models/codecs/``), chosen by the ``head`` key an exported
file carries. One literal table; a new head family adds its module and one line here."""

from edgevision.runtime.codecs import anchor_free

CODECS = {anchor_free.FAMILY: anchor_free}
