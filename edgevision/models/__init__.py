"""Models: blocks, backbones (one family per file), necks, heads, head codecs, the Detector and
the one zoo table (``models.zoo``). Import from the module that holds a name."""
