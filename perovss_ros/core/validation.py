"""Checks of public inputs (images, masks, boxes); each failure is an InvalidInputError saying what to fix."""

from __future__ import annotations

import math

import numpy as np

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.types import BoxXYXY


def check_image(rgb: object, max_pixels: int | None = None, what: str = "image") -> np.ndarray:
    """Return ``rgb`` as a C-contiguous ``H×W×3 uint8`` array, or raise InvalidInputError.

    ``max_pixels`` None means no size limit (the caller bounds the size elsewhere).
    """
    if not isinstance(rgb, np.ndarray):
        raise InvalidInputError(f"{what} must be a numpy array (H×W×3 uint8 RGB), got {type(rgb).__name__}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InvalidInputError(f"{what} must be H×W×3 (RGB), got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise InvalidInputError(f"{what} must be uint8, got {rgb.dtype}")
    h, w = rgb.shape[:2]
    if h == 0 or w == 0:
        raise InvalidInputError(f"{what} is empty ({h}×{w})")
    if max_pixels is not None and h * w > max_pixels:
        raise InvalidInputError(f"{what} has {h}×{w} px, over max_image_pixels={max_pixels}; downscale it")
    return np.ascontiguousarray(rgb)


def check_mask(mask: object, image_hw: tuple[int, int], what: str = "mask") -> np.ndarray:
    """Return ``mask`` as ``H×W bool`` matching ``image_hw``; bool or integer 0/1/255 masks are accepted."""
    if not isinstance(mask, np.ndarray):
        raise InvalidInputError(f"{what} must be a numpy H×W bool array, got {type(mask).__name__}")
    if mask.ndim != 2:
        raise InvalidInputError(f"{what} must be H×W, got shape {mask.shape}")
    if mask.dtype != bool and not np.issubdtype(mask.dtype, np.integer):
        raise InvalidInputError(f"{what} must be bool (or integer 0/nonzero), got {mask.dtype}")
    if tuple(mask.shape) != tuple(image_hw):
        raise InvalidInputError(
            f"{what} is {mask.shape[0]}×{mask.shape[1]} but its image is {image_hw[0]}×{image_hw[1]}"
        )
    out = mask.astype(bool) if mask.dtype != bool else np.ascontiguousarray(mask)
    if not out.any():
        raise InvalidInputError(f"{what} is empty: mark the object's pixels")
    return out


def check_box(box: object, image_hw: tuple[int, int], what: str = "box") -> BoxXYXY:
    """Return ``box`` as an XYXY float tuple clipped to the image, or raise if it is malformed or empty."""
    try:
        values = [float(v) for v in box]  # type: ignore[union-attr]
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{what} must be four numbers (x0, y0, x1, y1), got {box!r}") from exc
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InvalidInputError(f"{what} must be four finite numbers (x0, y0, x1, y1), got {box!r}")
    h, w = image_hw
    x0, y0, x1, y1 = values
    cx0, cy0, cx1, cy1 = max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1)
    if cx1 - cx0 < 2 or cy1 - cy0 < 2:
        raise InvalidInputError(f"{what} {tuple(values)} is empty or outside the {w}×{h} image (XYXY pixels)")
    return cx0, cy0, cx1, cy1
