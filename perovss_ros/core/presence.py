"""Presence gate: is a taught concept in view at all? (PerSAM alone always returns a mask.)

Score: the presence score of a concept in a frame is the mean of the ``TOP_K`` highest cells
of its confidence map on the feature grid (robust to one noisy cell, still high for a small
object).

Calibration rule (at teach time, per concept): for every reference shot, match the concept
(leave-one-out: the other shots' targets when there are several) against that shot's grid;
``fg`` = the presence score over the cells the reference mask covers (what "present" looks
like), ``bg`` = the presence score over the cells it does not touch (the best non-object
match in the same scene). With ``fg_low`` the lowest fg over shots and ``bg_high`` the highest bg,

    threshold = bg_high + MARGIN * (fg_low - bg_high)

i.e. a fixed fraction of the way from the best background match to the weakest object
match. When fg_low <= bg_high the shots cannot separate object from background and the
threshold sits at their mean (the concept will then be reported when it matches as well
as the reference object did).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

TOP_K = 3
MARGIN = 0.5


@dataclass
class Calibration:
    """Result of calibrating one concept: the threshold and the scores it came from."""

    threshold: float
    fg_low: float
    bg_high: float


def presence_score(grid_map: torch.Tensor, region: torch.Tensor | None = None, top_k: int = TOP_K) -> float:
    """Mean of the top ``top_k`` values of an ``h×w`` map (inside the ``h×w`` bool ``region`` if given)."""
    values = grid_map[region] if region is not None else grid_map.reshape(-1)
    if values.numel() == 0:
        return -1.0
    k = min(top_k, values.numel())
    return float(values.float().topk(k).values.mean())


def presence_scores(maps: torch.Tensor, top_k: int = TOP_K) -> torch.Tensor:
    """Batched presence scores: ``K×h×w`` maps -> ``K`` float32."""
    flat = maps.reshape(maps.shape[0], -1).float()
    k = min(top_k, flat.shape[1])
    return flat.topk(k, dim=1).values.mean(1)


def calibrate(fg_scores: list[float], bg_scores: list[float], margin: float = MARGIN) -> Calibration:
    """Per-concept threshold from per-shot foreground and background presence scores (rule above)."""
    if not fg_scores:
        raise ValueError("calibration needs at least one shot")
    fg_low = min(fg_scores)
    bg_high = max(bg_scores) if bg_scores else -1.0
    separable = fg_low > bg_high
    threshold = bg_high + margin * (fg_low - bg_high) if separable else (fg_low + bg_high) / 2
    return Calibration(threshold=float(threshold), fg_low=float(fg_low), bg_high=float(bg_high))
