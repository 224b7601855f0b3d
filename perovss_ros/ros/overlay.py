"""Overlay image: instance masks blended in, boxes and labels drawn (rgb8)."""

from __future__ import annotations

import cv2
import numpy as np

from perovss_ros.core.types import FrameResult
from perovss_ros.eval.plots import segment_caption

_ALPHA = 0.5


def instance_colour(instance_id: int) -> tuple[int, int, int]:
    """A distinct, stable RGB colour per instance id (golden-ratio hue steps)."""
    hue = int((instance_id * 0.618033988749895 % 1.0) * 180)
    hsv = np.array([[[hue, 220, 255]]], dtype=np.uint8)
    r, g, b = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return int(r), int(g), int(b)


def draw_overlay(rgb: np.ndarray, result: FrameResult) -> np.ndarray:
    """Return a copy of ``rgb`` (H×W×3 uint8 RGB) with masks, boxes and ``label (category) score`` drawn
    (``my_mug (mug) 0.93`` for a personal segment with a category, ``ball 0.71`` for a generic one)."""
    out = rgb.copy()
    mask = result.instance_mask
    for seg in result.segments:
        colour = np.array(instance_colour(seg.instance_id), dtype=np.float32)
        sel = mask == seg.instance_id
        if sel.any():
            out[sel] = (out[sel] * (1 - _ALPHA) + colour * _ALPHA).astype(np.uint8)
    for seg in result.segments:
        colour = instance_colour(seg.instance_id)
        x0, y0, x1, y1 = (round(v) for v in seg.box_xyxy)
        cv2.rectangle(out, (x0, y0), (max(x1 - 1, x0), max(y1 - 1, y0)), colour, 2)
        text = f"{segment_caption(seg.label, seg.category, seg.personal)} {seg.score:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        ty = max(y0, th + base + 1)
        cv2.rectangle(out, (x0, ty - th - base - 1), (x0 + tw + 2, ty), colour, -1)
        cv2.putText(out, text, (x0 + 1, ty - base), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return out
