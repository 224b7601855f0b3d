"""Masks carried along dense optical flow (``core/region_flow.py``) on hand-made moving squares."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from perovss_ros.core.region_flow import RegionFlow, carry_masks
from tests.core.images import BLUE, RED, background, iou


def speckled_square(img: np.ndarray, x: int, y: int, size: int, colour: tuple[int, int, int],
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Copy of ``img`` with a ``size``² square of ``colour`` under a fixed random speckle (texture that moves
    with it and, unlike stripes, does not repeat) at (x, y), and its mask."""
    out = img.copy()
    speckle = np.random.default_rng(seed).normal(0, 40, (size, size, 1))
    out[y:y + size, x:x + size] = np.clip(np.asarray(colour, np.float64) + speckle, 0, 255).astype(np.uint8)
    mask = np.zeros(img.shape[:2], bool)
    mask[y:y + size, x:x + size] = True
    return out, mask


def test_a_mask_follows_its_square_across_frames() -> None:
    flow = RegionFlow()
    img, mask = speckled_square(background(seed=4), 30, 40, 32, RED)
    assert flow.advance(img) is None                       # nothing to compare the first frame with
    for step in range(1, 5):                               # four follow frames, as with label_every 5
        img, truth = speckled_square(background(seed=4), 30 + 4 * step, 40 + 2 * step, 32, RED)
        moved = flow.advance(img)
        assert moved is not None and moved.shape[2] == 2
        mask = carry_masks([mask], moved)[0]
        assert iou(mask, truth) >= 0.8, f"step {step}: IoU {iou(mask, truth):.2f}"


def test_each_mask_moves_with_its_own_object() -> None:
    # Two squares going opposite ways: one flow field, each mask carried by the motion under it.
    flow = RegionFlow()
    start = background(seed=5)
    img, red = speckled_square(start, 20, 30, 32, RED, seed=1)
    img, blue = speckled_square(img, 100, 60, 32, BLUE, seed=2)
    flow.advance(img)
    img, red_now = speckled_square(start, 24, 30, 32, RED, seed=1)
    img, blue_now = speckled_square(img, 96, 60, 32, BLUE, seed=2)
    red_moved, blue_moved = carry_masks([red, blue], flow.advance(img))
    assert iou(red_moved, red_now) >= 0.8 and iou(blue_moved, blue_now) >= 0.8
    assert iou(red_moved, red_now) > iou(red, red_now)     # moving beat standing still


def test_a_turning_object_is_turned() -> None:
    # A speckled bar turned by 15° about its centre: a shift alone could not follow it.
    img = background(seed=6)
    bar, mask = speckled_square(img, 50, 40, 60, RED, seed=3)
    keep = np.zeros_like(mask)
    keep[60:80, 50:110] = True                             # a 60×20 bar out of the speckled square
    first = np.where(keep[..., None], bar, img)
    turn = cv2.getRotationMatrix2D((80.0, 70.0), 15.0, 1.0)
    second = np.where((cv2.warpAffine(keep.astype(np.uint8), turn, (160, 120), flags=cv2.INTER_NEAREST) > 0)[..., None],
                      cv2.warpAffine(bar, turn, (160, 120)), img)
    truth = cv2.warpAffine(keep.astype(np.uint8), turn, (160, 120), flags=cv2.INTER_NEAREST) > 0
    flow = RegionFlow()
    flow.advance(first)
    carried = carry_masks([keep], flow.advance(second))[0]
    assert iou(carried, truth) >= 0.8 and iou(keep, truth) < 0.7


def test_a_new_image_size_or_a_reset_starts_again() -> None:
    flow = RegionFlow()
    img, _ = speckled_square(background(seed=6), 30, 40, 32, RED)
    flow.advance(img)
    assert flow.advance(cv2.resize(img, (320, 240))) is None
    assert flow.advance(cv2.resize(img, (320, 240))) is not None
    flow.reset()
    assert flow.advance(img) is None


