"""Human-readable metric report and the COCO results JSON export.

Every number in the report says which AP it is: "mAP50" alone is ambiguous across COCO
(101-point), VOC2007 (11-point) and VOC2010+ (area), and the differences are a few points.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from edgevision.core.fileio import atomic_write_text
from edgevision.core.records import RecordSet
from edgevision.eval.coco import coco_results_with_file_names

_AREAS = {"small": "area small (< 32²)", "medium": "area medium (32²-96²)", "large": "area large"}
_COCO_LABELS = {
    "mAP50-95": "COCO, IoU .50:.05:.95, area all, maxDets 100",
    "mAP50": "COCO, IoU .50, 101-point, area all, maxDets 100",
    "mAP75": "COCO, IoU .75, 101-point, area all, maxDets 100",
    **{f"mAP_{a}": f"COCO, IoU .50:.05:.95, {text}, maxDets 100" for a, text in _AREAS.items()},
    "AR1": "COCO, IoU .50:.05:.95, area all, maxDets 1",
    "AR10": "COCO, IoU .50:.05:.95, area all, maxDets 10",
    "AR100": "COCO, IoU .50:.05:.95, area all, maxDets 100",
    **{f"AR_{a}": f"COCO, IoU .50:.05:.95, {text}, maxDets 100" for a, text in _AREAS.items()},
}
_DIFFICULT = {
    "ignore": "VOC difficult objects ignored (exported as iscrowd)",
    "keep": "VOC difficult objects counted as ordinary objects",
    "drop": "VOC difficult objects removed (detections on them are false positives)",
}


def format_metrics(
    coco_stats: Mapping | None,
    voc_stats: Mapping | Sequence[Mapping] | None,
    class_names: Sequence[str],
) -> str:
    """The summary block and per-class table ``edgevision val`` prints.

    Args:
        coco_stats: result of ``coco_evaluate`` (or None).
        voc_stats: one or more results of ``voc_evaluate`` (e.g. area and 11-point), or None.
        class_names: C names, in class-index order.

    Returns:
        Multi-line text; undefined values (COCO's -1, NaN) print as "-".
    """
    voc_list = [voc_stats] if isinstance(voc_stats, Mapping) else list(voc_stats or [])
    header, rows = [], []
    if coco_stats is not None:
        difficult = _DIFFICULT.get(coco_stats.get("difficult", ""), "")
        header.append(f"COCO metrics by {coco_stats.get('backend', 'COCOeval')}; {difficult}")
        rows += [(f"{name} ({label})", coco_stats[name]) for name, label in _COCO_LABELS.items()]
    rows += [(_voc_label(voc), voc["mAP"]) for voc in voc_list]
    width = max((len(label) for label, _ in rows), default=0)
    lines = header + [f"{label:<{width}}  {_number(value)}" for label, value in rows]
    lines.append("")
    lines.extend(_class_table(coco_stats, voc_list, class_names))
    return "\n".join(lines)


def _voc_label(voc: Mapping) -> str:
    iou = voc["iou_threshold"]
    method = "VOC2007 11-point" if voc["use_07_metric"] else "VOC2010+ area"
    return f"mAP{round(iou * 100)} ({method}, IoU {iou:.2f}, difficult ignored)"


def _class_table(
    coco_stats: Mapping | None, voc_list: list[Mapping], class_names: Sequence[str]
) -> list[str]:
    headers = ["class", "gts"]
    columns: list[Sequence[float]] = []
    if coco_stats is not None:
        headers += ["AP50-95", "AP50 COCO"]
        columns += [coco_stats["per_class_ap50_95"], coco_stats["per_class_ap50"]]
    for voc in voc_list:
        headers.append(
            f"AP{round(voc['iou_threshold'] * 100)} VOC{'07' if voc['use_07_metric'] else ''}"
        )
        columns.append(voc["ap"])
    source = voc_list[0] if voc_list else coco_stats
    counts = source["num_gt"] if source is not None else ["-"] * len(class_names)
    width = max([len("class"), *(len(name) for name in class_names)])
    rows = [f"{headers[0]:<{width}}  " + "  ".join(f"{h:>10}" for h in headers[1:])]
    for k, name in enumerate(class_names):
        cells = [f"{counts[k]!s:>10}", *(f"{_number(column[k]):>10}" for column in columns)]
        rows.append(f"{name:<{width}}  " + "  ".join(cells))
    return rows


def _number(value: float) -> str:
    value = float(value)
    return "-" if math.isnan(value) or value < 0 else f"{value:.3f}"


def write_coco_results_json(
    path: str | Path, record_set: RecordSet, detections: Sequence[Mapping]
) -> Path:
    """Write detections as a COCO results list (plus ``file_name``) atomically.

    Args:
        path: destination ``.json``; the parent folder is created.
        record_set: the records the detections align with (gives image ids and file names).
        detections: one ``{"boxes", "scores", "classes"}`` mapping per record (original pixels).

    Returns:
        ``path``. The file loads with ``COCO.loadRes`` against ``records_to_coco_gt``.
    """
    results = coco_results_with_file_names(record_set, detections)
    return atomic_write_text(path, json.dumps(results, indent=None) + "\n")
