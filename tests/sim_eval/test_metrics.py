"""Metrics on hand-computed masks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.eval.metrics import (
    boundary_f,
    boundary_iou,
    iou,
    iou_precision_recall,
    j_and_f,
    miou,
    presence_counts,
    presence_precision_recall,
    score_frame,
    summarize,
)


def box_mask(shape, x0, y0, x1, y1):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_iou_overlapping_squares():
    a = box_mask((4, 4), 0, 0, 2, 2)
    b = box_mask((4, 4), 1, 1, 3, 3)
    assert iou(a, b) == pytest.approx(1 / 7)  # 1 shared pixel, 4 + 4 - 1 in the union
    assert iou(a, a) == 1.0


def test_iou_empty_cases():
    empty = np.zeros((5, 5), bool)
    some = box_mask((5, 5), 1, 1, 3, 3)
    assert iou(empty, empty) == 1.0
    assert iou(empty, some) == 0.0  # missed object
    assert iou(some, empty) == 0.0  # false alarm


def test_iou_accepts_integer_masks_and_rejects_mismatch():
    assert iou(np.array([[0, 3], [0, 0]], np.uint16), np.array([[0, 1], [1, 0]], np.uint8)) == 0.5
    with pytest.raises(InvalidInputError):
        iou(np.zeros((3, 3), bool), np.zeros((3, 4), bool))
    with pytest.raises(InvalidInputError):
        iou(np.zeros((3, 3, 3), bool), np.zeros((3, 3, 3), bool))


def test_miou():
    a = box_mask((4, 4), 0, 0, 2, 2)
    b = box_mask((4, 4), 1, 1, 3, 3)
    assert miou([a, a], [b, a]) == pytest.approx((1 / 7 + 1) / 2)
    with pytest.raises(InvalidInputError):
        miou([], [])


def test_boundary_iou_shifted_square():
    # 50×50 image: diagonal 70.7, 2 % of it rounds to a band 1 pixel wide: the 36-pixel outline.
    gt = box_mask((50, 50), 20, 20, 30, 30)
    pred = box_mask((50, 50), 21, 20, 31, 30)
    # The outlines share their top and bottom rows except one pixel each: 2 × 9 = 18 pixels.
    assert boundary_iou(pred, gt) == pytest.approx(18 / (36 + 36 - 18))
    assert boundary_iou(gt, gt) == 1.0


def test_boundary_iou_empty_cases_and_image_edge():
    empty = np.zeros((50, 50), bool)
    full = np.ones((50, 50), bool)
    assert boundary_iou(empty, empty) == 1.0
    assert boundary_iou(empty, full) == 0.0
    assert boundary_iou(full, full) == 1.0
    # The image edge counts as contour: a full mask against one without its outer ring shares no band.
    inner = box_mask((50, 50), 1, 1, 49, 49)
    assert boundary_iou(full, inner) == 0.0


def test_boundary_f_hand_counted():
    # 60×60 image: tolerance ceil(0.008 × 84.9) = 1 pixel (a 3×3 cross).
    gt = box_mask((60, 60), 20, 20, 30, 30)  # outline 36 pixels
    pred = box_mask((60, 60), 20, 20, 40, 30)  # outline 56 pixels
    score = boundary_f(pred, gt)
    # pred outline near gt outline: top and bottom rows x = 20..30 (11 each) + left column y = 21..28 (8) = 30.
    assert score.precision == pytest.approx(30 / 56)
    # gt outline near pred outline: top and bottom rows (10 each) + left column (8) + two pixels of its
    # right column next to pred's top and bottom rows = 30.
    assert score.recall == pytest.approx(30 / 36)
    assert score.f == pytest.approx(60 / 92)


def test_boundary_f_tolerance_and_empty_cases():
    gt = box_mask((60, 60), 20, 20, 30, 30)
    assert boundary_f(box_mask((60, 60), 21, 20, 31, 30), gt).f == 1.0  # one pixel off: within tolerance
    assert boundary_f(box_mask((60, 60), 40, 40, 50, 50), gt).f == 0.0
    empty = np.zeros((60, 60), bool)
    assert boundary_f(empty, empty).f == 1.0
    assert boundary_f(empty, gt).f == 0.0 and boundary_f(empty, gt).recall == 0.0
    assert boundary_f(gt, empty).f == 0.0 and boundary_f(gt, empty).precision == 0.0


def test_j_and_f():
    gt = box_mask((60, 60), 20, 20, 30, 30)
    pred = box_mask((60, 60), 20, 20, 40, 30)
    score = j_and_f(pred, gt)
    assert score.j == pytest.approx(100 / 200)
    assert score.f == pytest.approx(60 / 92)
    assert score.jf == pytest.approx((0.5 + 60 / 92) / 2)


def test_presence_counts():
    predicted = [True, True, False, False, True]
    present = [True, False, True, False, True]
    counts = presence_counts(predicted, present)
    assert (counts.tp, counts.fp, counts.fn, counts.tn) == (2, 1, 1, 1)
    assert presence_precision_recall(predicted, present) == pytest.approx((2 / 3, 2 / 3))
    assert presence_precision_recall([False, False], [False, False]) == (1.0, 1.0)
    assert presence_precision_recall([True, False], [False, False]) == (0.0, 1.0)
    assert presence_precision_recall([False, False], [True, False]) == (1.0, 0.0)
    with pytest.raises(InvalidInputError):
        presence_counts([True], [True, False])


def test_iou_precision_recall():
    ious = [0.9, 0.0, 0.0, 1.0, 0.3]
    predicted = [True, True, False, False, True]
    present = [True, False, True, False, True]
    # Only frame 0 is a hit (frame 4 overlaps too little): 1 of 3 predictions, 1 of 3 appearances.
    assert iou_precision_recall(ious, predicted, present) == pytest.approx((1 / 3, 1 / 3))
    assert iou_precision_recall(ious, predicted, present, threshold=0.25) == pytest.approx((2 / 3, 2 / 3))


def test_score_frame_and_summarize():
    shape = (60, 60)
    gt = box_mask(shape, 20, 20, 30, 30)
    empty = np.zeros(shape, bool)
    scores = [
        score_frame(gt, gt),  # perfect
        score_frame(box_mask(shape, 20, 20, 40, 30), gt),  # IoU 0.5
        score_frame(empty, gt),  # missed
        score_frame(box_mask(shape, 0, 0, 5, 5), empty),  # false alarm
        score_frame(empty, empty),  # correctly absent
    ]
    assert [s.predicted for s in scores] == [True, True, False, True, False]
    assert [s.present for s in scores] == [True, True, True, False, False]
    summary = summarize(scores)
    assert summary["frames"] == 5 and summary["frames_present"] == 3
    assert summary["miou"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert summary["miou_all_frames"] == pytest.approx((1 + 0.5 + 0 + 0 + 1) / 5)
    assert summary["f"] == pytest.approx((1 + 60 / 92 + 0) / 3)
    assert summary["jf"] == pytest.approx((summary["miou"] + summary["f"]) / 2)
    assert summary["presence_precision"] == pytest.approx(2 / 3)
    assert summary["presence_recall"] == pytest.approx(2 / 3)
    assert summary["iou_precision"] == pytest.approx(2 / 3)  # IoU 0.5 counts as a hit
    assert summary["iou_recall"] == pytest.approx(2 / 3)
    never = summarize([score_frame(empty, empty)])
    assert math.isnan(never["miou"]) and never["presence_precision"] == 1.0
