"""Every detection metric ``val`` reports, from one set of detections: COCO's 12 numbers, VOC
mAP50 (2010+ area and 2007 11-point), and the printout that names each AP."""

from __future__ import annotations

from edgevision.core.records import RecordSet
from edgevision.eval.coco import coco_evaluate
from edgevision.eval.report import format_metrics
from edgevision.eval.voc import voc_evaluate


def detection_metrics(record_set: RecordSet, detections: list[dict]) -> dict:
    """COCO 12 stats + VOC mAP50 (area and 11-point), with the printout that names each AP.

    Args:
        record_set: the ground truth, as annotated.
        detections: per record, ``boxes`` (K, 4) xyxy original pixels, ``scores``, ``classes``.

    Returns:
        ``coco``, ``voc`` (area), ``voc07`` (11-point) result dicts and ``text``.
    """
    coco = coco_evaluate(record_set, detections)
    voc_area = voc_evaluate(record_set, detections, use_07_metric=False)
    voc_07 = voc_evaluate(record_set, detections, use_07_metric=True)
    text = format_metrics(coco, [voc_area, voc_07], record_set.class_names)
    return {"coco": coco, "voc": voc_area, "voc07": voc_07, "text": text}
