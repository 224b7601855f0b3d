"""Masked crops: a segment cut out square with its background in one fill colour (the crop path and training)."""

from __future__ import annotations

import cv2
import numpy as np


def resize_rgb(rgb: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """``rgb`` (H×W×3 uint8) resized to ``hw`` (area filter when shrinking, bilinear when growing)."""
    if rgb.shape[:2] == tuple(hw):
        return rgb
    shrink = hw[0] * hw[1] < rgb.shape[0] * rgb.shape[1]
    return cv2.resize(rgb, (hw[1], hw[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def masked_crop(rgb: np.ndarray, mask: np.ndarray, out_hw: tuple[int, int], context: float,
                fill: np.ndarray) -> np.ndarray:
    """``out_h×out_w×3 uint8 RGB``: the square around ``mask``'s box, widened by ``context`` of its long side on
    every side, pixels outside the mask (and outside the image) set to ``fill`` (3 uint8), resized.

    ``rgb`` is ``H×W×3 uint8 RGB``, ``mask`` ``H×W bool`` with at least one pixel.
    """
    height, width = rgb.shape[:2]
    x0, y0, box_w, box_h = cv2.boundingRect(np.asarray(mask, bool).view(np.uint8))  # without listing its pixels
    x1, y1 = x0 + box_w, y0 + box_h
    side = max(1, round(max(x1 - x0, y1 - y0) * (1.0 + 2.0 * context)))
    left, top = (x0 + x1 - side) // 2, (y0 + y1 - side) // 2
    square = np.empty((side, side, 3), np.uint8)
    square[:] = fill
    sx0, sy0, sx1, sy1 = max(left, 0), max(top, 0), min(left + side, width), min(top + side, height)
    inside = mask[sy0:sy1, sx0:sx1, None]
    square[sy0 - top:sy1 - top, sx0 - left:sx1 - left] = np.where(inside, rgb[sy0:sy1, sx0:sx1], fill)
    return resize_rgb(square, out_hw)
