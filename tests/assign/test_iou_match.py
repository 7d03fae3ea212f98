"""SSD's IoU matching on hand-made IoU matrices and boxes, and its rules on random matrices."""

from __future__ import annotations

import torch

from edgevision.assign.iou_match import match_boxes, match_priors


def test_a_gt_whose_best_iou_is_below_the_threshold_still_gets_its_best_prior():
    iou = torch.tensor([[0.1, 0.3, 0.2, 0.0]])
    assert match_priors(iou).tolist() == [-1, 0, -1, -1]


def test_priors_at_or_above_the_threshold_take_their_best_gt_and_the_rest_are_background():
    iou = torch.tensor(
        [
            [0.5, 0.7, 0.49, 0.0, 0.6],
            [0.2, 0.8, 0.0, 0.1, 0.65],
        ]
    )
    # Prior 0: 0.5 reaches the threshold (>=). Prior 1: both gts qualify, gt 1 is higher (and it
    # is gt 1's best prior). Prior 2: 0.49 is background. Prior 4: gt 1 wins 0.65 against 0.6.
    # gt 0's best prior is 1 (0.7), taken by gt 1 (0.8): gt 0 takes its next best, prior 4.
    assert match_priors(iou).tolist() == [0, 1, -1, -1, 0]


def test_two_gts_competing_for_one_prior_the_better_keeps_it_the_other_takes_its_next_best():
    iou = torch.tensor(
        [
            [0.6, 0.2, 0.1],  # wants prior 0 with 0.6
            [0.9, 0.1, 0.3],  # wants prior 0 with 0.9: keeps it
        ]
    )
    # Prior 0 goes to gt 1 (0.9 > 0.6); gt 0 takes its next best prior, 1 (0.2), not 2 (0.1).
    assert match_priors(iou).tolist() == [1, 0, -1]
    # The same with the gts listed the other way round: the rule does not depend on the order.
    assert match_priors(iou.flip(0)).tolist() == [0, 1, -1]


def test_no_gts_and_degenerate_gts_leave_every_prior_background():
    assert match_priors(torch.zeros(0, 5)).tolist() == [-1] * 5
    # A gt overlapping no prior at all forces nothing (argmax would pick prior 0 at IoU 0).
    assert match_priors(torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.7, 0.0]])).tolist() == [-1, 1, -1]


def test_match_boxes_on_hand_computed_ious():
    priors = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],
            [10.0, 0.0, 20.0, 10.0],
            [0.0, 10.0, 10.0, 20.0],
            [5.0, 0.0, 15.0, 10.0],
        ]
    )
    # gt (0, 0, 10, 5): IoU 0.5 with prior 0 (50 / 100), 1/7 with prior 3 (25 / 175).
    # gt (12, 12, 20, 20): overlaps no prior -> forces nothing.
    gts = torch.tensor([[0.0, 0.0, 10.0, 5.0], [12.0, 12.0, 20.0, 20.0]])
    assert match_boxes(gts, priors).tolist() == [0, -1, -1, -1]
    assert match_boxes(gts, priors, threshold=0.1).tolist() == [0, -1, -1, 0]


def test_rules_hold_on_random_matrices():
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        num_gts = int(torch.randint(1, 6, (1,), generator=generator))
        # Every IoU positive, so each gt always finds a free prior; half of them reach 0.5.
        iou = torch.rand(num_gts, 12, generator=generator) * 0.99 + 0.01
        matched = match_priors(iou)
        forced = set()
        for gt in range(num_gts):
            owned = (matched == gt).nonzero().flatten().tolist()
            assert owned, "every gt owns at least one prior"
            forced |= {p for p in owned if iou[gt, p] < 0.5 or iou[gt, p] < iou[:, p].max()}
        best_iou, best_gt = iou.max(dim=0)
        for prior in set(range(12)) - forced:
            want = int(best_gt[prior]) if best_iou[prior] >= 0.5 else -1
            assert int(matched[prior]) == want
        assert len(forced) <= num_gts  # only the forced rule may break the threshold rule
