"""``edgevision data check`` as one call: the doctor for the data's layout (detection formats, or
classification folders and CSVs), the fix into a copy or in place, and the check after the fix."""

from __future__ import annotations

import json

from edgevision.core.errors import ConfigError
from edgevision.core.fileio import atomic_write_text
from edgevision.data.doctor.apply_review import apply_review
from edgevision.data.doctor.check import check_dataset
from edgevision.data.doctor.classify import check_classification
from edgevision.data.doctor.fix import fix_dataset
from edgevision.data.formats.imagefolder import is_classification_data


def run_check(
    data: str,
    deep: bool = False,
    fix: bool = False,
    out: str = "",
    in_place: bool = False,
    workers: int = 2,
    json_path: str = "",
    apply_review: str = "",
) -> tuple[int, str]:
    """Check ``data`` (and repair it with ``fix``, or apply the accepted rows of a label review
    with ``apply_review``). Returns (exit code: 0 clean, 1 defects remain; report text); with
    ``json_path`` the report is also written as JSON."""
    if (out or in_place) and not (fix or apply_review):
        raise ConfigError("--out/--in-place only apply with --fix or --apply-review")
    if fix and apply_review:
        # The fix drops objects, which shifts the object numbers the review list names.
        raise ConfigError("use --fix and --apply-review one after the other, not together")
    if is_classification_data(data):
        if fix:
            raise ConfigError(
                "--fix repairs detection annotations; for a classification set replace or "
                "remove the files listed"
            )
        report = check_classification(data, deep=deep, workers=workers)
        payload, text, code = {"check": report.to_json()}, report.format_text(), report.exit_code
    elif fix:
        payload, text, code = _check_and_fix(data, deep, out, in_place, workers)
    elif apply_review:
        payload, text, code = _apply_review(data, apply_review, deep, out, in_place, workers)
    else:
        report = check_dataset(data, deep=deep, workers=workers)
        payload, text, code = {"check": report.to_json()}, report.format_text(), report.exit_code
    if json_path:
        atomic_write_text(json_path, json.dumps(payload, indent=1, default=str))
    return code, text


def _check_and_fix(data: str, deep: bool, out: str, in_place: bool, workers: int):
    if not (out or in_place):
        raise ConfigError(
            "--fix needs --out DIR (a fixed copy) or --in-place (edits with .bak backups)"
        )
    report = check_dataset(data, deep=deep, workers=workers)
    fixed = fix_dataset(
        data, out=out or None, in_place=in_place, deep=deep, workers=workers, report=report
    )
    # Exit code and "after" report describe the fixed data: what is left is what --fix could not do.
    after = check_dataset(fixed.data, deep=deep, workers=workers)
    text = (
        f"{report.format_text()}\n\n{fixed.format_text()}\n\nafter the fix:\n{after.format_text()}"
    )
    payload = {"check": report.to_json(), "fix": fixed.to_json(), "after_fix": after.to_json()}
    return payload, text, after.exit_code


def _apply_review(data: str, review: str, deep: bool, out: str, in_place: bool, workers: int):
    if not (out or in_place):
        raise ConfigError("--apply-review needs --out DIR (a copy) or --in-place (.bak backups)")
    applied = apply_review(data, review, out=out or None, in_place=in_place, workers=workers)
    after = check_dataset(applied.data, deep=deep, workers=workers)
    text = f"{applied.format_text()}\n\nafter applying the review:\n{after.format_text()}"
    return {"apply_review": applied.to_json(), "after": after.to_json()}, text, after.exit_code
