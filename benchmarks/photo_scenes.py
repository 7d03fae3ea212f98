"""The pictures of the photo benchmark set (``photo_set.py``): real photos as backgrounds, and
scenes of labelled objects, occluders and unlabelled distractors composed on them.

Each image has its own generator seeded by ``(seed, split, index)`` (:func:`split_rng`), so an
image does not depend on how many others are drawn. Boxes are tight around each object's full
(amodal) extent, where its coverage before blur is >= 50%, clipped to the image.
"""

from __future__ import annotations

import colorsys
import functools
from dataclasses import dataclass

import cv2
import numpy as np

# The sibling benchmarks/photo_sprites.py: a script's folder is first on sys.path.
from photo_sprites import Scans, Sprite, render_distractor, render_object

from edgevision.core.errors import ConfigError

CLASS_NAMES = ("ball", "car", "cone", "digit0", "digit3", "digit4", "digit7", "person")
# Share of the annotated objects per class (drawn per object, so counts vary a little).
CLASS_SHARES = {
    "car": 0.30,
    "person": 0.20,
    "cone": 0.15,
    "ball": 0.12,
    "digit0": 0.08,
    "digit3": 0.07,
    "digit4": 0.05,
    "digit7": 0.03,
}
# skimage.data photos that ship with the wheel (no download); the rest of skimage.data needs
# pooch and the network, or is a synthetic pattern.
PHOTOS = (
    "astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
    "retina", "stereo_motorcycle", "coins", "camera", "text", "page", "moon", "clock", "grass",
    "gravel", "brick", "cell",
)  # fmt: skip
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}  # part of each image's seed: keep fixed
CLASSIFY_CODE = 100  # added to the split code for classification images
LONG_SIDE = (400, 800)  # detection image: longer side; the shorter one is >= SHORT_MIN
SHORT_MIN = 320
MAX_ASPECT = 1.9
CLASSIFY_SIDE = (96, 320)
# Share of the scattered objects drawn small; with the small clusters, border cuts and tilts
# about 47% of all boxes end up COCO-small (measured on the default set: 0.27 -> 45.2%).
SMALL_SHARE_DRAWN = 0.3
SMALL_SIZE = (9.0, 30.0)  # nominal size = sqrt(box area) before rotation, image pixels
MAX_OCCLUSION = 0.65
JPEG_QUALITY = (72, 95)


# ----------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Sources:
    """The real pixels the set is made of.

    Attributes:
        photos: (name, uint8 image) pairs; (H, W, 3) RGB, or (H, W) for grey photos.
        digits: digit -> {"train": (n, 8, 8), "heldout": (m, 8, 8)} float32 ink in [0, 1].
    """

    photos: tuple[tuple[str, np.ndarray], ...]
    digits: dict[int, dict[str, np.ndarray]]


def _photo(data_module, name: str) -> np.ndarray:
    image = getattr(data_module, name)()
    if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    image = np.asarray(image)
    return np.ascontiguousarray(image[..., :3] if image.ndim == 3 else image).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def load_sources() -> Sources:
    """The bundled photos and digits, read once per process.

    Raises:
        ConfigError: scikit-image or scikit-learn is missing (names the pip command).
    """
    try:
        import skimage.data
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ConfigError(
            f"the photo set needs scikit-image and scikit-learn ({error}); "
            "run: .venv/bin/python -m pip install scikit-image scikit-learn"
        ) from error
    photos = tuple((name, _photo(skimage.data, name)) for name in PHOTOS)
    loaded = load_digits()
    heldout = np.arange(len(loaded.target)) % 5 == 0  # 1 in 5 scans for val/test only
    digits = {}
    for digit in range(10):
        ink = (loaded.images[loaded.target == digit] / 16.0).astype(np.float32)
        held = heldout[loaded.target == digit]
        digits[digit] = {"train": ink[~held], "heldout": ink[held]}
    return Sources(photos, digits)


def split_scans(sources: Sources, split: str) -> Scans:
    """The digit scans ``split`` draws from: train and val/test never share a scan."""
    pool = "train" if split == "train" else "heldout"
    return {digit: by_pool[pool] for digit, by_pool in sources.digits.items()}


def split_rng(seed: int, split: str, index: int, stream: int = 0) -> np.random.Generator:
    """The generator of one image (``stream`` offsets classification and dirt draws)."""
    return np.random.default_rng([seed, SPLIT_CODES[split] + stream, index])


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(max(high, low)))))


# ----------------------------------------------------------------------------- backgrounds


