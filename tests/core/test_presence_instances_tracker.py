"""Presence gate, instance resolution and box following, on hand-made values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perovss_ros.core import presence
from perovss_ros.core.instances import instance_image, resolve_instances
from perovss_ros.core.tracker import Tracker, expand_box, margin_px


def test_presence_score_is_top_k_mean_inside_region():
    m = torch.tensor([[0.9, 0.1, 0.5], [0.7, 0.3, 0.8]])
    assert presence.presence_score(m, top_k=2) == pytest.approx((0.9 + 0.8) / 2)
    region = torch.tensor([[False, True, True], [False, True, False]])
    assert presence.presence_score(m, region, top_k=2) == pytest.approx((0.5 + 0.3) / 2)
    assert presence.presence_score(m, torch.zeros(2, 3, dtype=torch.bool)) == -1.0


def test_batched_presence_scores_match_single_ones():
    maps = torch.rand(3, 5, 4, generator=torch.Generator().manual_seed(0))
    ks = [1, 3, 50]
    batched = presence.presence_scores(maps, ks)
    for i, k in enumerate(ks):
        assert batched[i].item() == pytest.approx(presence.presence_score(maps[i], top_k=k), abs=1e-6)


def test_top_k_scales_with_object_area():
    # half the smallest reference's cell count, never fewer than 3 cells
    assert [presence.top_k_for(cells) for cells in (1, 2, 6, 8, 20, 100)] == [3, 3, 3, 4, 10, 50]


def test_calibration_rule():
    # weakest object 0.9, strongest background 0.6: halfway is 0.75
    cal = presence.calibrate([0.9, 0.95], [0.5, 0.6])
    assert (cal.threshold, cal.fg_low, cal.bg_high) == pytest.approx((0.75, 0.9, 0.6))
    assert presence.calibrate([0.9, 0.95], [0.5, 0.6], margin=0.25).threshold == pytest.approx(0.675)
    # no background cells at all: the background counts as -1, halfway to 0.8 is -0.1
    assert presence.calibrate([0.8], []).threshold == pytest.approx(-0.1)
    # inseparable shots: threshold at the mean of weakest object and strongest background
    cal = presence.calibrate([0.7], [0.8])
    assert cal.threshold == pytest.approx(0.75)
    with pytest.raises(ValueError):
        presence.calibrate([], [0.1])


def test_each_pixel_has_one_owner_by_priority():
    masks = np.zeros((2, 3, 3), bool)
    masks[0, :, :2] = True
    masks[1, :, 1:] = True  # column 1 is claimed by both
    prio = np.zeros((2, 3, 3), np.float32)
    prio[0, 0, 1], prio[1, 0, 1] = 0.9, 0.2  # row 0: concept 0 wins
    prio[0, 1, 1], prio[1, 1, 1] = 0.1, 0.8  # row 1: concept 1 wins
    owner = resolve_instances(masks, prio)
    assert owner[:, 0].tolist() == [0, 0, 0]
    assert owner[:, 2].tolist() == [1, 1, 1]
    assert owner[0, 1] == 0 and owner[1, 1] == 1
    ids = instance_image(owner, [7, 9])
    assert ids.dtype == np.uint16
    assert ids[0].tolist() == [7, 7, 9]


def test_resolution_with_one_score_per_mask_and_no_mask():
    masks = np.zeros((2, 2, 2), bool)
    masks[:, 0, 0] = True
    owner = resolve_instances(masks, np.array([0.1, 0.5]))
    assert owner[0, 0] == 1
    assert owner[1, 1] == -1
    assert instance_image(owner, [3, 4])[1, 1] == 0


def test_box_expansion_scales_with_image_size():
    assert margin_px((480, 640)) == pytest.approx(10.0)
    assert margin_px((960, 1280)) == pytest.approx(20.0)
    assert expand_box((100, 100, 200, 150), (480, 640)) == (90, 90, 210, 160)
    assert expand_box((2, 3, 630, 475), (480, 640)) == (0, 0, 640, 480)


def test_a_track_coasts_on_its_last_motion_for_its_frames_then_ends():
    tracker = Tracker(coast_frames=2)
    mask = np.zeros((480, 640), bool)
    mask[100:150, 200:300] = True
    tracker.update("mug", mask)
    tracker.update("mug", np.roll(mask, 10, axis=1))  # moving right, 10 px a frame: box x 210..310
    tracker.update("mug", None)  # not found: the track moves on (x 220..320) and widens by one margin
    box, centre, predicted, missed, last = tracker.prompt("mug", (480, 640))
    assert missed == 1
    # The last mask found moves on with the prediction: two steps of 10 px since it was seen.
    assert np.array_equal(last, np.roll(mask, 30, axis=1))
    assert predicted == (230, 100, 330, 150)  # the next frame's prediction: one more step
    assert centre == (280, 125)
    assert box == (210, 80, 350, 170)  # two margins of 10 px: one missed frame
    tracker.update("mug", np.zeros((480, 640), bool))
    assert tracker.prompt("mug", (480, 640)) is not None  # second miss: still coasting
    tracker.update("mug", None)
    assert tracker.prompt("mug", (480, 640)) is None  # third miss: ended
    # Found again while coasting: a plain track again, its motion from where it was predicted.
    tracker.update("mug", mask)
    tracker.update("mug", None)
    tracker.update("mug", np.roll(mask, 20, axis=1))
    box, _, predicted, missed, last = tracker.prompt("mug", (480, 640))
    assert predicted == (240, 100, 340, 150) and box == (230, 90, 350, 160) and missed == 0
    assert np.array_equal(last, np.roll(mask, 40, axis=1))


def test_a_mask_moved_off_the_image_loses_what_leaves_it():
    from perovss_ros.core.tracker import shifted

    mask = np.zeros((6, 8), bool)
    mask[1:3, 5:8] = True
    moved = shifted(mask, 2.4, 1.0)  # rounded to 2 px right, 1 px down; two columns leave the image
    expected = np.zeros((6, 8), bool)
    expected[2:4, 7] = True
    assert np.array_equal(moved, expected)
    expected = np.zeros((6, 8), bool)
    expected[0:2, 0:3] = True
    assert np.array_equal(shifted(mask, -5.0, -1.0), expected)
    assert not shifted(mask, 0.0, 6.0).any() and not shifted(mask, -8.0, 0.0).any()


def test_a_track_leaving_the_image_ends_at_its_first_miss():
    tracker = Tracker(coast_frames=3)
    mask = np.zeros((480, 640), bool)
    mask[100:150, 560:640] = True
    tracker.update("mug", mask)
    tracker.update("mug", np.roll(mask, 60, axis=1) & (np.arange(640) >= 600)[None])  # cut by the border
    tracker.update("mug", None)  # predicted box mostly right of the image: the object left the view
    assert tracker.prompt("mug", (480, 640)) is None


def test_tracker_follows_seen_concepts_and_drops_lost_ones():
    tracker = Tracker()
    mask = np.zeros((480, 640), bool)
    mask[100:150, 200:300] = True
    tracker.update("mug", mask)
    box, centre, _, _, last = tracker.prompt("mug", (480, 640))
    assert box == (190, 90, 310, 160)
    assert np.array_equal(last, mask)  # not moving: where it was
    changed = mask.copy()
    tracker.update("cup", changed)
    changed[:] = False  # the caller reuses its array: the track keeps what it was given
    assert np.array_equal(tracker.prompt("cup", (480, 640)).last_mask, mask)
    tracker.seed("ball", (10, 10, 50, 50), (480, 640))
    assert tracker.prompt("ball", (480, 640)).last_mask is None  # a box alone: no mask to move
    assert centre == (250, 125)
    assert tracker.prompt("mug", (240, 320)) is None  # another image size: search globally
    tracker.update("mug", np.zeros((480, 640), bool))
    assert tracker.prompt("mug", (480, 640)) is None
    tracker.update("mug", mask)
    tracker.reset()
    assert tracker.tracked() == []
