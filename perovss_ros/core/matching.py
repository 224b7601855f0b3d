"""PerSAM's backend-independent steps: target vectors, confidence maps, points, attention bias.

Shapes: a feature grid is ``C×h×w`` float32; ``K`` counts prompt sets (concepts or shots).
All functions are pure tensor maths so that tests can check them against the formulas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from perovss_ros.core.types import Features


@dataclass
class TargetVectors:
    """Target vectors of one reference shot (all ``C`` float32).

    ``mean``: L2-normalised mean of the masked local features (PerSAM matching).
    ``max_mean``: L2-normalised (max + mean) / 2 (PerSAM-F and video variant).
    ``embedding``: un-normalised mean (target-semantic prompting).
    """

    mean: torch.Tensor
    max_mean: torch.Tensor
    embedding: torch.Tensor


def mask_to_frame(mask: np.ndarray, features: Features, out_hw: tuple[int, int]) -> torch.Tensor:
    """An ``H×W bool`` image mask in the encoder's frame, pooled to ``out_hw`` -> float32 coverage in [0, 1].

    The mask follows the encoder's geometry (resized by ``scale``, padded bottom/right to the
    input size), then each output cell gets the fraction of it the mask covers. ``out_hw`` is
    the feature grid (``mask_to_grid``) or a decoder's low-res logits size.
    """
    grid_h, grid_w = features.grid_hw
    in_h, in_w = round(grid_h * features.stride), round(grid_w * features.stride)
    res_h, res_w = _resized_hw(features)
    m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    m = F.interpolate(m, size=(res_h, res_w), mode="bilinear", align_corners=False)
    m = F.pad(m, (0, in_w - res_w, 0, in_h - res_h))
    return F.adaptive_avg_pool2d(m, tuple(out_hw))[0, 0]


def mask_to_grid(mask: np.ndarray, features: Features) -> torch.Tensor:
    """Fraction of each grid cell covered by an ``H×W bool`` image mask -> ``h×w`` float32 in [0, 1]."""
    return mask_to_frame(mask, features, features.grid_hw)


def _resized_hw(features: Features) -> tuple[int, int]:
    """Size of the image inside the encoder's (padded) input."""
    grid_h, grid_w = features.grid_hw
    in_h, in_w = round(grid_h * features.stride), round(grid_w * features.stride)
    img_h, img_w = features.image_hw
    return min(in_h, max(1, round(img_h * features.scale))), min(in_w, max(1, round(img_w * features.scale)))


def local_features(grid: torch.Tensor, cell_mask: torch.Tensor) -> torch.Tensor:
    """Masked local target features: ``C×h×w`` grid and ``h×w`` bool -> ``n×C`` float32."""
    return grid.permute(1, 2, 0)[cell_mask.bool()].float()


def target_vectors(local: torch.Tensor) -> TargetVectors:
    """Target vectors from ``n×C`` masked local features (n >= 1)."""
    if local.ndim != 2 or local.shape[0] == 0:
        raise ValueError(f"local features must be n×C with n >= 1, got shape {tuple(local.shape)}")
    mean = local.mean(0)
    max_mean = (local.max(0).values + mean) / 2
    return TargetVectors(
        mean=F.normalize(mean, dim=0), max_mean=F.normalize(max_mean, dim=0), embedding=mean.clone()
    )


def confidence_grid(targets: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of each target with each grid cell, all targets in one matmul.

    ``targets`` ``K×C`` (L2-normalised), ``grid`` ``C×h×w`` -> ``K×h×w`` float32 in [-1, 1].
    """
    c, h, w = grid.shape
    flat = F.normalize(grid.reshape(c, h * w).float(), dim=0)
    return (targets.float() @ flat).reshape(-1, h, w)


def max_over_groups(maps: torch.Tensor, groups: list[int]) -> torch.Tensor:
    """Few-shot merge: ``S×h×w`` per-shot maps, ``groups`` = shots per concept -> ``K×h×w`` pixel-wise max."""
    return torch.stack([part.max(0).values for part in torch.split(maps, groups)])


def upsample_to_image(maps: torch.Tensor, features: Features) -> torch.Tensor:
    """Grid maps ``K×h×w`` -> image-size maps ``K×H×W`` (bilinear, undoing pad and resize)."""
    grid_h, grid_w = features.grid_hw
    in_h, in_w = round(grid_h * features.stride), round(grid_w * features.stride)
    img_h, img_w = features.image_hw
    res_h, res_w = _resized_hw(features)
    up = F.interpolate(maps[None].float(), size=(in_h, in_w), mode="bilinear", align_corners=False)
    up = up[..., :res_h, :res_w]
    return F.interpolate(up, size=(img_h, img_w), mode="bilinear", align_corners=False)[0]


def select_points(maps: torch.Tensor, num_positive: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """PerSAM points from image-size maps ``K×H×W``.

    Returns positives ``K×num_positive×2`` (the top values, best first) and negatives ``K×2``
    (argmin), as float32 ``(x, y)`` pixels.
    """
    k, _, w = maps.shape
    flat = maps.reshape(k, -1)
    top = flat.topk(num_positive, dim=1).indices
    low = flat.argmin(dim=1)
    pos = torch.stack([top % w, top // w], dim=-1).numpy().astype(np.float32)
    neg = torch.stack([low % w, low // w], dim=-1).numpy().astype(np.float32)
    return pos, neg


def attention_bias(grid_map: torch.Tensor, valid_hw: tuple[int, int] | None = None) -> torch.Tensor:
    """Target-guided attention bias: sigmoid of the standardised ``h×w`` confidence map.

    Mean and std come from the valid (unpadded) cells; padded cells get the lowest value.
    """
    h, w = grid_map.shape
    vh, vw = valid_hw if valid_hw is not None else (h, w)
    valid = grid_map[:vh, :vw].float()
    std = valid.std() if valid.numel() > 1 else torch.tensor(0.0)
    std = std if float(std) > 1e-12 else torch.tensor(1.0)
    z = (grid_map.float() - valid.mean()) / std
    out = torch.full_like(z, float(z[:vh, :vw].min()))
    out[:vh, :vw] = z[:vh, :vw]
    return torch.sigmoid(out)


def tight_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """Tight XYXY box (exclusive end) of an ``H×W bool`` mask, None when empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(mask.any(axis=0))
    return float(xs[0]), float(ys[0]), float(xs[-1] + 1), float(ys[-1] + 1)