def _tint_grey(rng: np.random.Generator, grey: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32: a grey photo as a duotone between a dark and a light random tint."""
    dark = np.array(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0, 0.5), rng.uniform(0, 0.2)))
    light = np.array(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0, 0.3), rng.uniform(0.8, 1)))
    share = (grey.astype(np.float32) / 255)[..., None]
    return (dark + share * (light - dark)).astype(np.float32) * 255


def _jitter_colour(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Hue, saturation, brightness, contrast and gamma jitter of a float32 (H, W, 3) image."""
    hsv = cv2.cvtColor(np.clip(image / 255, 0, 1).astype(np.float32), cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-12, 12)) % 360
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.6, 1.3), 0, 1)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    mean = float(rgb.mean())
    rgb = (rgb - mean) * rng.uniform(0.7, 1.2) + mean * rng.uniform(0.7, 1.2)
    return (np.clip(rgb, 0, 1) ** rng.uniform(0.8, 1.25) * 255).astype(np.float32)


def photo_background(
    rng: np.random.Generator, sources: Sources, width: int, height: int
) -> tuple[np.ndarray, str]:
    """A random crop of a random photo, zoomed to (width, height), flipped and jittered.

    Returns:
        (H, W, 3) float32 RGB in [0, 255], and the photo's name.
    """
    name, photo = sources.photos[int(rng.integers(len(sources.photos)))]
    photo_height, photo_width = photo.shape[:2]
    cover = max(width / photo_width, height / photo_height)  # the least zoom that fills the image
    zoom = cover * _log_uniform(rng, 1.0, 3.0 if cover < 1 else 1.3)
    crop_width = min(photo_width, max(1, int(round(width / zoom))))
    crop_height = min(photo_height, max(1, int(round(height / zoom))))
    x0 = int(rng.integers(0, photo_width - crop_width + 1))
    y0 = int(rng.integers(0, photo_height - crop_height + 1))
    crop = photo[y0 : y0 + crop_height, x0 : x0 + crop_width]
    shrinking = crop_width > width
    resized = cv2.resize(
        crop, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    )
    image = _tint_grey(rng, resized) if resized.ndim == 2 else resized.astype(np.float32)
    if rng.uniform() < 0.5:
        image = image[:, ::-1]
    if rng.uniform() < 0.1:
        image = image[::-1]
    return _jitter_colour(rng, np.ascontiguousarray(image)), name


# ----------------------------------------------------------------------------- scenes


class _Scene:
    """One image being composed: pixels, which object is on top where, each object's box."""

    def __init__(self, image: np.ndarray):
        self.image = image
        self.owner = np.zeros(image.shape[:2], np.uint8)  # 0 background, i + 1 object i
        self.visible: list[int] = []
        self.areas: list[int] = []
        self.boxes: list[list[int]] = []
        self.labels: list[int] = []
        self.truncated: list[bool] = []

    def _windows(self, sprite: Sprite, x: int, y: int):
        """(image window, sprite window) where a sprite at top-left (x, y) meets the image."""
        height, width = self.owner.shape
        sprite_height, sprite_width = sprite.alpha.shape
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + sprite_width, width), min(y + sprite_height, height)
        if x1 <= x0 or y1 <= y0:
            return None
        return (slice(y0, y1), slice(x0, x1)), (slice(y0 - y, y1 - y), slice(x0 - x, x1 - x))

    def blend(self, sprite: Sprite, x: int, y: int) -> None:
        """Paint a sprite that takes part in no box or occlusion (a distractor)."""
        windows = self._windows(sprite, x, y)
        if windows is None:
            return
        inside, part = windows
        alpha = sprite.alpha[part][..., None]
        self.image[inside] = self.image[inside] * (1 - alpha) + sprite.colour[part]

    def try_add(self, sprite: Sprite, x: int, y: int, label: int, min_inside: float = 0.45) -> bool:
        """Add a labelled object unless too little of it is inside the image, its box would be
        under 3 px, or it would hide more than :data:`MAX_OCCLUSION` of an earlier object."""
        windows = self._windows(sprite, x, y)
        total = int(sprite.solid.sum())
        if windows is None or total == 0:
            return False
        inside, part = windows
        solid = sprite.solid[part]
        count = int(solid.sum())
        if count < min_inside * total:
            return False
        rows, cols = np.nonzero(solid)
        box = [inside[1].start + cols.min(), inside[0].start + rows.min()]
        box += [inside[1].start + cols.max() + 1, inside[0].start + rows.max() + 1]
        if box[2] - box[0] < 3 or box[3] - box[1] < 3:
            return False
        hidden = np.bincount(self.owner[inside][solid], minlength=len(self.areas) + 1)[1:]
        remaining = np.array(self.visible, np.int64) - hidden
        if (remaining < (1 - MAX_OCCLUSION) * np.array(self.areas)).any():
            return False
        self.blend(sprite, x, y)
        self.owner[inside][solid] = len(self.areas) + 1
        self.visible = [*remaining.tolist(), count]
        self.areas.append(count)
        self.boxes.append([int(v) for v in box])
        self.labels.append(label)
        self.truncated.append(count < total)
        return True


