"""Classification transforms (numpy / OpenCV, torchvision's recipe), the Dataset and its loader.

Train: RandomResizedCrop -> horizontal flip -> rotation (``--degrees``, off by default) -> HSV
colour jitter -> random erasing (``--erasing``, off by default). Val / predict: resize the
shorter side to ``imgsz * 256 / 224`` then centre-crop ``imgsz`` (ImageNet's 256/224 rule scaled
to any input size). Workers hand over uint8 images; :func:`normalize_images` applies the ImageNet
mean / std on the training device (4x less data between processes and to the GPU than float32).

Randomness: sample ``i`` of epoch ``e`` draws from ``np.random.default_rng([seed, e, i])``, so a
sample does not depend on the worker count; the epoch lives in shared memory so ``set_epoch``
reaches persistent workers.
"""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from edgevision.core.errors import ConfigError, DataError
from edgevision.core.image import (
    RESIZE_RATIO,
    center_crop_view,
    read_image,
    resize_image,
    resize_shorter,
)
from edgevision.data.datasets.detect import CACHE_MEMORY_FRACTION, available_memory_bytes
from edgevision.data.datasets.loader import seeded_loader
from edgevision.data.datasets.transforms import hsv_jitter
from edgevision.data.formats.imagefolder import ClassificationSet

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB, of images scaled to [0, 1]
IMAGENET_STD = (0.229, 0.224, 0.225)
MEAN_UINT8 = np.round(np.array(IMAGENET_MEAN) * 255).astype(np.uint8)  # what normalises to 0


@dataclass
class ClassifyAugment:
    """Training augmentation. ``scale_min`` is the smallest crop area (share of the image) of
    RandomResizedCrop: ImageNet uses 0.08; small datasets of whole objects do better near 0.5."""

    scale_min: float = 0.5  # RandomResizedCrop area range is [scale_min, 1]
    ratio: tuple[float, float] = (3 / 4, 4 / 3)  # RandomResizedCrop aspect-ratio range
    fliplr: float = 0.5  # probability of a left-right mirror
    hsv_h: float = 0.015  # hue gain range (fraction of the hue circle)
    hsv_s: float = 0.7  # saturation gain range
    hsv_v: float = 0.4  # value (brightness) gain range
    degrees: float = 0.0  # rotation range (+/- degrees) about the crop's centre
    erasing: float = 0.0  # probability of erasing one random rectangle (RandomErasing)

    def __post_init__(self) -> None:
        wrong = [
            f"{name}={value}"
            for name, value, top in (
                ("fliplr", self.fliplr, 1),
                ("erasing", self.erasing, 1),
                ("degrees", self.degrees, 180),
            )
            if not 0 <= value <= top
        ]
        if wrong:
            raise ConfigError(
                f"augmentation out of range: {', '.join(wrong)}; "
                "fliplr and erasing are probabilities in [0, 1], degrees lies in [0, 180]"
            )

    @classmethod
    def from_train_config(cls, config) -> ClassifyAugment:
        """Map a ``TrainConfig``: ``scale`` (zoom +/-) becomes crop areas ``[1 - scale, 1]``
        (Ultralytics' mapping); ``fliplr``, ``hsv_*``, ``degrees`` and ``erasing`` carry over."""
        scale_min = min(max(1.0 - config.scale, 0.01), 1.0)
        return cls(
            scale_min,
            (3 / 4, 4 / 3),
            config.fliplr,
            config.hsv_h,
            config.hsv_s,
            config.hsv_v,
            config.degrees,
            config.erasing,
        )


def random_rectangle(
    height: int,
    width: int,
    rng: np.random.Generator,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    smaller: bool = False,
) -> tuple[int, int, int, int] | None:
    """``(top, left, h, w)`` of a random rectangle inside a ``height`` x ``width`` image: up to 10
    draws of an area share in ``scale`` and a log-uniform aspect (w / h) in ``ratio``, placed
    uniformly; None when no draw fits. ``smaller``: each side must be shorter than the image's
    (RandomErasing's rule), else at most as long (RandomResizedCrop's)."""
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = height * width * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        rect_w, rect_h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        fits_w = rect_w < width if smaller else rect_w <= width
        fits_h = rect_h < height if smaller else rect_h <= height
        if rect_w > 0 and rect_h > 0 and fits_w and fits_h:
            top = int(rng.integers(0, height - rect_h + 1))
            left = int(rng.integers(0, width - rect_w + 1))
            return top, left, rect_h, rect_w
    return None


