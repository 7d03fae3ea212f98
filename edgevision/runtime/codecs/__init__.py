"""Numpy twins of the head codecs (``models/codecs/``), chosen by the ``head`` key an exported
file carries. One literal table; a new head family adds its module and one line here. Each module
has ``detections(raw, params, input_hw, conf, iou, max_det)``, ``params`` being the ``codec``
metadata of the file; it returns per image ``boxes``, ``scores``, ``classes`` and ``index``, and
what its family adds (``pose``: ``keypoints`` (N, K, 3) ``x, y`` input pixels, visibility score)."""

from edgevision.runtime.codecs import anchor_based, anchor_free, pose, ssd

CODECS = {
    anchor_free.FAMILY: anchor_free,
    pose.FAMILY: pose,
    anchor_based.FAMILY: anchor_based,
    ssd.FAMILY: ssd,
}