@dataclass
class PhotoScene:
    """One rendered detection image and its clean labels.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        boxes: (N, 4) float32 xyxy, tight around each object's full (amodal) extent, clipped to
            the image.
        labels: (N,) int64 indices into :data:`CLASS_NAMES`.
        truncated: (N,) bool, cut by the image border.
        occlusion: (N,) float32 share of each object hidden by later objects.
        distractors: unlabelled things drawn.
        photo: the background photo's name.
        jpeg_quality: the quality the image is saved at.
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    truncated: np.ndarray
    occlusion: np.ndarray
    distractors: int
    photo: str
    jpeg_quality: int


def _detection_size(rng: np.random.Generator) -> tuple[int, int]:
    """(width, height): the longer side in :data:`LONG_SIDE`, landscape 2 in 3, shorter >= 320."""
    long_side = int(rng.integers(LONG_SIDE[0], LONG_SIDE[1] + 1))
    short_side = max(SHORT_MIN, int(round(long_side / _log_uniform(rng, 1.0, MAX_ASPECT))))
    return (long_side, short_side) if rng.uniform() < 2 / 3 else (short_side, long_side)


def _object_size(rng: np.random.Generator, short_side: int) -> float:
    """Nominal size: small (9-30 px) for :data:`SMALL_SHARE_DRAWN`, else 32 px to half the shorter side."""
    if rng.uniform() < SMALL_SHARE_DRAWN:
        return _log_uniform(rng, *SMALL_SIZE)
    return _log_uniform(rng, 32.0, min(0.5 * short_side, 360.0))


def _pick_class(rng: np.random.Generator) -> str:
    shares = np.array([CLASS_SHARES[name] for name in CLASS_NAMES])
    return CLASS_NAMES[int(rng.choice(len(CLASS_NAMES), p=shares / shares.sum()))]


def _plan(rng: np.random.Generator, short_side: int) -> list[tuple[str, float, bool]]:
    """(class, nominal size, in the cluster) per object to try; empty for 1 image in 25."""
    if rng.uniform() < 0.04:
        return []
    count = min(1 + int(rng.poisson(3.0)), 12)
    plan = [(_pick_class(rng), _object_size(rng, short_side), False) for _ in range(count)]
    if rng.uniform() < 0.25:  # a crowd of small things of one kind: cones on a road, far cars
        name, base = _pick_class(rng), _log_uniform(rng, 10.0, 26.0)
        plan += [
            (name, base * rng.uniform(0.8, 1.25), True) for _ in range(int(rng.integers(3, 8)))
        ]
    return plan


def _position(
    rng: np.random.Generator, sprite: Sprite, width: int, height: int, near: tuple | None
) -> tuple[int, int]:
    """Top-left corner: beside ``near`` (x, y, spread), cut by a border (1 in 8), or anywhere inside."""
    sprite_height, sprite_width = sprite.alpha.shape
    if near is not None:
        angle = rng.uniform(0, 2 * np.pi)
        distance = rng.uniform(0.2, 1.0) * near[2]
        cx, cy = near[0] + distance * np.cos(angle), near[1] + distance * np.sin(angle)
        return int(round(cx - sprite_width / 2)), int(round(cy - sprite_height / 2))
    x = int(rng.integers(0, max(width - sprite_width, 0) + 1))
    y = int(rng.integers(0, max(height - sprite_height, 0) + 1))
    if rng.uniform() < 0.125:
        cut = rng.uniform(0.15, 0.5)
        edge = int(rng.integers(4))
        if edge == 0:
            x = -int(cut * sprite_width)
        elif edge == 1:
            x = width - int((1 - cut) * sprite_width)
        elif edge == 2:
            y = -int(cut * sprite_height)
        else:
            y = height - int((1 - cut) * sprite_height)
    return x, y


def _photometric(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """The camera's part: slight blur, sensor noise, rounding to uint8."""
    if rng.uniform() < 0.15:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 0.9))
    noise = rng.standard_normal(image.shape, dtype=np.float32) * rng.uniform(1.0, 5.0)
    return np.clip(np.round(image + noise), 0, 255).astype(np.uint8)