def crop_window(
    height: int,
    width: int,
    rng: np.random.Generator,
    scale: tuple[float, float],
    ratio: tuple[float, float],
) -> tuple[int, int, int, int]:
    """RandomResizedCrop's window ``(top, left, crop_h, crop_w)`` (torchvision's algorithm):
    :func:`random_rectangle`, or when no draw fits, the central crop with the aspect clamped to
    ``ratio``."""
    window = random_rectangle(height, width, rng, scale, ratio)
    if window is not None:
        return window
    aspect = width / height
    if aspect < ratio[0]:
        crop_w, crop_h = width, round(width / ratio[0])
    elif aspect > ratio[1]:
        crop_w, crop_h = round(height * ratio[1]), height
    else:
        crop_w, crop_h = width, height
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def train_transform(
    image: np.ndarray, imgsz: int, rng: np.random.Generator, hyp: ClassifyAugment
) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> augmented (imgsz, imgsz, 3) uint8 RGB."""
    top, left, crop_h, crop_w = crop_window(*image.shape[:2], rng, (hyp.scale_min, 1.0), hyp.ratio)
    out = resize_image(image[top : top + crop_h, left : left + crop_w], (imgsz, imgsz))
    if rng.random() < hyp.fliplr:
        out = cv2.flip(out, 1)
    if hyp.degrees:
        angle = rng.uniform(-hyp.degrees, hyp.degrees)
        matrix = cv2.getRotationMatrix2D(((imgsz - 1) / 2, (imgsz - 1) / 2), angle, 1.0)
        out = cv2.warpAffine(out, matrix, (imgsz, imgsz), borderMode=cv2.BORDER_REFLECT_101)
    out = hsv_jitter(out, hyp.hsv_h, hyp.hsv_s, hyp.hsv_v, rng)
    if hyp.erasing and rng.random() < hyp.erasing:
        out = random_erase(out, rng)
    return out


def random_erase(
    image: np.ndarray,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.02, 0.33),
    ratio: tuple[float, float] = (0.3, 3.3),
) -> np.ndarray:
    """Fill one :func:`random_rectangle` with the ImageNet mean colour (torchvision's RandomErasing
    with its defaults and ``value=0`` after normalisation); unchanged when no draw fits.
    ``image`` ((H, W, 3) uint8) is not modified: it may be a view of the RAM cache."""
    window = random_rectangle(*image.shape[:2], rng, scale, ratio, smaller=True)
    if window is None:
        return image
    top, left, erase_h, erase_w = window
    image = image.copy()
    image[top : top + erase_h, left : left + erase_w] = MEAN_UINT8
    return image


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 RGB -> float32 ``(x / 255 - mean) / std`` with ImageNet statistics,
    on the images' device: what every classifier of the zoo (and torchvision's weights) expects."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1) * 255
    return (images.float() - mean) / std


class ClassificationDataset(Dataset):
    """Samples of a :class:`ClassificationSet`, augmented for training or centre-cropped.

    Images that fail to decode are skipped: the next readable sample is served instead and the
    failure counted in ``num_unreadable`` (shared with worker processes), so one corrupt JPEG
    never stops a training run.

    Args:
        data: the split to serve.
        imgsz: square output side in pixels.
        augment: training transform (else the val transform).
        hyp: augmentation settings (defaults: ``ClassifyAugment()``).
        cache: "none" or "ram" (decoded images, shorter side resized to imgsz*256/224, kept in
            memory; skipped with a warning when they would need over half the free memory).
        seed: base seed of every per-sample generator.
    """

    def __init__(
        self,
        data: ClassificationSet,
        imgsz: int = 224,
        augment: bool = True,
        hyp: ClassifyAugment | None = None,
        cache: str = "none",
        seed: int = 0,
    ) -> None:
        if cache not in ("auto", "ram", "none"):
            raise ConfigError(f'cache={cache!r} is not supported; use "auto", "ram" or "none"')
        if not len(data):
            raise DataError(
                data.root, f"the {data.split} split has no images", "run edgevision data check"
            )
        self.data, self.imgsz, self.augment, self.seed = data, imgsz, augment, seed
        self.hyp = hyp or ClassifyAugment()
        # [epoch, training side]: shared memory, so persistent workers see set_epoch / set_size
        self._state = torch.tensor([0, imgsz], dtype=torch.int64).share_memory_()
        self._unreadable = torch.zeros(len(data), dtype=torch.uint8).share_memory_()
        self._cache: list[np.ndarray | None] | None = None
        if cache in ("auto", "ram"):  # auto: only when it fits, without a warning when not
            self._fill_cache(warn=cache == "ram")

    def __len__(self) -> int:
        return len(self.data)

    @property
    def epoch(self) -> int:
        return int(self._state[0])

    def set_epoch(self, epoch: int) -> None:
        """Re-seed augmentation and shuffling for ``epoch`` (reaches persistent workers)."""
        self._state[0] = int(epoch)

    @property
    def size(self) -> int:
        """Side of the augmented training images: ``imgsz`` unless :meth:`set_size` lowered it."""
        return int(self._state[1])

    def set_size(self, side: int) -> None:
        """Train at ``side`` px from the next batch on (progressive resizing; reaches persistent
        workers). Validation images stay at ``imgsz``."""
        if not 8 <= side <= self.imgsz:
            raise ConfigError(f"training side {side} px: use 8 to imgsz ({self.imgsz}) px")
        self._state[1] = int(side)

    @property
    def num_unreadable(self) -> int:
        return int(self._unreadable.sum())

    def _fill_cache(self, warn: bool = True) -> None:
        side = round(self.imgsz * RESIZE_RATIO)
        needed, available = len(self) * side * side * 4, available_memory_bytes()  # ~4:3 images
        if available is not None and needed > CACHE_MEMORY_FRACTION * available:
            if not warn:
                return
            warnings.warn(
                f"RAM cache needs ~{needed / 2**30:.1f} GiB of {available / 2**30:.1f} GiB "
                "free; training without a cache",
                stacklevel=3,
            )
            return
        with ThreadPoolExecutor(max_workers=4) as pool:  # cv2 decoding releases the GIL
            self._cache = list(pool.map(self._decode_or_none, range(len(self))))

    def _decode_or_none(self, index: int) -> np.ndarray | None:
        try:
            return resize_shorter(
                read_image(self.data.samples[index][0]), round(self.imgsz * RESIZE_RATIO)
            )
        except DataError:
            self._unreadable[index] = 1
            return None

    def _load(self, index: int) -> tuple[int, np.ndarray]:
        """(index used, image) for ``index`` or, when unreadable, the next readable sample."""
        for offset in range(len(self)):
            candidate = (index + offset) % len(self)
            if self._unreadable.numpy()[candidate]:
                continue
            cached = None if self._cache is None else self._cache[candidate]
            if cached is not None:
                return candidate, cached
            try:
                return candidate, read_image(self.data.samples[candidate][0])
            except DataError:
                self._unreadable[candidate] = 1
        raise DataError(
            self.data.root,
            f"no image of the {self.data.split} split can be decoded",
            "run edgevision data check --deep",
        )

    def __getitem__(self, index: int) -> dict:
        """``image`` (3, S, S) uint8 tensor (S: ``size`` when training, else ``imgsz``), ``label``
        int, ``path`` str."""
        used, image = self._load(index)
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            image = train_transform(image, self.size, rng, self.hyp)
        else:
            image = center_crop_view(image, self.imgsz)
        path, label = self.data.samples[used]
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        return {"image": tensor, "label": label, "path": str(path)}


def classification_collate(batch: list[dict]) -> dict:
    """Samples -> ``images`` (B, 3, S, S) uint8, ``labels`` (B,) int64, ``paths`` list of B str."""
    return {
        "images": torch.stack([item["image"] for item in batch]),
        "labels": torch.tensor([item["label"] for item in batch], dtype=torch.int64),
        "paths": [item["path"] for item in batch],
    }


def build_classification_loader(
    dataset: ClassificationDataset,
    batch_size: int,
    workers: int,
    shuffle: bool,
    seed: int = 0,
    distributed: bool = False,
) -> DataLoader:
    """Seeded loader (order from ``(seed, epoch)``); training drops a ragged last batch when the
    split holds at least two batches, so BatchNorm never sees a batch of one."""
    drop_last = shuffle and len(dataset) >= 2 * batch_size
    return seeded_loader(
        dataset,
        batch_size,
        workers,
        shuffle,
        seed,
        distributed,
        drop_last,
        collate_fn=classification_collate,
    )
