"""Presence gate: is a taught concept in view at all? (PerSAM alone always returns a mask.)

Score: the presence score of a concept in a frame is the mean of the ``k`` highest cells of
its confidence map on the feature grid, with ``k = top_k_for(cells)``: ``AREA_FRACTION`` of
the smallest reference object's cell count (at least ``TOP_K``). A present object lights up
many cells; a look-alike that shares a colour or a texture lights up only a few, so averaging
over a fair part of the object's area separates them far better than the single maximum.

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
AREA_FRACTION = 0.5
MARGIN = 0.5


def top_k_for(reference_cells: int) -> int:
    """Cells averaged by the presence score of a concept whose smallest reference covers ``reference_cells``."""
    return max(TOP_K, round(AREA_FRACTION * reference_cells))


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


def presence_scores(maps: torch.Tensor, top_k: list[int]) -> torch.Tensor:
    """Presence scores of ``K×h×w`` maps, map i averaging its ``top_k[i]`` best cells -> ``K`` float32."""
    flat = maps.reshape(maps.shape[0], -1).float()
    ranked = flat.sort(dim=1, descending=True).values
    ks = torch.tensor([min(k, flat.shape[1]) for k in top_k])
    keep = torch.arange(flat.shape[1])[None] < ks[:, None]
    return (ranked * keep).sum(1) / ks


def calibrate(fg_scores: list[float], bg_scores: list[float], margin: float = MARGIN) -> Calibration:
    """Per-concept threshold from per-shot foreground and background presence scores (rule above)."""
    if not fg_scores:
        raise ValueError("calibration needs at least one shot")
    fg_low = min(fg_scores)
    bg_high = max(bg_scores) if bg_scores else -1.0
    separable = fg_low > bg_high
    threshold = bg_high + margin * (fg_low - bg_high) if separable else (fg_low + bg_high) / 2
    return Calibration(threshold=float(threshold), fg_low=float(fg_low), bg_high=float(bg_high))
