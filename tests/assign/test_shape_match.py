"""Shape-ratio matching and the 0.5 neighbour rule, on hand-made targets and against a loop."""

from __future__ import annotations

import math

import torch

from edgevision.assign.shape_match import match_anchors, shape_match

STRIDE = 8
GRID = (10, 10)  # (h, w) of an 80 x 80 input at stride 8


def _target(cx: float, cy: float, w: float, h: float, image: int = 0, cls: int = 0) -> list:
    """A target row from a centre and size in input pixels."""
    return [image, cls, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def _one_level(targets: list, anchors, anchor_t: float = 4.0):
    anchors = torch.tensor([anchors], dtype=torch.float32)
    (match,) = shape_match(torch.tensor(targets), anchors, [STRIDE], [GRID], anchor_t)
    return match


def _cells(match) -> list[tuple[int, int]]:
    return list(zip(match.grid_x.tolist(), match.grid_y.tolist(), strict=True))


def test_a_target_of_exactly_an_anchors_size_matches_it_alone():
    # Centre 44 px = 5.5 cells: half-way across its cell on both axes, so no neighbours.
    match = _one_level([_target(44, 44, 16, 16)], [[16, 16], [80, 80]])
    assert len(match) == 1
    assert match.anchor.tolist() == [0] and _cells(match) == [(5, 5)]
    assert match.image.tolist() == [0] and match.target.tolist() == [0]
    torch.testing.assert_close(match.box, torch.tensor([[0.5, 0.5, 2.0, 2.0]]))
    torch.testing.assert_close(match.anchor_wh, torch.tensor([[2.0, 2.0]]))


def test_a_five_times_bigger_target_does_not_match():
    assert len(_one_level([_target(44, 44, 80, 80)], [[16, 16]])) == 0
    # One side alone 5x too long is enough to refuse; a ratio just under 4 still matches.
    assert len(_one_level([_target(44, 44, 16, 80)], [[16, 16]])) == 0
    assert len(_one_level([_target(44, 44, 63.9, 16)], [[16, 16]])) == 1


def test_the_ratio_bound_is_strict_and_symmetric():
    wh = torch.tensor([[4.0, 4.0], [64.0, 64.0], [4.01, 16.0], [0.0, 16.0]])
    matched = match_anchors(wh, torch.tensor([[16.0, 16.0]]), anchor_t=4.0)
    # exactly 4x smaller / larger: not below 4; 3.99x: below; zero width: never.
    assert matched[:, 0].tolist() == [False, False, True, False]


def test_neighbours_follow_the_half_cell_rule():
    # Centre (5.25, 5.75) cells: nearer the left border in x, the bottom border in y.
    match = _one_level([_target(42, 46, 16, 16)], [[16, 16]])
    assert _cells(match) == [(5, 5), (4, 5), (5, 6)]  # own, x neighbour, y neighbour
    torch.testing.assert_close(
        match.box[:, :2], torch.tensor([[0.25, 0.75], [1.25, 0.75], [0.25, -0.25]])
    )
    # Offsets stay inside the codec's (-0.5, 1.5) reach.
    assert bool(((match.box[:, :2] > -0.5) & (match.box[:, :2] < 1.5)).all())


def test_neighbours_outside_the_grid_are_left_out():
    # (0.25, 9.75): left of cell 0 and below row 9 do not exist -> own cell only.
    assert _cells(_one_level([_target(2, 78, 16, 16)], [[16, 16]])) == [(0, 9)]
    # (0.75, 0.25): the right neighbour exists, the one above does not.
    assert _cells(_one_level([_target(6, 2, 16, 16)], [[16, 16]])) == [(0, 0), (1, 0)]
    # (9.75, 5.5): no right neighbour, and no y neighbour at a half-way fraction.
    assert _cells(_one_level([_target(78, 44, 16, 16)], [[16, 16]])) == [(9, 5)]


def test_a_centre_on_the_far_border_uses_the_last_cell():
    match = _one_level([_target(80, 44, 16, 16)], [[16, 16]])  # x = 10.0 cells: past cell 9
    assert _cells(match)[0] == (9, 5)
    assert math.isclose(float(match.box[0, 0]), 1.0)


def test_levels_images_and_anchors_are_reported():
    anchors = torch.tensor([[[10.0, 10.0], [20.0, 40.0]], [[100.0, 100.0], [200.0, 150.0]]])
    targets = torch.tensor(
        [
            # 10x10: exactly level-0 anchor 0; 4x the other's height is not below 4.
            _target(44, 44, 10, 10, image=1, cls=2),
            # 40x30: 4x anchor 0's width (no), 2x / 1.33x anchor 1 (yes); 2.5x / 3.3x level-1
            # anchor 0 (yes), 5x the other's width (no).
            _target(44, 44, 40, 30, image=0, cls=1),
            # 250x200: 2.5x / 2x and 1.25x / 1.33x the level-1 anchors, 12.5x level 0's.
            _target(160, 160, 250, 200, image=1, cls=0),
        ]
    )
    fine, coarse = shape_match(targets, anchors, [8, 32], [(40, 40), (10, 10)])
    pairs = sorted(set(zip(fine.target.tolist(), fine.anchor.tolist(), strict=True)))
    assert pairs == [(0, 0), (1, 1)]
    pairs = sorted(set(zip(coarse.target.tolist(), coarse.anchor.tolist(), strict=True)))
    assert pairs == [(1, 0), (2, 0), (2, 1)]
    assert fine.image[fine.target == 0].unique().tolist() == [1]
    torch.testing.assert_close(coarse.anchor_wh[coarse.target == 2][0], anchors[1, 0] / 32)


def test_no_targets_give_empty_levels():
    matches = shape_match(torch.zeros((0, 6)), torch.tensor([[[16.0, 16.0]]]), [8], [GRID])
    assert len(matches) == 1 and len(matches[0]) == 0
    assert matches[0].box.shape == (0, 4)


def _loop_reference(targets, anchors, stride, size, anchor_t):
    """The rule written one target, anchor and candidate cell at a time."""
    height, width = size
    found = set()
    for row, (image, _, x0, y0, x1, y1) in enumerate(targets.tolist()):
        cx, cy, w, h = (x0 + x1) / 2 / stride, (y0 + y1) / 2 / stride, (x1 - x0), (y1 - y0)
        for a, (aw, ah) in enumerate(anchors.tolist()):
            if max(w / aw, aw / w, h / ah, ah / h) >= anchor_t:
                continue
            gx, gy = min(max(math.floor(cx), 0), width - 1), min(max(math.floor(cy), 0), height - 1)
            candidates = [(gx, gy)]
            fx, fy = cx - math.floor(cx), cy - math.floor(cy)
            if fx != 0.5:
                candidates.append((gx + (-1 if fx < 0.5 else 1), gy))
            if fy != 0.5:
                candidates.append((gx, gy + (-1 if fy < 0.5 else 1)))
            for x, y in candidates:
                if 0 <= x < width and 0 <= y < height:
                    found.add((int(image), a, y, x, row))
    return found


def test_random_targets_equal_a_loop_reference():
    generator = torch.Generator().manual_seed(0)
    count = 60
    centres = torch.rand(count, 2, generator=generator) * 80
    sizes = torch.exp(torch.rand(count, 2, generator=generator) * 4) * 2  # 2 .. 109 px
    images = torch.randint(0, 3, (count, 1), generator=generator).float()
    targets = torch.cat(
        [images, torch.zeros(count, 1), centres - sizes / 2, centres + sizes / 2], 1
    )
    anchors = torch.tensor([[10.0, 14.0], [23.0, 27.0], [37.0, 58.0]])
    (match,) = shape_match(targets, anchors[None], [STRIDE], [GRID])
    got = set(
        zip(
            match.image.tolist(),
            match.anchor.tolist(),
            match.grid_y.tolist(),
            match.grid_x.tolist(),
            match.target.tolist(),
            strict=True,
        )
    )
    assert len(got) == len(match)  # no repeated positive
    assert got == _loop_reference(targets, anchors, STRIDE, GRID, 4.0)
    assert len(got) > count  # neighbours were added
