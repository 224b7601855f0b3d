"""PerSAM-F: learn two scale weights that mix SAM's three multimask outputs for one concept.

SAM stays frozen. On a reference shot the decoder gives three mask logits
``M1, M2, M3`` (computed once, outside this module); we fit ``w1, w2`` (init 1/3)
so that ``M = w1·M1 + w2·M2 + (1 − w1 − w2)·M3`` matches the reference mask under
Dice + sigmoid focal loss (α 0.25, γ 2), AdamW and a cosine schedule. Only two
scalars are learned on fixed logits, so 1000 iterations take about half a second
on one CPU core (plus ~1.5 s for torch.optim's first use in a process).

(PerSAM's reference script gives ``1 − w1 − w2`` to the first mask; here it goes
to the third, as REFERENCE.md writes the method; the fit is symmetric.)
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from perovss_ros.core.errors import InvalidInputError

FOCAL_ALPHA = 0.25
FOCAL_GAMMA = 2.0
ADAMW_EPS = 1e-4  # as PerSAM-F; the default 1e-8 makes the first steps needlessly jumpy on two scalars
FIT_MAX_PIXELS = 96 * 96


def dice_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Soft Dice loss ``1 − (2·Σpt + 1)/(Σp + Σt + 1)`` with ``p = sigmoid(logits)``; ``h×w`` each, scalar out."""
    prob = logits.sigmoid().flatten()
    target = target.flatten()
    return 1 - (2 * (prob * target).sum() + 1) / (prob.sum() + target.sum() + 1)


def sigmoid_focal_loss(logits: Tensor, target: Tensor, alpha: float = FOCAL_ALPHA,
                       gamma: float = FOCAL_GAMMA) -> Tensor:
    """Mean sigmoid focal loss (RetinaNet) of ``h×w`` logits against a ``h×w`` 0/1 float target."""
    prob = logits.sigmoid()
    # softplus(x) − x·t is binary cross-entropy with logits; torch's own BCE kernel runs
    # ~100× slower on small maps when its two worker threads compete with other load.
    ce = F.softplus(logits) - logits * target
    p_t = prob * target + (1 - prob) * (1 - target)
    alpha_t = alpha * target + (1 - alpha) * (1 - target)
    return (alpha_t * ce * (1 - p_t) ** gamma).mean()


def full_weights(w12: Tensor) -> Tensor:
    """``[w1, w2]`` → ``[w1, w2, 1 − w1 − w2]`` (the three weights sum to one)."""
    return torch.cat([w12, (1 - w12.sum()).reshape(1)])


def combine_logits(logits: Tensor, weights: Tensor) -> Tensor:
    """Weighted sum of the three masks: ``…×3×h×w`` logits, ``3`` weights → ``…×h×w``."""
    if logits.ndim < 3 or logits.shape[-3] != 3:
        raise InvalidInputError(f"logits must be …×3×h×w (three SAM masks), got {tuple(logits.shape)}")
    weights = torch.as_tensor(weights, dtype=logits.dtype, device=logits.device).reshape(-1)
    if weights.shape[0] != 3:
        raise InvalidInputError(f"weights must have 3 values, got {weights.shape[0]}")
    return (logits * weights[:, None, None]).sum(dim=-3)


def _shrink(logits: Tensor, target: Tensor, max_pixels: int) -> tuple[Tensor, Tensor]:
    """Downsample ``3×h×w`` logits and the ``h×w`` float mask so that ``h·w <= max_pixels``."""
    height, width = target.shape
    if height * width <= max_pixels:
        return logits, target
    factor = math.sqrt(max_pixels / (height * width))
    size = (max(1, int(height * factor)), max(1, int(width * factor)))
    with torch.inference_mode():
        small = F.interpolate(logits[None], size=size, mode="bilinear", align_corners=False, antialias=True)
        fraction = F.interpolate(target[None, None], size=size, mode="area")
    return small[0], fraction[0, 0]


