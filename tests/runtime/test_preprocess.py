"""The numpy letterbox twin against the torch-side transforms, pixel for pixel."""

from __future__ import annotations

import numpy as np
import torch

from edgevision.ops import unletterbox_boxes as torch_unletterbox
from edgevision.runtime import letterbox
from edgevision.runtime.preprocess import to_input, unletterbox_boxes


def test_runtime_uses_the_one_letterbox_the_model_was_trained_with():
    """No twin to drift: the device path letterboxes with the training/validation code itself
    (a numpy copy here once missed the thin-strip fix that the training side got)."""
    import edgevision.runtime as runtime
    from edgevision.data import letterbox as shared
    from edgevision.runtime import session

    assert runtime.letterbox is shared.letterbox
    assert session.letterbox is shared.letterbox
    assert letterbox(np.zeros((20, 4000, 3), np.uint8), 64)[0].shape == (64, 64, 3)


def test_to_input_equals_the_predictor_conversion():
    images = [
        np.random.default_rng(i).integers(0, 256, (32, 48, 3), dtype=np.uint8) for i in range(2)
    ]
    want = (
        torch.stack([torch.from_numpy(i.transpose(2, 0, 1).copy()) for i in images])
        .float()
        .div_(255)
    )
    got = to_input(images)
    assert got.dtype == np.float32 and got.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(got, want.numpy())


def test_unletterbox_boxes_equals_ops_and_clips():
    boxes = np.random.default_rng(0).uniform(-20, 340, (50, 4)).astype(np.float32)
    got = unletterbox_boxes(boxes, 0.61, (0, 37), (420, 525))
    want = torch_unletterbox(torch.from_numpy(boxes), 0.61, (0, 37), (420, 525)).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
    assert got[:, 0::2].min() >= 0 and got[:, 0::2].max() <= 525 and got[:, 1::2].max() <= 420