def _add_distractors(rng: np.random.Generator, scene: _Scene, scans: Scans, count: int) -> None:
    height, width = scene.owner.shape
    for _ in range(count):
        sprite = render_distractor(rng, _object_size(rng, min(width, height)), scans)
        scene.blend(sprite, *_position(rng, sprite, width, height, None))


def _add_objects(rng: np.random.Generator, scene: _Scene, scans: Scans) -> None:
    height, width = scene.owner.shape
    cluster_centre = (rng.uniform(0.15, 0.85) * width, rng.uniform(0.15, 0.85) * height)
    for name, size, in_cluster in _plan(rng, min(width, height)):
        sprite = render_object(rng, name, size, scans)
        for attempt in range(8):  # a crowded image may refuse a spot: try elsewhere
            near = None
            if in_cluster:
                near = (*cluster_centre, 4.0 * size)
            elif scene.boxes and attempt < 4 and rng.uniform() < 0.3:  # beside an earlier object
                x0, y0, x1, y1 = scene.boxes[int(rng.integers(len(scene.boxes)))]
                near = ((x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0 + y1 - y0) / 2 + size / 2)
            x, y = _position(rng, sprite, width, height, near)
            if scene.try_add(sprite, x, y, CLASS_NAMES.index(name)):
                break


def render_scene(sources: Sources, seed: int, split: str, index: int) -> PhotoScene:
    """Render detection image ``index`` of ``split`` (clean labels; nothing written)."""
    rng = split_rng(seed, split, index)
    width, height = _detection_size(rng)
    background, photo = photo_background(rng, sources, width, height)
    scans = split_scans(sources, split)
    scene = _Scene(background)
    distractors = int(rng.integers(0, 9))
    _add_distractors(rng, scene, scans, distractors)
    _add_objects(rng, scene, scans)
    areas = np.maximum(np.array(scene.areas, np.float32), 1)
    return PhotoScene(
        image=_photometric(rng, scene.image),
        boxes=np.array(scene.boxes, np.float32).reshape(-1, 4),
        labels=np.array(scene.labels, np.int64),
        truncated=np.array(scene.truncated, bool),
        occlusion=1 - np.array(scene.visible, np.float32) / areas,
        distractors=distractors,
        photo=photo,
        jpeg_quality=int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)),
    )


# ----------------------------------------------------------------------------- classification


def _classify_size(rng: np.random.Generator) -> tuple[int, int]:
    width = int(rng.integers(CLASSIFY_SIDE[0], CLASSIFY_SIDE[1] + 1))
    height = int(np.clip(round(width * _log_uniform(rng, 0.75, 1.33)), *CLASSIFY_SIDE))
    return width, height


def render_classification_image(
    sources: Sources, seed: int, split: str, index: int, name: str
) -> np.ndarray:
    """(H, W, 3) uint8: one ``name`` object filling 35-85% of the shorter side (sometimes cut
    by the border) over a photo crop with a few small unlabelled distractors."""
    rng = split_rng(seed, split, index, CLASSIFY_CODE)
    width, height = _classify_size(rng)
    background, _ = photo_background(rng, sources, width, height)
    scans = split_scans(sources, split)
    scene = _Scene(background)
    for _ in range(int(rng.integers(0, 4))):
        size = _log_uniform(rng, 8, 0.3 * min(width, height))
        sprite = render_distractor(rng, size, scans)
        scene.blend(sprite, *_position(rng, sprite, width, height, None))
    target = rng.uniform(0.35, 0.85) * min(width, height)
    sprite = render_object(rng, name, target, scans)
    scale = target / max(sprite.alpha.shape)  # the drawn size is nominal: fit the longer side
    if abs(scale - 1) > 0.05:
        sprite = render_object(rng, name, target * scale, scans)
    for _ in range(8):
        if scene.try_add(sprite, *_position(rng, sprite, width, height, None), 0, min_inside=0.75):
            break
    else:  # never an image without its object: centre it
        sprite_height, sprite_width = sprite.alpha.shape
        scene.blend(sprite, (width - sprite_width) // 2, (height - sprite_height) // 2)
    return _photometric(rng, scene.image)
