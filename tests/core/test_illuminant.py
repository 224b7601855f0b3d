"""Colour constancy (``core/illuminant.py``): a frame under another light brought back to the shots' light."""

from __future__ import annotations

import numpy as np

from perovss_ros.core.illuminant import HIGH, LOW, illuminant, light_change, relit, shots_light
from tests.core.images import background


def _lit(rgb: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    return np.clip(rgb.astype(np.float32) * np.array(gains, np.float32), 0, 255).astype(np.uint8)


def _scene() -> np.ndarray:
    img = background(240, 320, seed=3).copy()
    img[60:140, 80:180] = (200, 40, 40)
    img[150:200, 200:300] = (40, 160, 90)
    return img


def _chroma(rgb: np.ndarray) -> np.ndarray:
    """Per pixel ``(r, g) / (r + g + b)``: colour without brightness, as the colour cue sees it."""
    values = rgb.reshape(-1, 3).astype(np.float64)
    return values[:, :2] / np.maximum(values.sum(axis=1, keepdims=True), 1.0)


def test_a_coloured_light_is_estimated_as_its_gains():
    img = _scene()
    gains = np.array([1.0, 0.85, 0.65])
    ratio = illuminant(_lit(img, tuple(gains))) / illuminant(img)
    assert np.allclose(ratio / ratio.mean(), gains / gains.mean(), atol=0.02)
    assert abs(float(illuminant(img).mean()) - 1.0) < 1e-5
    assert np.allclose(shots_light([img, _lit(img, (0.7, 0.7, 0.7))]), illuminant(img), atol=0.01)


def test_a_warmer_frame_is_brought_back_to_the_taught_light():
    img = _scene()
    warm = _lit(img, (1.0, 0.85, 0.65))
    back = relit(warm, light_change(illuminant(warm), illuminant(img)))
    # Before: the warm frame's colours are far from the taught one's; brought back, close (it stays
    # darker: brightness is the colour cue's business, not this).
    before = np.abs(_chroma(warm) - _chroma(img)).mean()
    after = np.abs(_chroma(back) - _chroma(img)).mean()
    assert before > 0.03 and after < 0.15 * before


def test_a_small_difference_is_the_same_light():
    taught = np.array([1.0, 1.0, 1.0], np.float32)
    # What the estimate moves by when other things come into view: left alone, the frame untouched.
    same = np.array([1.0 + 0.8 * LOW, 1.0, 1.0 - 0.8 * LOW], np.float32)
    assert np.array_equal(light_change(same, taught), np.ones(3, np.float32))
    img = _scene()
    assert relit(img, light_change(same, taught)) is img
    # From HIGH on the whole ratio is taken out; between LOW and HIGH a part of it.
    far = np.array([1.0 + 1.5 * HIGH, 1.0, 1.0 - 1.5 * HIGH], np.float32)
    assert np.allclose(light_change(far, taught), far, atol=1e-6)
    between = np.array([1.0 + (LOW + HIGH) / 2, 1.0, 1.0 - (LOW + HIGH) / 2], np.float32)
    part = light_change(between, taught)
    assert 1.0 < part[0] < between[0] and between[2] < part[2] < 1.0


def test_clipped_and_dark_pixels_do_not_count():
    img = _scene()
    estimate = illuminant(img)
    # A blown-out patch (a window, a lamp) and a black one change nothing.
    blown = img.copy()
    blown[:80, :120] = (255, 255, 120)
    blown[200:, 250:] = 0
    assert np.allclose(illuminant(blown), estimate, atol=0.03)
    assert np.array_equal(illuminant(np.zeros((32, 32, 3), np.uint8)), np.ones(3, np.float32))
