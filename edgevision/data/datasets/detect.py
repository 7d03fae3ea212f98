"""The detection Dataset: records -> augmented or letterboxed samples, with an optional RAM cache.

Per-sample pipeline (one decode per image, one ``cv2.warpAffine`` per sample):

- load: decode, resize so the long side is ``imgsz`` (also what the RAM cache stores), scale
  boxes by ``ratio = imgsz / max(orig_h, orig_w)``;
- train (``augment=True``): mosaic of 4 (probability ``hyp.mosaic``) -> random affine with the
  flip folded in -> optional mixup -> HSV jitter;
- val/predict (``augment=False``): letterbox only (centre pad to ``imgsz x imgsz``), so
  ``x_orig = (x - pad_left) / ratio`` holds exactly for the boxes.

Randomness: sample ``i`` of epoch ``e`` draws from ``np.random.default_rng([seed, e, i])``, so a
sample does not depend on the worker count or on which worker made it. The epoch and the mosaic
switch live in a shared-memory tensor, so ``set_epoch`` / ``close_mosaic`` in the main process
reach persistent workers (call them before iterating the loader for the epoch).

Batching (collate, DataLoader, sampler) lives in :mod:`edgevision.data.datasets.loader`.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from edgevision.core.errors import ConfigError, DataError
from edgevision.core.image import letterbox_params, read_image, resize_image
from edgevision.core.records import ImageRecord, RecordSet
from edgevision.data.datasets.reduced_decode import load_reduced, target_size
from edgevision.data.datasets.sanitize import probe_images, sanitize_records
from edgevision.data.datasets.transforms import (
    Sample,
    hsv_jitter,
    letterbox_sample,
    mixup,
    mosaic4,
    random_affine,
)
from edgevision.ops.boxes import clip_boxes

CACHE_MEMORY_FRACTION = 0.5  # the RAM cache may use at most this share of available memory
CACHE_MODES = ("auto", "ram", "none")  # auto: cache when it fits in CACHE_MEMORY_FRACTION


@dataclass
class AugmentConfig:
    """Training augmentation (YOLOv5 "scratch-low" defaults, suited to small models)."""

    mosaic: float = 1.0  # probability a training sample is a 4-image mosaic
    mixup: float = 0.0  # probability of blending with a second augmented sample
    degrees: float = 0.0  # rotation range, +- degrees
    translate: float = 0.1  # centre shift range, fraction of imgsz
    scale: float = 0.5  # zoom drawn from [1 - scale, 1 + scale]
    shear: float = 0.0  # shear range, +- degrees
    fliplr: float = 0.5  # probability of a left-right mirror
    hsv_h: float = 0.015  # hue gain range (fraction of the hue circle)
    hsv_s: float = 0.7  # saturation gain range (fraction)
    hsv_v: float = 0.4  # value (brightness) gain range (fraction)


class _Loaded(NamedTuple):
    index: int  # dataset index actually used (differs from the request after a skip)
    sample: Sample  # image resized to long side imgsz, boxes in that frame
    orig_hw: tuple[int, int]
    ratio: float  # resized / original


def load_image(
    path: str | Path, imgsz: int, orig_hw: tuple[int, int] | None = None, reduced: bool = False
) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode and resize so the long side is ``imgsz``: ``((h, w, 3) uint8 RGB, (orig_h, orig_w))``.

    The same resize as :func:`transforms.letterbox`, so dataset val images equal predict inputs.
    ``reduced=True`` decodes JPEGs at 1/2, 1/4 or 1/8 scale when the target is that much smaller
    (:func:`~edgevision.data.datasets.reduced_decode.load_reduced`: same size and geometry,
    pixels within a few grey levels, several times less decode work); ``orig_hw`` (h, w) is the
    stored size when known, which saves reading the header again.
    """
    if reduced:
        loaded = load_reduced(path, imgsz, orig_hw)
        if loaded is not None:
            return loaded
    image = read_image(path)
    height, width = image.shape[:2]
    # target_size: at least 1 px a side (an 8000 x 20 strip must not round to zero rows).
    return resize_image(image, target_size((height, width), imgsz)), (height, width)


