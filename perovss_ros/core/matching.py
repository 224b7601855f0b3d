"""PerSAM's backend-independent steps: target vectors, confidence maps, points, attention bias.

Shapes: a feature grid is ``C×h×w`` float32; ``K`` counts prompt sets (concepts or shots).
All functions are pure tensor maths so that tests can check them against the formulas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from perovss_ros.core.types import Features

# PerSAM's reference-mask rule works on the mask as its data set stores it (PerSeg: the object is
# 128 in the red channel) after SAM's pixel normalisation of that channel (mean 123.675, std 58.395).
PERSEG_MASK_VALUE = 128
SAM_RED_MEAN, SAM_RED_STD = 123.675, 58.395


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


def persam_cells(mask: np.ndarray, features: Features) -> torch.Tensor:
    """The reference object's grid cells as the official PerSAM code picks them -> ``h×w`` bool.

    The ``H×W bool`` mask, stored as PerSeg stores it (``PERSEG_MASK_VALUE``), is resized like
    the image (Pillow bilinear, the encoder's resized size, rounded to uint8), normalised as SAM
    normalises the red channel, padded bottom/right with 0 to the encoder's input, sampled
    bilinearly at the cell centres, and a cell counts where the sample is > 0 (about 97 % of
    the resized mask at the sample point).
    """
    grid_h, grid_w = features.grid_hw
    in_h, in_w = round(grid_h * features.stride), round(grid_w * features.stride)
    res_h, res_w = (min(in_h, n) for n in _preprocess_hw(features))
    stored = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8) * np.uint8(PERSEG_MASK_VALUE))
    resized = np.asarray(stored.resize((res_w, res_h), Image.BILINEAR), dtype=np.float32)
    m = (torch.from_numpy(resized) - SAM_RED_MEAN) / SAM_RED_STD
    m = F.pad(m[None, None], (0, in_w - res_w, 0, in_h - res_h))
    return F.interpolate(m, size=(grid_h, grid_w), mode="bilinear", align_corners=False)[0, 0] > 0


def _preprocess_hw(features: Features) -> tuple[int, int]:
    """The resized size as segment_anything's ``ResizeLongestSide`` rounds it (halves up)."""
    img_h, img_w = features.image_hw
    return int(img_h * features.scale + 0.5), int(img_w * features.scale + 0.5)


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


def upsample_to_image(maps: torch.Tensor, features: Features, official: bool = False) -> torch.Tensor:
    """Grid maps ``K×h×w`` -> image-size maps ``K×H×W`` (bilinear, undoing pad and resize).

    ``official`` takes the official PerSAM code's steps: ×4 first, then SAM's
    ``postprocess_masks`` (to the padded input size, unpad, to image size); the chosen
    points then land where the official code puts them. Otherwise one bilinear step
    from the grid to the padded input size.
    """
    grid_h, grid_w = features.grid_hw
    in_h, in_w = round(grid_h * features.stride), round(grid_w * features.stride)
    img_h, img_w = features.image_hw
    res_h, res_w = _preprocess_hw(features) if official else _resized_hw(features)
    up = maps[None].float()
    if official:
        up = F.interpolate(up, scale_factor=4, mode="bilinear", align_corners=False)
    up = F.interpolate(up, size=(in_h, in_w), mode="bilinear", align_corners=False)
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


def attention_bias(grid_map: torch.Tensor, valid_hw: tuple[int, int] | None = None,
                   image_map: torch.Tensor | None = None) -> torch.Tensor:
    """Target-guided attention bias: sigmoid of the standardised ``h×w`` confidence map -> ``h×w``.

    Mean and std come from the valid (unpadded) cells; padded cells get the lowest value.
    With ``image_map`` (the ``H×W`` image-size map of ``upsample_to_image``) it is the official
    PerSAM computation instead: that map standardised over its pixels (unbiased std), resized
    whole onto the ``h×w`` grid (bilinear), sigmoid. The image then covers the whole grid, so on
    a non-square image the bias is stretched over the padded cells and off the image's own cells.
    """
    h, w = grid_map.shape
    if image_map is not None:
        image_map = image_map.float()
        spread = torch.std(image_map) if image_map.numel() > 1 else torch.tensor(0.0)
        z = (image_map - image_map.mean()) / (spread if float(spread) > 1e-6 else 1.0)  # a flat map: no NaN
        return torch.sigmoid(F.interpolate(z[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0])
    vh, vw = valid_hw if valid_hw is not None else (h, w)
    valid = grid_map[:vh, :vw].float()
    std = valid.std() if valid.numel() > 1 else torch.tensor(0.0)
    std = std if float(std) > 1e-12 else torch.tensor(1.0)
    z = (grid_map.float() - valid.mean()) / std
    out = torch.full_like(z, float(z[:vh, :vw].min()))
    out[:vh, :vw] = z[:vh, :vw]
    return torch.sigmoid(out)


def mask_iou(a: np.ndarray, b: np.ndarray, both_empty: float = 0.0) -> float:
    """IoU of two ``H×W bool`` masks; ``both_empty`` when neither has a pixel (no overlap to measure)."""
    union = int(np.count_nonzero(np.logical_or(a, b)))
    return int(np.count_nonzero(np.logical_and(a, b))) / union if union else both_empty


def tight_box(mask: np.ndarray, inclusive: bool = False) -> tuple[float, float, float, float] | None:
    """Tight XYXY box of an ``H×W bool`` mask, None when empty.

    The end is exclusive (last pixel + 1), or with ``inclusive`` the last pixel itself, as
    PerSAM's refinement-2 box and SAM's own ``batched_mask_to_box`` give it.
    """
    ys = np.flatnonzero(mask.any(axis=1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(mask.any(axis=0))
    end = 0 if inclusive else 1
    return float(xs[0]), float(ys[0]), float(xs[-1] + end), float(ys[-1] + end)