def _loss_and_grad(w12: np.ndarray, base: np.ndarray, d1: np.ndarray, d2: np.ndarray, t: np.ndarray,
                   alpha_t: np.ndarray) -> tuple[float, np.ndarray]:
    """Dice + focal loss of ``x = M3 + w1·(M1 − M3) + w2·(M2 − M3)`` and its gradient in ``(w1, w2)``.

    All maps are flat float64 arrays. The gradient is written out by hand:
    ``dL/dx = dDice/dp·p(1−p) + α_t·[(p − t)(1 − p_t)^γ − γ·ce·(1 − p_t)^(γ−1)(2t − 1)p(1 − p)]/N``.
    """
    x = base + w12[0] * d1 + w12[1] * d2
    e = np.exp(-np.abs(x))
    p = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    ce = np.maximum(x, 0.0) - x * t + np.log1p(e)
    p_t = p * t + (1 - p) * (1 - t)
    dp = p * (1 - p)
    inter, total = float((p * t).sum()), float(p.sum() + t.sum())
    dice = 1 - (2 * inter + 1) / (total + 1)
    modulating = (1 - p_t) ** (FOCAL_GAMMA - 1)
    focal = float((alpha_t * ce * modulating * (1 - p_t)).mean())
    grad_dice = -(2 * t * (total + 1) - (2 * inter + 1)) / (total + 1) ** 2 * dp
    grad_focal = alpha_t * ((p - t) * modulating * (1 - p_t)
                            - FOCAL_GAMMA * ce * modulating * (2 * t - 1) * dp) / x.size
    g = grad_dice + grad_focal
    return dice + focal, np.array([(g * d1).sum(), (g * d2).sum()])


def fit_scale_weights(logits: Tensor, target: Tensor, iterations: int = 1000, lr: float = 1e-3,
                      max_pixels: int = FIT_MAX_PIXELS) -> Tensor:
    """Fit PerSAM-F's scale weights; returns ``[w1, w2, 1 − w1 − w2]`` (float32, CPU, no grad).

    ``logits`` is ``3×h×w`` (SAM's three multimask logits of the reference
    shot), ``target`` the ``h×w`` bool reference mask at the same size.
    The per-pixel loss and its gradient are computed in numpy (single-threaded:
    torch's small-tensor kernels stall for milliseconds when their worker threads
    compete with the frame loop); the update is torch's AdamW with a cosine
    schedule. Maps larger than ``max_pixels`` are first shrunk (logits bilinear,
    mask by area, kept as the covered fraction): two scalars do not need every
    pixel, and this bounds the fit to about a second on one CPU core.
    Works inside ``torch.inference_mode``.
    """
    if logits.ndim != 3 or logits.shape[0] != 3:
        raise InvalidInputError(f"logits must be 3×h×w, got {tuple(logits.shape)}")
    if tuple(target.shape) != tuple(logits.shape[1:]):
        raise InvalidInputError(
            f"target mask {tuple(target.shape)} must match the logits' size {tuple(logits.shape[1:])}"
        )
    if iterations < 1 or not lr > 0:
        raise InvalidInputError(f"iterations must be >= 1 and lr > 0, got {iterations}, {lr}")
    logits, soft_target = _shrink(logits.detach().float().cpu(), target.detach().float().cpu(), max_pixels)
    maps = logits.numpy().reshape(3, -1).astype(np.float64)
    t = soft_target.numpy().reshape(-1).astype(np.float64)
    base, d1, d2 = maps[2], maps[0] - maps[2], maps[1] - maps[2]
    alpha_t = FOCAL_ALPHA * t + (1 - FOCAL_ALPHA) * (1 - t)
    with torch.inference_mode(False):
        w12 = torch.full((2,), 1 / 3, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.AdamW([w12], lr=lr, eps=ADAMW_EPS)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=iterations)
        for _ in range(iterations):
            _, grad = _loss_and_grad(w12.detach().numpy(), base, d1, d2, t, alpha_t)
            w12.grad = torch.from_numpy(grad)
            optimizer.step()
            schedule.step()
        return full_weights(w12.detach()).float()


def mixture_loss(logits: Tensor, target: Tensor, weights: Tensor) -> float:
    """Dice + focal loss of ``combine_logits(logits, weights)`` against ``target`` (for reports and tests)."""
    with torch.no_grad():
        mixed = combine_logits(logits.float(), weights)
        goal = target.float().to(mixed.device)
        return float(dice_loss(mixed, goal) + sigmoid_focal_loss(mixed, goal))
