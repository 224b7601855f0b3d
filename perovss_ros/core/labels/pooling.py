"""Mask pooling of patch tokens (USE): each patch weighted by the share of it the mask covers."""

from __future__ import annotations

import numpy as np

from perovss_ros.core.errors import InvalidInputError


def axis_coverage(num_pixels: int, num_cells: int) -> np.ndarray:
    """``num_cells×num_pixels float32``: the share of each cell that each pixel covers.

    The pixels ``[0, num_pixels)`` are spread evenly over the cells (the image was
    resized uniformly onto the patch grid), so cell ``j`` spans
    ``[j·n/g, (j+1)·n/g)`` in pixel units; entry ``(j, i)`` is the overlap of pixel
    ``[i, i+1)`` with that span, divided by the span's length. Rows sum to 1.
    """
    if num_pixels <= 0 or num_cells <= 0:
        raise InvalidInputError(f"axis_coverage needs positive sizes, got {num_pixels} pixels, {num_cells} cells")
    step = num_pixels / num_cells
    starts = np.arange(num_cells, dtype=np.float64)[:, None] * step
    pixel = np.arange(num_pixels, dtype=np.float64)[None, :]
    overlap = np.clip(np.minimum(starts + step, pixel + 1.0) - np.maximum(starts, pixel), 0.0, None)
    return (overlap / step).astype(np.float32)


def coverage_weights(masks: np.ndarray, grid_hw: tuple[int, int]) -> np.ndarray:
    """``K×gh×gw float32`` share (0..1) of every grid cell that each of ``K×H×W bool`` masks covers."""
    if masks.ndim != 3:
        raise InvalidInputError(f"masks must be K×H×W, got shape {masks.shape}")
    rows = axis_coverage(masks.shape[1], grid_hw[0])
    cols = axis_coverage(masks.shape[2], grid_hw[1])
    return np.einsum("gh,khw,fw->kgf", rows, masks.astype(np.float32), cols, optimize=True)


def pool_tokens(tokens: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``K×D float32`` L2-normalised weighted means of ``gh×gw×D`` tokens under ``K×gh×gw`` weights.

    A mask that covers no cell at all has no embedding and is refused.
    """
    if tokens.ndim != 3 or weights.ndim != 3 or tokens.shape[:2] != weights.shape[1:]:
        raise InvalidInputError(f"tokens gh×gw×D {tokens.shape} and weights K×gh×gw {weights.shape} do not match")
    total = weights.sum(axis=(1, 2))
    if np.any(total <= 0):
        raise InvalidInputError(f"mask {int(np.argmin(total))} covers no pixel; every segment needs one")
    pooled = np.einsum("kgf,gfd->kd", weights, tokens, optimize=True) / total[:, None]
    return l2_normalise(pooled)


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows of ``N×D`` scaled to unit length (float32); zero rows stay zero."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
