"""Instance resolution: every pixel gets at most one owner among the concepts' masks."""

from __future__ import annotations

import numpy as np


def resolve_instances(masks: np.ndarray, priority: np.ndarray) -> np.ndarray:
    """Owner index per pixel.

    ``masks`` ``K×H×W`` bool; ``priority`` ``K×H×W`` float (e.g. the confidence maps) or ``K``
    (one score per mask). Returns ``H×W`` int64: -1 where no mask covers the pixel, else the
    index of the covering mask with the highest priority (ties: lowest index).
    """
    if masks.ndim != 3:
        raise ValueError(f"masks must be K×H×W, got shape {masks.shape}")
    k = masks.shape[0]
    if k == 0:
        return np.full(masks.shape[1:], -1, np.int64)
    prio = np.asarray(priority, np.float32)
    if prio.ndim == 1:
        prio = np.broadcast_to(prio[:, None, None], masks.shape)
    scored = np.where(masks, prio, -np.inf)
    owner = scored.argmax(axis=0)
    owner[~masks.any(axis=0)] = -1
    return owner


def instance_image(owner: np.ndarray, instance_ids: list[int]) -> np.ndarray:
    """``H×W`` owner indices (-1 = none) -> ``H×W uint16`` instance image (0 = none)."""
    lut = np.zeros(len(instance_ids) + 1, np.uint16)
    lut[1:] = np.asarray(instance_ids, np.uint16)
    return lut[owner + 1]
