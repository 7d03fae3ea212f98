"""The figures of the pose demo set: a body with K limbs whose capped ends are the keypoints.

- Every keypoint is the centre of the cap drawn at a limb's end: a distinct, visible place a
  model can localise.
- The base pose is mirror-symmetric: a head on the axis, then left/right pairs at mirrored
  angles, and a tail on the axis when K is even. So ``flip_idx`` (left <-> right) is exactly what
  a horizontal flip does. "Left" is the figure's own left, on the screen's right when the head
  is up (a person facing the camera).
- Each pair has its own angle, length and cap shape, so points are told apart by geometry, not
  colour; per figure, limb angles (up to a third of the gap between pairs) and lengths
  (+/- 15%) vary (articulation) and the whole figure turns by any angle.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgevision.data.synth.common import regular_polygon

SHIFT = 4  # cv2 drawing: vertices at 1/16 pixel
_PART_NAMES = ("arm", "leg", "wing", "fin", "horn", "claw", "antenna", "paw")
_PAIR_CAPS = ("square", "triangle", "diamond")


@dataclass(frozen=True)
class FigureLayout:
    """The base pose of a K-point figure: head up, limb length 1.

    Attributes:
        names: K keypoint names (``head``, ``left_arm``, ``right_arm``, ..., ``tail``).
        angles: (K,) limb directions, radians clockwise on screen from straight up.
        lengths: (K,) limb lengths.
        caps: K cap shapes ("disc", "square", "triangle", "diamond", "bar").
        skeleton: 0-based pairs for drawing: head to the first pair, each side down, to the tail.
        jitter: largest change of a limb's angle per figure, radians.
    """

    names: tuple[str, ...]
    angles: np.ndarray
    lengths: np.ndarray
    caps: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]
    jitter: float


def figure_layout(num_keypoints: int) -> FigureLayout:
    """The layout of a K-point figure (see the module docstring): mirror-symmetric, with K distinct
    limb ends."""
    pairs, tail = (num_keypoints - 1) // 2, num_keypoints > 1 and num_keypoints % 2 == 0
    spread = np.deg2rad(np.linspace(40, 150, pairs) if pairs > 1 else [75.0] * pairs)
    gap = float(np.diff(spread).min()) if pairs > 1 else np.deg2rad(36.0)
    names, angles, lengths, caps = ["head"], [0.0], [0.75], ["disc"]
    for j in range(pairs):
        part = _PART_NAMES[j] if j < len(_PART_NAMES) else f"limb{j}"
        names += [f"left_{part}", f"right_{part}"]
        angles += [spread[j], -spread[j]]
        lengths += [1.0 if j % 2 == 0 else 0.72] * 2
        caps += [_PAIR_CAPS[j % len(_PAIR_CAPS)]] * 2
    skeleton = [(0, 1), (0, 2)] if pairs else []
    skeleton += [(2 * j + side, 2 * j + 2 + side) for j in range(pairs - 1) for side in (1, 2)]
    if tail:
        names.append("tail")
        angles.append(np.pi)
        lengths.append(0.85)
        caps.append("bar")
        last = num_keypoints - 1
        skeleton += [(last - 2, last), (last - 1, last)] if pairs else [(0, last)]
    return FigureLayout(
        tuple(names), np.array(angles), np.array(lengths), tuple(caps), tuple(skeleton), gap / 3
    )


def _cap(shape: str, tip: np.ndarray, direction: float, radius: float) -> np.ndarray:
    """(V, 2) polygon of a limb's end cap centred on ``tip``, turned with the limb."""
    if shape == "disc":
        unit = regular_polygon(16)
    elif shape == "triangle":
        unit = regular_polygon(3)  # one vertex along the limb, pointing outward
    elif shape == "bar":
        unit = np.array([[-1.3, -0.45], [1.3, -0.45], [1.3, 0.45], [-1.3, 0.45]])
    else:
        unit = (
            regular_polygon(4)
            if shape == "diamond"
            else regular_polygon(4) @ turn_matrix(np.pi / 4)
        )
    return tip + (unit * radius) @ turn_matrix(direction)


def turn_matrix(angle: float) -> np.ndarray:
    """2x2 matrix turning row vectors clockwise on screen (y down) by ``angle``."""
    cos, sin = np.cos(angle), np.sin(angle)
    return np.array([[cos, sin], [-sin, cos]])


@dataclass
class Figure:
    """One figure in image coordinates: what to draw and where its keypoints are."""

    centre: np.ndarray  # (2,)
    tips: np.ndarray  # (K, 2) keypoints
    body: np.ndarray  # (V, 2) polygon
    caps: list[np.ndarray]  # K polygons
    thickness: int

    def extent(self) -> tuple[np.ndarray, np.ndarray]:
        points = np.concatenate([self.body, *self.caps])
        return points.min(0), points.max(0)

    def moved(self, offset: np.ndarray) -> Figure:
        caps = [cap + offset for cap in self.caps]
        return Figure(
            self.centre + offset, self.tips + offset, self.body + offset, caps, self.thickness
        )


def random_figure(
    rng: np.random.Generator, layout: FigureLayout, limb: float, max_turn: float = 180.0
) -> Figure:
    """A figure around the origin: articulated, scaled to ``limb`` px and turned at random, by any
    angle (``max_turn`` 180) or by at most ``max_turn`` degrees either way from upright."""
    count = len(layout.names)
    if max_turn >= 180:
        turn = rng.uniform(0, 2 * np.pi)
    else:
        turn = rng.uniform(-np.deg2rad(max_turn), np.deg2rad(max_turn))
    directions = layout.angles + rng.uniform(-layout.jitter, layout.jitter, count) + turn
    lengths = layout.lengths * rng.uniform(0.85, 1.15, count) * limb
    tips = lengths[:, None] * np.stack([np.sin(directions), -np.cos(directions)], axis=1)
    body = (regular_polygon(20) * [0.17 * limb, 0.26 * limb]) @ turn_matrix(turn)
    radius = max(1.6, 0.16 * limb)
    caps = [_cap(s, t, d, radius) for s, t, d in zip(layout.caps, tips, directions, strict=True)]
    return Figure(np.zeros(2), tips, body, caps, max(1, int(round(0.09 * limb))))


def fixed_point(points: np.ndarray) -> np.ndarray:
    """Continuous-frame points as cv2 fixed-point pixels (cv2 puts pixel i's centre at i)."""
    return np.round((np.asarray(points) - 0.5) * (1 << SHIFT)).astype(np.int32)


def draw_figure(canvas: np.ndarray, figure: Figure, limb_value, cap_value, line_type: int) -> None:
    """Limbs and body in ``limb_value``, caps in ``cap_value`` (a colour, or an owner id)."""
    centre = tuple(fixed_point(figure.centre).tolist())
    for tip in figure.tips:
        end = tuple(fixed_point(tip).tolist())
        cv2.line(canvas, centre, end, limb_value, figure.thickness, line_type, SHIFT)
    cv2.fillPoly(canvas, [fixed_point(figure.body)], limb_value, line_type, SHIFT)
    cv2.fillPoly(canvas, [fixed_point(cap) for cap in figure.caps], cap_value, line_type, SHIFT)
