"""Images a detection dataset could not use, named once each: up front, then at the end of the
epoch (or the validation pass) that first found one undecodable."""

from __future__ import annotations

from pathlib import Path

from edgevision.data.datasets.detect import DetectionDataset
from edgevision.engine import dist

SKIPS_LISTED = 10  # skipped images named in a report; the rest are counted


def format_skips(label: str, skips: list[tuple[Path, str]], limit: int = SKIPS_LISTED) -> list[str]:
    """Lines naming skipped images once each: a header, the first ``limit``, then a count."""
    if not skips:
        return []
    noun = "image" if len(skips) == 1 else "images"
    lines = [f"{label}: {len(skips)} {noun} skipped:"]
    lines += [f"  {path}: {reason}" for path, reason in skips[:limit]]
    if len(skips) > limit:
        lines.append(f"  ... and {len(skips) - limit} more")
    return lines


def report_new_skips(dataset: DetectionDataset | None, label: str) -> None:
    """Print the images first found undecodable since the last report (main process only)."""
    if dataset is None or not dist.is_main():
        return
    for line in format_skips(label, dataset.take_unreported_skips()):
        print(line)


class SkipReportingLoader:
    """The training loader, plus one report after each pass of the images found undecodable
    during it, so a truncated JPEG is named once (not per batch, per worker or per epoch)."""

    def __init__(self, loader, dataset: DetectionDataset):
        self.loader, self.dataset = loader, dataset

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        yield from self.loader
        report_new_skips(self.dataset, f"train epoch {self.dataset.epoch + 1}")

    def __getattr__(self, name: str):
        if name == "loader":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.loader, name)  # sampler, dataset, batch_size ... of the wrapped loader