def _raise_nothing_usable(root: Path, skipped: list[tuple[Path, str]]) -> None:
    where = f" (first: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
    raise DataError(root, f"no usable images{where}", "run edgevision data check")


def available_memory_bytes() -> int | None:
    """``MemAvailable`` from /proc/meminfo, or None where that file does not exist."""
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def estimate_cache_bytes(records: list[ImageRecord], imgsz: int) -> int:
    """Bytes the RAM cache needs, from annotated sizes (unknown sizes count as imgsz^2)."""
    sizes = np.array([(r.width, r.height) for r in records], dtype=np.float64).reshape(-1, 2)
    known = (sizes > 0).all(axis=1)
    ratio = imgsz / np.where(known, sizes.max(axis=1), imgsz)
    pixels = np.where(
        known, np.round(sizes[:, 0] * ratio) * np.round(sizes[:, 1] * ratio), imgsz**2
    )
    return int(pixels.sum() * 3)


class CachePlan(NamedTuple):
    use: bool  # fill the RAM cache
    needed: int  # bytes the cache would take (estimate_cache_bytes)
    available: int | None  # MemAvailable in bytes, None where unknown
    message: str  # one line for the training log, saying what was chosen and why


def _size_text(num_bytes: float) -> str:
    return f"{num_bytes / 2**30:.1f} GiB" if num_bytes >= 2**30 else f"{num_bytes / 2**20:.1f} MiB"


def plan_cache(records: list[ImageRecord], imgsz: int, cache: str) -> CachePlan:
    """Whether ``cache`` ("auto" | "ram" | "none") fills the RAM cache for ``records`` at ``imgsz``.

    "auto" and "ram" cache when the images fit in :data:`CACHE_MEMORY_FRACTION` of the available
    memory. Where that is unknown (no /proc/meminfo) "ram" still caches, as asked, and "auto" does
    not: a cache that does not fit swaps, which is slower than decoding.
    """
    if cache == "none":
        return CachePlan(False, 0, None, 'cache: off (cache="none")')
    needed, available = estimate_cache_bytes(records, imgsz), available_memory_bytes()
    cached = f"cache: {len(records):,} images at {imgsz} px in RAM ({_size_text(needed)}"
    if available is None:
        if cache == "ram":
            return CachePlan(True, needed, None, f"{cached}; available memory unknown)")
        why = f'available memory unknown (needs {_size_text(needed)}); cache="ram" forces it'
        return CachePlan(False, needed, None, f"cache: not used: {why}")
    if needed > CACHE_MEMORY_FRACTION * available:
        why = (
            f"needs {_size_text(needed)}, {_size_text(available)} available "
            f"(at most {CACHE_MEMORY_FRACTION:.0%} may be used)"
        )
        return CachePlan(False, needed, available, f"cache: not used: {why}")
    return CachePlan(True, needed, available, f"{cached} of {_size_text(available)} available)")