def test_flow_is_in_image_pixels_whatever_the_work_size() -> None:
    # At 640×480 the flow runs at 320 px: a 10 px shift in the image must still read as about 10 px.
    big = cv2.resize(background(seed=7), (640, 480), interpolation=cv2.INTER_CUBIC)
    img, before = speckled_square(big, 200, 200, 96, RED)
    flow = RegionFlow()
    flow.advance(img)
    img, truth = speckled_square(big, 210, 200, 96, RED)
    moved = flow.advance(img)
    assert moved.shape[:2] == (240, 320)
    inside = cv2.resize(before.astype(np.uint8), (320, 240), interpolation=cv2.INTER_NEAREST) > 0
    assert abs(float(np.median(moved[inside][:, 0])) - 10.0) < 2.0
    assert iou(carry_masks([before], moved)[0], truth) >= 0.85


def test_a_mask_moved_in_its_window_is_the_mask_moved_whole() -> None:
    from perovss_ros.core.region_flow import _warp_window

    rng = np.random.default_rng(0)
    h, w = 120, 160
    for trial in range(20):
        mask = np.zeros((h, w), np.uint8)
        x, y = int(rng.integers(-10, w - 20)), int(rng.integers(-10, h - 20))  # some cut by the image border
        cv2.ellipse(mask, (x + 15, y + 10), (18, 9), float(rng.uniform(0, 180)), 0, 360, 1, -1)
        angle, scale = rng.uniform(-20, 20), rng.uniform(0.8, 1.2)
        motion = cv2.getRotationMatrix2D((float(rng.uniform(0, w)), float(rng.uniform(0, h))), angle, scale)
        motion[:, 2] += rng.uniform(-30, 30, 2)
        whole = cv2.warpAffine(mask, motion, (w, h), flags=cv2.INTER_NEAREST) > 0
        ys, xs = np.nonzero(mask)
        if len(ys) == 0:
            continue
        y0, x0 = max(0, ys.min() - 3), max(0, xs.min() - 3)
        window = mask[y0:ys.max() + 4, x0:xs.max() + 4]
        moved = _warp_window(window, (x0, y0), motion, (h, w))
        # The same warp up to nearest-pixel rounding at a few edge pixels.
        assert (moved != whole).sum() <= max(3, 0.01 * whole.sum()), f"trial {trial}"
    far = np.array([[1.0, 0.0, 500.0], [0.0, 1.0, 0.0]])
    assert not _warp_window(np.ones((5, 5), np.uint8), (10, 10), far, (h, w)).any()


def test_a_flow_started_in_the_background_is_the_flow_advanced_in_place() -> None:
    frames = [speckled_square(background(seed=6), 20 + 5 * i, 30 + 3 * i, 32, RED)[0] for i in range(4)]
    in_place, started = RegionFlow(), RegionFlow()
    for i, frame in enumerate(frames):
        expected = in_place.advance(frame)
        if i == 2:  # a frame advanced without start, between started ones
            got = started.advance(frame)
        else:
            started.start(frame)
            got = started.advance(frame)
        assert (expected is None) == (got is None)
        if expected is not None:
            assert np.array_equal(expected, got)
    # A started frame never collected counts as seen: the next frame's flow is from it.
    started.start(frames[0])
    after_skip = started.advance(frames[1])
    fresh = RegionFlow()
    fresh.advance(frames[0])
    assert np.array_equal(after_skip, fresh.advance(frames[1]))
    started.start(frames[2])
    started.reset()  # waits for the started frame, then forgets it
    assert started.advance(frames[3]) is None


def test_a_started_frame_that_fails_is_reported_only_to_who_asks_for_it() -> None:
    flow = RegionFlow()
    flow.advance(background(seed=7))
    bad = np.zeros((4, 4), np.uint8)  # not H×W×3: the worker's colour conversion fails
    flow.start(bad)
    with pytest.raises(cv2.error):
        flow.advance(bad)
    flow.start(bad)
    flow.reset()  # nobody asked for that flow: no error here
    assert flow.advance(background(seed=7)) is None
