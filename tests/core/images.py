"""Small hand-made test images: a textured background with striped coloured squares on it."""

from __future__ import annotations

import cv2
import numpy as np

RED = (210, 40, 40)
BLUE = (40, 60, 210)


def background(h: int = 120, w: int = 160, seed: int = 0) -> np.ndarray:
    """``H×W×3 uint8`` greyish background with smooth low-contrast texture."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, (h // 8 + 1, w // 8 + 1, 3)).astype(np.float32)
    smooth = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    img = 120 + 12 * smooth + rng.normal(0, 3, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def put_square(img: np.ndarray, x: int, y: int, size: int = 32, color: tuple[int, int, int] = RED,
               stripes: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Copy of ``img`` with a ``size``² square at (x, y) (striped with white when asked) and its mask."""
    out = img.copy()
    mask = np.zeros(img.shape[:2], bool)
    h, w = img.shape[:2]
    x1, y1 = min(w, x + size), min(h, y + size)
    mask[y:y1, x:x1] = True
    patch = np.zeros((y1 - y, x1 - x, 3), np.uint8) + np.array(color, np.uint8)
    if stripes:
        cols = (np.arange(x1 - x) // 4) % 2 == 0
        patch[:, cols] = 245
    out[y:y1, x:x1] = patch
    return out, mask


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks (both empty -> 1.0)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0