class DetectionDataset(Dataset):
    """Records -> augmented (or letterboxed) samples for detection and pose.

    Every image header is probed first (``probe_images``: no pixel decode), then records are
    sanitized (``sanitize_records``; counts in ``sanitize_report``). Records whose image is
    missing are left out; images that are empty or not images are flagged unreadable before
    the first batch (``skipped``), and images that only fail on decode (a truncated JPEG) are
    flagged when first met (with ``cache="ram"``: at construction). A flagged index serves the
    next readable one instead; flags are shared with worker processes (``num_unreadable``).
    :meth:`take_unreported_skips` hands each skipped image to the caller once, for printing, and
    :meth:`usage` counts images and objects actually used.

    Args:
        record_set: the split to serve.
        imgsz: square input side in pixels.
        augment: training augmentation; False gives the val/predict letterbox.
        hyp: augmentation settings (defaults: ``AugmentConfig()``).
        cache: "auto", "ram" or "none": keep decoded, resized images in memory. "auto" caches
            when they fit in ``CACHE_MEMORY_FRACTION`` of the available memory, else not;
            "ram" falls back to "none" with a warning when they do not fit. None (default):
            "auto" for training (``augment=True``), "none" for val/predict, which read each image
            once. :attr:`cache` says what was chosen, :attr:`cache_message` says it in one line.
        seed: base seed of every per-sample generator.
        reduced_decode: decode JPEGs at 1/2, 1/4 or 1/8 scale when ``imgsz`` is that much
            smaller (:mod:`~edgevision.data.datasets.reduced_decode`). None (default): on for
            training; off for val, so val pixels equal predict inputs exactly.
    """

    def __init__(
        self,
        record_set: RecordSet,
        imgsz: int = 320,
        augment: bool = True,
        hyp: AugmentConfig | None = None,
        cache: str | None = None,
        seed: int = 0,
        reduced_decode: bool | None = None,
    ) -> None:
        cache = ("auto" if augment else "none") if cache is None else cache
        if cache not in CACHE_MODES:
            raise ConfigError(f'cache={cache!r} is not supported; use "auto", "ram" or "none"')
        probed, unusable, self.exif_rotated = probe_images(record_set.records)
        self.record_set, self.sanitize_report = sanitize_records(record_set.with_records(probed))
        self.records = self.record_set.records
        # (path, reason) of images found unusable by the probe (missing ones included), input order.
        self.skipped: list[tuple[Path, str]] = list(unusable.items())
        if all(r.image_path in unusable for r in self.records):
            _raise_nothing_usable(record_set.root, self.skipped)
        self.imgsz, self.augment, self.seed = imgsz, augment, seed
        self.reduced_decode = augment if reduced_decode is None else reduced_decode
        self.hyp = hyp or AugmentConfig()
        self.flip_idx = record_set.flip_idx
        self.num_keypoints = next(
            (r.keypoints.shape[1] for r in self.records if r.keypoints is not None), 0
        )
        # Shared with worker processes: [epoch, mosaic closed] and per-index unreadable flags.
        self._state = torch.zeros(2, dtype=torch.int64).share_memory_()
        self._unreadable = torch.zeros(len(self.records), dtype=torch.uint8).share_memory_()
        self._unreadable.numpy()[:] = [record.image_path in unusable for record in self.records]
        self._decode_errors: dict[int, str] = {}  # index -> reason, for failures in this process
        self._reported: set[Path] = set()  # skipped images already handed out for printing
        self._cache: list | None = None
        self.cache, self.cache_message = self._fill_cache(cache)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def class_names(self) -> list[str]:
        return self.record_set.class_names

    @property
    def num_unreadable(self) -> int:
        """Images skipped because they could not be decoded (all processes)."""
        return int(self._unreadable.sum())

    def unreadable_paths(self) -> list[Path]:
        return [self.records[i].image_path for i in torch.nonzero(self._unreadable).flatten()]

    def usage(self) -> dict[str, int]:
        """What training really gets, counting the images flagged unreadable so far.

        Returns:
            ``images`` (records given), ``images_used``, ``images_skipped`` (missing, bad header
            or undecodable), ``objects_annotated`` (in every record given), ``objects_used``
            (sanitized objects of the images that are served).
        """
        flagged = np.flatnonzero(self._unreadable.numpy())
        lost = sum(self.records[i].num_objects for i in flagged)
        report = self.sanitize_report
        return {
            "images": report["images"],
            "images_used": len(self.records) - len(flagged),
            "images_skipped": report["images_skipped"] + len(flagged),
            "objects_annotated": report["objects_annotated"],
            "objects_used": report["objects_used"] - lost,
        }

    def take_unreported_skips(self) -> list[tuple[Path, str]]:
        """``(path, reason)`` of skipped images not handed out before, so each is printed once.

        Call it in the main process: at the start (probe results, plus decode failures when the
        RAM cache decoded everything) and after each epoch (images first found undecodable then).
        """
        found = list(self.skipped)
        probed = {path for path, _ in self.skipped}
        for index in np.flatnonzero(self._unreadable.numpy()):
            path = self.records[index].image_path
            if path not in probed and path not in self._reported:
                found.append((path, self._decode_reason(int(index))))
        new = [(path, reason) for path, reason in found if path not in self._reported]
        self._reported.update(path for path, _ in new)
        return new

    def _decode_reason(self, index: int) -> str:
        """Why ``index`` failed to decode; a worker process found it, so decode it here again."""
        if index in self._decode_errors:
            return self._decode_errors[index]
        try:
            read_image(self.records[index].image_path)
        except DataError as e:
            return e.reason
        return "failed to decode in a loader worker (readable now: a flaky disk?)"

    @property
    def epoch(self) -> int:
        return int(self._state[0])

    def set_epoch(self, epoch: int) -> None:
        """Re-seed augmentation for ``epoch`` (reaches persistent workers)."""
        self._state[0] = int(epoch)

    def close_mosaic(self) -> None:
        """Stop mosaic and mixup for the remaining epochs (the last epochs train on whole
        images, which matches what the model sees at inference)."""
        self._state[1] = 1

    # ------------------------------------------------------------------------- loading

    def _fill_cache(self, cache: str) -> tuple[str, str]:
        """Decode every readable image into the RAM cache when :func:`plan_cache` says so:
        ``("ram" or "none", the log line)``."""
        unreadable = self._unreadable.numpy()
        readable = [r for r, flagged in zip(self.records, unreadable, strict=True) if not flagged]
        plan = plan_cache(readable, self.imgsz, cache)
        if cache == "ram" and not plan.use and plan.available is not None:
            warnings.warn(
                f"RAM cache needs {plan.needed / 2**30:.1f} GiB but only "
                f"{plan.available / 2**30:.1f} GiB is available; training without a cache "
                '(use cache="none" or a smaller imgsz)',
                stacklevel=3,
            )
        if not plan.use:
            return "none", plan.message
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            self._cache = list(pool.map(self._decode_or_none, range(len(self.records))))
        return "ram", plan.message

    def _decode_or_none(self, index: int) -> tuple[np.ndarray, tuple[int, int]] | None:
        """Decode for the cache; an unreadable image is flagged (and skipped later), not raised."""
        if self._unreadable.numpy()[index]:
            return None  # the header probe already failed
        try:
            return self._decode(self.records[index])
        except DataError as e:
            self._flag_unreadable(index, e)
            return None

    def _flag_unreadable(self, index: int, error: DataError) -> None:
        self._decode_errors[index] = error.reason
        self._unreadable[index] = 1

    def _decode(self, record: ImageRecord) -> tuple[np.ndarray, tuple[int, int]]:
        """:func:`load_image` of a record; its size is the probed header size when known."""
        known = record.width > 0 and record.height > 0
        orig_hw = (record.height, record.width) if known else None
        return load_image(record.image_path, self.imgsz, orig_hw, reduced=self.reduced_decode)

    def _load(self, index: int) -> _Loaded:
        """One image resized to long side imgsz with its objects in that frame (raises DataError)."""
        record = self.records[index]
        cached = None if self._cache is None else self._cache[index]
        image, orig_hw = cached if cached is not None else self._decode(record)
        ratio = self.imgsz / max(orig_hw)
        # Clip again to the decoded size: annotated sizes can be unknown or wrong.
        boxes = clip_boxes(record.boxes, orig_hw[1], orig_hw[0])
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        keypoints = None
        if self.num_keypoints:
            keypoints = record.keypoints
            if keypoints is None:
                keypoints = np.zeros((len(boxes), self.num_keypoints, 3), np.float32)
            keypoints = keypoints[keep] * np.array([ratio, ratio, 1], dtype=np.float32)
        sample = Sample(image, boxes[keep] * np.float32(ratio), record.labels[keep], keypoints)
        return _Loaded(index, sample, orig_hw, ratio)

    def _load_readable(self, index: int) -> _Loaded:
        """:meth:`_load` of ``index`` or, when unreadable, of the next readable index."""
        for offset in range(len(self.records)):
            candidate = (index + offset) % len(self.records)
            if self._unreadable.numpy()[candidate]:  # numpy: 10x cheaper than tensor indexing
                continue
            try:
                return self._load(candidate)
            except DataError as e:
                self._flag_unreadable(candidate, e)
        raise DataError(
            self.record_set.root,
            "no image of this split can be decoded",
            "run edgevision data check",
        )

    # ------------------------------------------------------------------------- samples

    def __getitem__(self, index: int) -> dict:
        """One sample: ``image`` (3, imgsz, imgsz) uint8 tensor, ``boxes`` (N, 4) float32 xyxy,
        ``labels`` (N,) int64, ``keypoints`` (N, K, 3) float32 or None, ``meta`` dict.

        uint8 keeps the hand-over from worker processes 4x smaller; :class:`DetectionLoader`
        converts whole batches to float in the main process.
        """
        epoch, mosaic_closed = self._state.tolist()
        rng = np.random.default_rng([self.seed, epoch, index])
        if not self.augment:
            loaded = self._load_readable(index)
            sample, _, pad = letterbox_sample(loaded.sample, self.imgsz)
            return _to_item(sample, self._meta(loaded, pad))
        use_mosaic = rng.random() < (0.0 if mosaic_closed else self.hyp.mosaic)
        sample, meta = self._augmented(index, use_mosaic, rng)
        if rng.random() < (0.0 if mosaic_closed else self.hyp.mixup):
            other, _ = self._augmented(int(rng.integers(len(self))), use_mosaic, rng)
            sample = mixup(sample, other, rng)
        image = hsv_jitter(sample.image, self.hyp.hsv_h, self.hyp.hsv_s, self.hyp.hsv_v, rng)
        return _to_item(replace(sample, image=image), meta)

    def _augmented(self, index: int, use_mosaic: bool, rng: np.random.Generator):
        """Geometric augmentation of one sample (mosaic or single image): ``(Sample, meta)``."""
        first = self._load_readable(index)
        source = first.sample
        if use_mosaic:
            others = [self._load_readable(int(i)).sample for i in rng.integers(len(self), size=3)]
            source = mosaic4([first.sample, *others], self.imgsz, rng)
        hyp = self.hyp
        sample = random_affine(
            source,
            rng,
            self.imgsz,
            degrees=hyp.degrees,
            translate=hyp.translate,
            scale=hyp.scale,
            shear=hyp.shear,
            fliplr=hyp.fliplr,
            flip_idx=self.flip_idx,
        )
        _, _, pad = letterbox_params(first.sample.image.shape[:2], self.imgsz)
        return sample, self._meta(first, pad)

    def _meta(self, loaded: _Loaded, pad: tuple[int, int]) -> dict:
        """Contract meta. For augmented samples ratio/pad describe the letterbox before the
        random geometry (informational; not invertible)."""
        record = self.records[loaded.index]
        return {
            "image_path": str(record.image_path),
            "orig_hw": loaded.orig_hw,
            "ratio": loaded.ratio,
            "pad": pad,
            "image_id": record.image_id,
            "index": loaded.index,
        }


def _to_item(sample: Sample, meta: dict) -> dict:
    keypoints = sample.keypoints
    return {
        "image": torch.from_numpy(np.ascontiguousarray(sample.image.transpose(2, 0, 1))),
        "boxes": torch.from_numpy(np.ascontiguousarray(sample.boxes, dtype=np.float32)),
        "labels": torch.from_numpy(np.ascontiguousarray(sample.labels, dtype=np.int64)),
        "keypoints": None if keypoints is None else torch.from_numpy(keypoints.astype(np.float32)),
        "meta": meta,
    }
