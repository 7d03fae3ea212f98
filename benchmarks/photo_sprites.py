"""The objects of the photo benchmark set (``photo_set.py``), each drawn on its own transparent
canvas: four drawn classes, real handwritten digits, unlabelled distractors, and the blur,
see-through and tilt that objects in photos have.

Drawn objects are simple but photo-like: lit (Lambert sphere, cylinder and ramp shading), with
a darker edge drawn just inside the silhouette, in random or realistic colours. Every part is
rasterised at up to 4x and area-averaged, so small objects are anti-aliased the way a camera
integrates light. Digits are scikit-learn's 8x8 scans, upscaled with cubic interpolation and
thresholded at a random pen weight.
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from edgevision.data.synth.common import random_colour

DIGIT_CLASSES = {"digit0": 0, "digit3": 3, "digit4": 4, "digit7": 7}
DISTRACTOR_DIGITS = (1, 2, 5, 6, 8, 9)  # real handwritten digits that are never labelled
# Letters that do not read as a labelled digit (no O/D/Q for 0, no A for 4, no L/T/J for 7...).
DISTRACTOR_LETTERS = "CFHKMNPRUVWXY"
_SUBPIXEL_BITS = 4

# digit -> (n, 8, 8) float32 ink in [0, 1]: the scans one split may draw from.
Scans = dict[int, np.ndarray]


def _pick(rng: np.random.Generator, pool: np.ndarray) -> np.ndarray:
    return pool[int(rng.integers(len(pool)))]


@dataclass
class Sprite:
    """One object drawn on its own transparent canvas.

    Attributes:
        colour: (h, w, 3) float32 RGB premultiplied by ``alpha`` (blur and compositing stay exact).
        alpha: (h, w) float32 coverage in [0, 1], after blur and see-through.
        solid: (h, w) bool, the object's own extent (coverage >= 50% before blur): what its box
            and its occlusion are measured on.
    """

    colour: np.ndarray
    alpha: np.ndarray
    solid: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        if self.solid is None:
            self.solid = self.alpha >= 0.5


class _Pen:
    """cv2 drawing at ``scale`` x the sprite resolution, coordinates in sprite pixels."""

    def __init__(self, canvas: np.ndarray, scale: int):
        self.canvas, self.scale = canvas, scale

    def _fixed(self, points) -> np.ndarray:
        factor = self.scale * (1 << _SUBPIXEL_BITS)
        return np.round(np.asarray(points, dtype=np.float64) * factor).astype(np.int32)

    def polygon(self, points) -> None:
        cv2.fillPoly(self.canvas, [self._fixed(points)], 255, cv2.LINE_AA, _SUBPIXEL_BITS)

    def circle(self, centre, radius: float) -> None:
        centre, radius = self._fixed(centre), int(self._fixed(radius))
        centre = tuple(int(v) for v in centre)
        cv2.circle(self.canvas, centre, radius, 255, -1, cv2.LINE_AA, _SUBPIXEL_BITS)

    def ellipse(self, centre, axes, angle: float = 0.0, arc=(0, 360), thickness: float = -1):
        centre, axes = self._fixed(centre), self._fixed(axes)
        width = -1 if thickness < 0 else max(1, int(round(thickness * self.scale)))
        cv2.ellipse(
            self.canvas, tuple(int(v) for v in centre), tuple(int(v) for v in axes), angle,
            arc[0], arc[1], 255, width, cv2.LINE_AA, _SUBPIXEL_BITS,
        )  # fmt: skip

    def line(self, start, end, thickness: float) -> None:
        width = max(1, int(round(thickness * self.scale)))
        start, end = (tuple(int(v) for v in self._fixed(p)) for p in (start, end))
        cv2.line(self.canvas, start, end, 255, width, cv2.LINE_AA, _SUBPIXEL_BITS)

    def text(self, letter: str, origin, height: float, thickness: float, font: int) -> None:
        scale = cv2.getFontScaleFromHeight(font, max(1, int(round(height * self.scale))))
        width = max(1, int(round(thickness * self.scale)))
        x, y = (int(round(v * self.scale)) for v in origin)
        cv2.putText(self.canvas, letter, (x, y), font, scale, 255, width, cv2.LINE_AA)


class _Canvas:
    """A sprite being painted part by part (painter's order), premultiplied colour + alpha."""

    def __init__(self, width: float, height: float):
        self.width, self.height = int(np.ceil(width)) + 2, int(np.ceil(height)) + 2
        longest = max(self.width, self.height)
        self.scale = 4 if longest < 48 else 2 if longest < 160 else 1  # anti-aliasing quality
        self.colour = np.zeros((self.height, self.width, 3), np.float32)
        self.alpha = np.zeros((self.height, self.width), np.float32)

    def coverage(self, draw: Callable[[_Pen], None]) -> np.ndarray:
        """(h, w) float32 share of each pixel that ``draw`` covers."""
        fine = np.zeros((self.height * self.scale, self.width * self.scale), np.uint8)
        draw(_Pen(fine, self.scale))
        small = cv2.resize(fine, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return small.astype(np.float32) / 255

    def paint(self, coverage: np.ndarray, colour: np.ndarray) -> None:
        """Lay ``colour`` ((3,) or (h, w, 3), not premultiplied) over the canvas where covered."""
        cover = coverage[..., None]
        colour = np.clip(np.asarray(colour, np.float32), 0, 255)  # highlights may overshoot
        self.colour = self.colour * (1 - cover) + colour * cover
        self.alpha = self.alpha * (1 - coverage) + coverage

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(ys, xs) pixel-centre coordinates, each (h, w) float32."""
        ys, xs = np.mgrid[0 : self.height, 0 : self.width].astype(np.float32)
        return ys + 0.5, xs + 0.5

    def outline(self, strength: float) -> None:
        """Darken a band just inside the silhouette: a drawn edge that never moves the box."""
        radius = 1 if max(self.width, self.height) < 120 else 2
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        band = np.clip(self.alpha - cv2.erode(self.alpha, kernel), 0, 1)
        self.colour *= (1 - strength * band)[..., None]

    def sprite(self) -> Sprite:
        return Sprite(np.clip(self.colour, 0, 255), np.clip(self.alpha, 0, 1))


def _shaded(base: np.ndarray, shade: np.ndarray) -> np.ndarray:
    """(h, w, 3) colour field: ``base`` (3,) lit by ``shade`` (h, w)."""
    return np.clip(base[None, None, :] * shade[..., None], 0, 255).astype(np.float32)


def _ramp(canvas: _Canvas, angle: float, low: float, high: float) -> np.ndarray:
    """(h, w) linear light ramp from ``low`` to ``high`` along the direction ``angle``."""
    ys, xs = canvas.grid()
    along = np.cos(angle) * xs + np.sin(angle) * ys
    span = max(float(np.ptp(along)), 1.0)
    return low + (high - low) * (along - along.min()) / span


def _object_colour(rng: np.random.Generator, min_value: float = 0.3) -> np.ndarray:
    return random_colour(rng, min_value).astype(np.float32)


_CAR_PAINTS = np.array(
    [[235, 235, 232], [25, 25, 28], [160, 163, 168], [170, 20, 25], [30, 60, 140], [95, 98, 104]],
    np.float32,
)


def _ball(rng: np.random.Generator, size: float, scans: Scans) -> Sprite:
    """A lit sphere: Lambert shading, a highlight, plain, two-tone or with a seam."""
    canvas = _Canvas(size, size)
    centre, radius = canvas.width / 2, size / 2
    disc = canvas.coverage(lambda pen: pen.circle((centre, centre), radius))
    ys, xs = canvas.grid()
    nx, ny = (xs - centre) / radius, (ys - centre) / radius
    nz = np.sqrt(np.clip(1 - nx**2 - ny**2, 0, 1))
    light_angle = rng.uniform(np.pi, 2 * np.pi)  # from above, left or right
    lx, ly = 0.6 * np.cos(light_angle), 0.6 * np.sin(light_angle)
    lambert = np.clip(nx * lx + ny * ly + nz * 0.53, 0, None)
    shade = 0.3 + 0.85 * lambert
    highlight = np.exp(-((nx - lx * 0.8) ** 2 + (ny - ly * 0.8) ** 2) / 0.03)[..., None]
    canvas.paint(disc, _shaded(_object_colour(rng), shade) + 180 * highlight)
    pattern = int(rng.integers(0, 3))
    if pattern == 1:  # two-tone: a second colour on one half
        turn = rng.uniform(0, 2 * np.pi)
        rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
        half = np.array([[-2, 0], [2, 0], [2, 2], [-2, 2]]) * radius @ rotation.T + centre
        second = canvas.coverage(lambda pen: pen.polygon(half)) * disc
        canvas.paint(second, _shaded(_object_colour(rng), shade) + 180 * highlight)
    elif pattern == 2:  # a seam line across the sphere
        axes, turn = (radius * 0.95, radius * rng.uniform(0.2, 0.6)), rng.uniform(0, 180)
        seam = canvas.coverage(
            lambda pen: pen.ellipse((centre, centre), axes, turn, thickness=0.08 * size)
        )
        canvas.paint(seam * disc, _shaded(np.full(3, 40, np.float32), shade))
    canvas.outline(rng.uniform(0.3, 0.6))
    return canvas.sprite()


def _cone(rng: np.random.Generator, size: float, scans: Scans) -> Sprite:
    """A traffic cone: tapered body with reflective bands on a square foot, lit from one side."""
    aspect = rng.uniform(0.55, 0.8)  # width / height
    width, height = size * np.sqrt(aspect), size / np.sqrt(aspect)
    canvas = _Canvas(width, height)
    cx, top, foot = 1 + width / 2, 1.0, 1 + height * rng.uniform(0.86, 0.92)
    tip, bottom = width * rng.uniform(0.05, 0.12), width * rng.uniform(0.36, 0.42)

    def half_width(y: float) -> float:
        return tip + (bottom - tip) * (y - top) / (foot - top)

    def slice_of(y0: float, y1: float) -> list:
        return [(cx - half_width(y0), y0), (cx + half_width(y0), y0),
                (cx + half_width(y1), y1), (cx - half_width(y1), y1)]  # fmt: skip

    orange = np.array(
        colorsys.hsv_to_rgb(rng.uniform(0.02, 0.09), rng.uniform(0.8, 1), 1), np.float32
    )
    colour = orange * 255 if rng.uniform() < 0.75 else _object_colour(rng, 0.5)
    ys, xs = canvas.grid()
    light_x = cx + rng.uniform(-0.25, 0.25) * width
    shade = 0.5 + 0.65 * np.exp(-(((xs - light_x) / (0.3 * width)) ** 2))
    base = canvas.coverage(lambda pen: pen.polygon([(1, foot), (1 + width, foot),
                                                     (1 + width, 1 + height), (1, 1 + height)]))  # fmt: skip
    canvas.paint(base, _shaded(colour * rng.uniform(0.3, 0.7), shade))
    body = canvas.coverage(lambda pen: pen.polygon(slice_of(top, foot)))
    canvas.paint(body, _shaded(colour, shade))
    bands = [(0.3, 0.42), (0.58, 0.7)][: int(rng.integers(1, 3))]
    white = np.full(3, rng.uniform(200, 250), np.float32)
    for low, high in bands:
        y0, y1 = top + low * (foot - top), top + high * (foot - top)
        band = canvas.coverage(lambda pen, y0=y0, y1=y1: pen.polygon(slice_of(y0, y1)))
        canvas.paint(band, _shaded(white, shade))
    canvas.outline(rng.uniform(0.3, 0.6))
    return canvas.sprite()


def _car_side(rng: np.random.Generator, canvas: _Canvas, width: float, height: float, paint):
    """Side view: body, cabin with windows, two wheels, head and tail lights (facing right)."""
    x, y = (lambda u: 1 + u * width), (lambda v: 1 + v * height)
    van = rng.uniform() < 0.3
    cabin = (
        [(x(0.08), y(0.42)), (x(0.12), y(0.03)), (x(0.8), y(0.03)), (x(0.92), y(0.42))]
        if van
        else [(x(0.2), y(0.42)), (x(0.32), y(0.05)), (x(0.68), y(0.05)), (x(0.82), y(0.42))]
    )
    body = [(x(0), y(0.5)), (x(0.05), y(0.38)), (x(0.93), y(0.4)), (x(1), y(0.52)),
            (x(1), y(0.78)), (x(0.97), y(0.84)), (x(0.03), y(0.84)), (x(0), y(0.76))]  # fmt: skip
    shell = canvas.coverage(lambda pen: (pen.polygon(cabin), pen.polygon(body)))
    canvas.paint(shell, _shaded(paint, _ramp(canvas, np.pi / 2, 1.15, 0.6)))
    centre = np.mean(cabin, axis=0)
    glass = [tuple(centre + (np.array(p) - centre) * 0.78) for p in cabin]
    windows = canvas.coverage(lambda pen: pen.polygon(glass))
    pillar = canvas.coverage(
        lambda pen: pen.line((centre[0], y(0.0)), (centre[0], y(0.45)), 0.03 * width)
    )
    glass_colour = np.array([150, 175, 195], np.float32) * rng.uniform(0.5, 1.0)
    canvas.paint(windows * (1 - pillar), _shaded(glass_colour, _ramp(canvas, 0.4, 1.2, 0.6)))
    lights = [((x(0.975), y(0.52)), (250, 240, 190)), ((x(0.02), y(0.52)), (200, 20, 20))]
    for spot, colour in lights:
        lamp = canvas.coverage(
            lambda pen, spot=spot: pen.ellipse(spot, (0.025 * width, 0.04 * height))
        )
        canvas.paint(lamp, np.array(colour, np.float32))
    radius = height * 0.17
    for wheel_x in (x(0.2), x(0.8)):
        hub_centre = (wheel_x, 1 + height - radius)
        tyre = canvas.coverage(lambda pen, c=hub_centre: pen.circle(c, radius))
        canvas.paint(tyre, np.full(3, rng.uniform(15, 45), np.float32))
        hub = canvas.coverage(lambda pen, c=hub_centre: pen.circle(c, radius * 0.5))
        canvas.paint(hub, np.full(3, rng.uniform(110, 200), np.float32))


def _car_front(rng: np.random.Generator, canvas: _Canvas, width: float, height: float, paint):
    """Front view: body, windscreen, two headlights, a grille and the bottoms of the tyres."""
    x, y = (lambda u: 1 + u * width), (lambda v: 1 + v * height)
    tyre_colour = np.full(3, rng.uniform(15, 45), np.float32)
    for left in (0.06, 0.78):
        tyre = canvas.coverage(lambda pen, u=left: pen.polygon(
            [(x(u), y(0.8)), (x(u + 0.16), y(0.8)), (x(u + 0.16), y(1)), (x(u), y(1))]))  # fmt: skip
        canvas.paint(tyre, tyre_colour)
    cabin = [(x(0.14), y(0.45)), (x(0.26), y(0.04)), (x(0.74), y(0.04)), (x(0.86), y(0.45))]
    body = [(x(0), y(0.48)), (x(0.06), y(0.4)), (x(0.94), y(0.4)), (x(1), y(0.48)),
            (x(1), y(0.86)), (x(0), y(0.86))]  # fmt: skip
    shell = canvas.coverage(lambda pen: (pen.polygon(cabin), pen.polygon(body)))
    canvas.paint(shell, _shaded(paint, _ramp(canvas, np.pi / 2, 1.15, 0.65)))
    centre = np.mean(cabin, axis=0)
    screen = [tuple(centre + (np.array(p) - centre) * 0.82) for p in cabin]
    glass = canvas.coverage(lambda pen: pen.polygon(screen))
    canvas.paint(
        glass, _shaded(np.array([140, 165, 190], np.float32), _ramp(canvas, 1.0, 1.2, 0.5))
    )
    for u in (0.16, 0.84):
        lamp = canvas.coverage(
            lambda pen, u=u: pen.ellipse((x(u), y(0.58)), (0.08 * width, 0.05 * height))
        )
        canvas.paint(lamp, np.array([250, 245, 210], np.float32))
    grille = canvas.coverage(lambda pen: pen.polygon(
        [(x(0.32), y(0.55)), (x(0.68), y(0.55)), (x(0.68), y(0.7)), (x(0.32), y(0.7))]))  # fmt: skip
    canvas.paint(grille, np.full(3, 35, np.float32))


def _car(rng: np.random.Generator, size: float, scans: Scans) -> Sprite:
    """A car seen from the side (3 in 4, either way) or from the front, in a car paint or any colour."""
    side = rng.uniform() < 0.75
    aspect = rng.uniform(1.7, 2.5) if side else rng.uniform(1.15, 1.5)  # width / height
    width, height = size * np.sqrt(aspect), size / np.sqrt(aspect)
    canvas = _Canvas(width, height)
    paint = (
        _CAR_PAINTS[int(rng.integers(len(_CAR_PAINTS)))] * rng.uniform(0.85, 1.1)
        if rng.uniform() < 0.6
        else _object_colour(rng)
    )
    (_car_side if side else _car_front)(rng, canvas, width, height, np.clip(paint, 0, 255))
    canvas.outline(rng.uniform(0.3, 0.6))
    sprite = canvas.sprite()
    if side and rng.uniform() < 0.5:  # facing left
        sprite = Sprite(sprite.colour[:, ::-1].copy(), sprite.alpha[:, ::-1].copy())
    return sprite


def _skin(rng: np.random.Generator) -> np.ndarray:
    tones = np.array(
        [[255, 220, 185], [235, 190, 150], [200, 150, 110], [140, 95, 60], [90, 60, 40]]
    )
    return (
        (tones[int(rng.integers(len(tones)))] * rng.uniform(0.9, 1.05))
        .clip(0, 255)
        .astype(np.float32)
    )


def _limb(start, direction: float, length: float) -> tuple[float, float]:
    """The end of a limb of ``length`` from ``start``, ``direction`` radians from straight down."""
    return start[0] + length * np.sin(direction), start[1] + length * np.cos(direction)


def _person(rng: np.random.Generator, size: float, scans: Scans) -> Sprite:
    """A standing or walking figure: a head and a body, as a stick figure or in clothes."""
    height = size / np.sqrt(rng.uniform(0.3, 0.45))
    canvas = _Canvas(0.9 * height, height)
    cx, unit = canvas.width / 2, height
    stick = rng.uniform() < 0.35
    limb = max(0.045 * unit, 0.8) if stick else 0.075 * unit
    shirt, trousers = _object_colour(rng, 0.2), _object_colour(rng, 0.15)
    skin = _skin(rng)
    if stick:
        trousers = shirt = skin if rng.uniform() < 0.3 else _object_colour(rng, 0.15)
    hip, shoulder = (cx, 1 + 0.55 * unit), (cx, 1 + 0.23 * unit)
    stride = rng.uniform(0.05, 0.45)  # half the angle between the legs
    lean = rng.uniform(-0.15, 0.15)
    light = _ramp(canvas, rng.uniform(0.5 * np.pi, np.pi), 1.1, 0.7)
    for direction in (lean - stride, lean + stride):
        knee = _limb(hip, direction, 0.23 * unit)
        foot = _limb(knee, direction + rng.uniform(-0.3, 0.1), 0.22 * unit - limb / 2)
        leg = canvas.coverage(
            lambda pen, k=knee, f=foot: (pen.line(hip, k, limb), pen.line(k, f, limb))
        )
        canvas.paint(leg, _shaded(trousers, light))
    if stick:
        body = canvas.coverage(lambda pen: pen.line((cx, 1 + 0.17 * unit), hip, limb))
    else:
        torso = [(cx - 0.11 * unit, shoulder[1] - 0.03 * unit), (cx + 0.11 * unit, shoulder[1] - 0.03 * unit),
                 (cx + 0.075 * unit, hip[1] + 0.02 * unit), (cx - 0.075 * unit, hip[1] + 0.02 * unit)]  # fmt: skip
        body = canvas.coverage(lambda pen: pen.polygon(torso))
    canvas.paint(body, _shaded(shirt, light))
    arm = max(0.04 * unit, 0.8) if stick else 0.06 * unit
    for side in (-1, 1):
        root = (cx + side * (0.0 if stick else 0.09 * unit), shoulder[1])
        swing = side * rng.uniform(0.1, 1.2)
        elbow = _limb(root, swing, 0.16 * unit)
        hand = _limb(elbow, swing + side * rng.uniform(-0.6, 0.9), 0.15 * unit)
        sleeve = canvas.coverage(
            lambda pen, r=root, e=elbow, h=hand: (pen.line(r, e, arm), pen.line(e, h, arm))
        )
        canvas.paint(sleeve, _shaded(shirt, light))
    head_centre = (cx + lean * 0.05 * unit, 1 + 0.09 * unit)
    head = canvas.coverage(lambda pen: pen.circle(head_centre, 0.085 * unit))
    canvas.paint(head, _shaded(skin, light))
    if not stick and rng.uniform() < 0.7:
        hair_colour = (
            np.array(colorsys.hsv_to_rgb(0.08, 0.6, rng.uniform(0.05, 0.6)), np.float32) * 255
        )
        hair = canvas.coverage(
            lambda pen: pen.ellipse(head_centre, (0.088 * unit, 0.088 * unit), 0, (180, 360))
        )
        canvas.paint(hair, hair_colour)
    canvas.outline(rng.uniform(0.2, 0.5))
    return canvas.sprite()


def _ink(rng: np.random.Generator, canvas: _Canvas, coverage: np.ndarray) -> None:
    colour = _object_colour(rng, 0.15)
    canvas.paint(coverage, _shaded(colour, _ramp(canvas, rng.uniform(0, 2 * np.pi), 0.8, 1.15)))


def _handwritten(rng: np.random.Generator, size: float, scan: np.ndarray) -> Sprite:
    """One 8x8 scan upscaled (cubic) to about ``size`` px, thresholded at a random pen weight."""
    aspect = rng.uniform(0.6, 0.95)  # width / height
    width, height = size * np.sqrt(aspect), size / np.sqrt(aspect)
    canvas = _Canvas(width * 10 / 8, height * 10 / 8)  # the 8x8 core lands on width x height
    padded = np.pad(scan, 1)  # an empty border so the cubic kernel sees ink fade out
    fine = cv2.resize(padded, (canvas.width, canvas.height), interpolation=cv2.INTER_CUBIC)
    weight = rng.uniform(0.3, 0.55)
    softness = float(np.clip(8.0 / size, 0.06, 0.3))  # small digits keep soft edges
    coverage = np.clip((fine - weight) / softness + 0.5, 0, 1).astype(np.float32)
    _ink(rng, canvas, coverage)
    return canvas.sprite()


def _digit_drawer(digit: int) -> Callable:
    def draw(rng: np.random.Generator, size: float, scans: Scans) -> Sprite:
        return _handwritten(rng, size, _pick(rng, scans[digit]))

    draw.__doc__ = f"A real handwritten {digit} from scikit-learn's digits."
    return draw


DRAWERS = {
    "ball": _ball,
    "car": _car,
    "cone": _cone,
    "person": _person,
    **{name: _digit_drawer(digit) for name, digit in DIGIT_CLASSES.items()},
}
# How far each class tilts either way, degrees (balls spin freely, people and cars stand).
_MAX_TILT = {"ball": 180, "car": 8, "cone": 12, "person": 10} | {name: 20 for name in DIGIT_CLASSES}


def _letter(rng: np.random.Generator, size: float) -> Sprite:
    letter = DISTRACTOR_LETTERS[int(rng.integers(len(DISTRACTOR_LETTERS)))]
    canvas = _Canvas(size * 1.2, size * 1.3)
    font = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_TRIPLEX)[
        int(rng.integers(3))
    ]
    thickness = max(0.08 * size, 0.8)
    cover = canvas.coverage(lambda pen: pen.text(letter, (1.0, 1 + size), size, thickness, font))
    _ink(rng, canvas, cover)
    return canvas.sprite()


def _blob(rng: np.random.Generator, size: float) -> Sprite:
    """An irregular flat polygon (no circle: radii vary by 2x), a stain or a patch of something."""
    canvas = _Canvas(size, size)
    count = int(rng.integers(5, 10))
    angles = np.sort(rng.uniform(0, 2 * np.pi, count))
    radii = rng.uniform(0.25, 0.5, count) * size
    centre = canvas.width / 2
    points = np.stack([centre + radii * np.cos(angles), centre + radii * np.sin(angles)], 1)
    cover = canvas.coverage(lambda pen: pen.polygon(points))
    canvas.paint(
        cover, _shaded(_object_colour(rng, 0.1), _ramp(canvas, rng.uniform(0, 6.3), 0.8, 1.1))
    )
    return canvas.sprite()


def _bar(rng: np.random.Generator, size: float) -> Sprite:
    """A pole, a road marking or a cable: a long thin line."""
    length = size * rng.uniform(1.5, 4)
    canvas = _Canvas(length, length)
    turn = rng.uniform(0, np.pi)
    centre = np.array([canvas.width / 2, canvas.height / 2])
    offset = np.array([np.cos(turn), np.sin(turn)]) * length / 2
    cover = canvas.coverage(
        lambda pen: pen.line(
            centre - offset, centre + offset, max(1.0, size * rng.uniform(0.05, 0.2))
        )
    )
    canvas.paint(cover, _object_colour(rng, 0.1))
    return canvas.sprite()


def _arc(rng: np.random.Generator, size: float) -> Sprite:
    """An open arc: never closes into a ball."""
    canvas = _Canvas(size, size)
    centre = canvas.width / 2
    start = rng.uniform(0, 360)
    cover = canvas.coverage(lambda pen: pen.ellipse(
        (centre, centre), (size / 2 * 0.9, size / 2 * rng.uniform(0.4, 0.9)), rng.uniform(0, 180),
        (start, start + rng.uniform(60, 220)), max(1.0, 0.08 * size)))  # fmt: skip
    canvas.paint(cover, _object_colour(rng, 0.1))
    return canvas.sprite()


def _distractor(rng: np.random.Generator, size: float, scans: Scans) -> Sprite:
    """Something that is never labelled: another digit, a letter, a blob, a bar or an arc."""
    kind = int(rng.integers(0, 5))
    if kind == 0:
        digit = DISTRACTOR_DIGITS[int(rng.integers(len(DISTRACTOR_DIGITS)))]
        return _handwritten(rng, size, _pick(rng, scans[digit]))
    return (_letter, _blob, _bar, _arc)[kind - 1](rng, size)


# ----------------------------------------------------------------------------- sprite effects


def _rotated(sprite: Sprite, degrees: float) -> Sprite:
    """The sprite turned about its centre on a canvas grown to hold all of it."""
    if abs(degrees) < 0.5:
        return sprite
    height, width = sprite.alpha.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_width, new_height = (
        int(np.ceil(width * cos + height * sin)),
        int(np.ceil(width * sin + height * cos)),
    )
    matrix[:, 2] += ((new_width - width) / 2, (new_height - height) / 2)
    size = (new_width, new_height)
    colour = cv2.warpAffine(sprite.colour, matrix, size, flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(sprite.alpha, matrix, size, flags=cv2.INTER_LINEAR)
    return Sprite(colour, alpha)


def _trimmed(sprite: Sprite) -> Sprite:
    """The sprite cropped to where it has any ink (keeps compositing windows small)."""
    rows, cols = np.nonzero(sprite.alpha > 1e-3)
    if len(rows) == 0:
        return sprite
    window = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    return Sprite(sprite.colour[window], sprite.alpha[window], sprite.solid[window])


def _weathered(rng: np.random.Generator, sprite: Sprite) -> Sprite:
    """Defocus or motion blur and see-through, as objects in photos have; ``solid`` is kept."""
    colour, alpha = sprite.colour, sprite.alpha
    effect = rng.uniform()
    if effect < 0.25:  # defocus
        sigma = rng.uniform(0.5, 1.5)
        colour, alpha = (cv2.GaussianBlur(a, (0, 0), sigma) for a in (colour, alpha))
    elif effect < 0.35:  # motion: a short line kernel
        length = int(rng.integers(3, 8))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2] = 1.0 / length
        turn = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1)
        kernel = cv2.warpAffine(kernel, turn, (length, length))
        kernel /= max(float(kernel.sum()), 1e-6)
        colour, alpha = (cv2.filter2D(a, -1, kernel) for a in (colour, alpha))
    if rng.uniform() < 0.15:  # glass, reflections, haze
        see_through = rng.uniform(0.55, 0.9)
        colour, alpha = colour * see_through, alpha * see_through
    return Sprite(colour, alpha, sprite.solid)


def render_object(rng: np.random.Generator, name: str, size: float, scans: Scans) -> Sprite:
    """One labelled object of class ``name`` at nominal ``size`` (sqrt of its box area), tilted,
    trimmed and weathered."""
    sprite = DRAWERS[name](rng, size, scans)
    tilt = _MAX_TILT[name]
    sprite = _trimmed(_rotated(sprite, rng.uniform(-tilt, tilt)))
    return _weathered(rng, sprite)


def render_distractor(rng: np.random.Generator, size: float, scans: Scans) -> Sprite:
    """One unlabelled thing at nominal ``size``: tilted up to 30 degrees, trimmed, weathered."""
    sprite = _distractor(rng, size, scans)
    return _weathered(rng, _trimmed(_rotated(sprite, rng.uniform(-30, 30))))
