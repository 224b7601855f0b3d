"""Weights-free dense descriptors on a grid: colour and gradient statistics per cell.

Each cell of ``stride`` input pixels gets, pooled over the cell and over its 3×3 and 5×5
neighbourhoods (``LEVELS``): Lab colour mean (3), Lab standard deviation (3), a
magnitude-weighted histogram of unsigned gradient orientations (``ORIENTATIONS`` bins) and
the energy of three difference-of-Gaussian bands (``BANDS``, the pattern's coarseness). Values are centred and scaled so
that every group has a comparable magnitude and cosine similarity between L2-normalised
descriptors compares colour and texture rather than brightness alone.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.types import Features

ORIENTATIONS = 8
BANDS = 3
# Neighbourhood sizes (in cells) each descriptor pools over: the cell, 3×3 and 5×5 around it.
LEVELS = (1, 3, 5)
# Colour (Lab mean) is what tells a personal object from a same-shape look-alike; weight it up.
COLOUR_WEIGHT = 2.0
# Keeps channels that hardly vary in an image from being blown up to unit variance.
STD_FLOOR = 0.05
MODEL_ID = "classic-v1"


class ClassicEncoder:
    """ImageEncoder of the classic backend.

    ``input_size``: longest image side after resizing; ``stride``: cell size in input pixels.
    Output grid ``C×h×w`` float32 with ``C = len(LEVELS) * (6 + ORIENTATIONS + BANDS)``.
    """

    def __init__(self, input_size: int = 320, stride: int = 8) -> None:
        self.input_size = int(input_size)
        self.stride = int(stride)
        self.model_id = MODEL_ID

    @property
    def channels(self) -> int:
        """Descriptor length C."""
        return len(LEVELS) * (6 + ORIENTATIONS + BANDS)

    def encode(self, rgb: np.ndarray) -> Features:
        """Encode an ``H×W×3 uint8 RGB`` image into a ``C×h×w`` grid."""
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise InvalidInputError("classic encoder needs an H×W×3 uint8 RGB image")
        img_h, img_w = rgb.shape[:2]
        if img_h == 0 or img_w == 0:
            raise InvalidInputError("image is empty (0 pixels)")
        scale = self.input_size / max(img_h, img_w)
        res_h, res_w = max(1, round(img_h * scale)), max(1, round(img_w * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(rgb, (res_w, res_h), interpolation=interp)
        grid_h, grid_w = math.ceil(res_h / self.stride), math.ceil(res_w / self.stride)
        pad_h, pad_w = grid_h * self.stride - res_h, grid_w * self.stride - res_w
        if pad_h or pad_w:
            small = cv2.copyMakeBorder(small, 0, pad_h, 0, pad_w, cv2.BORDER_REFLECT_101
                                       if min(res_h, res_w) > 1 else cv2.BORDER_REPLICATE)
        grid = _descriptors(small, self.stride)
        return Features(
            grid=torch.from_numpy(grid),
            image_hw=(img_h, img_w),
            scale=scale,
            stride=float(self.stride),
            valid_hw=(grid_h, grid_w),
        )


def _channel_weights(num_levels: int) -> np.ndarray:
    """Per-channel weights: colour counts as much as the 14 texture channels together."""
    group = np.concatenate([
        np.full(3, COLOUR_WEIGHT), np.ones(3), np.full(ORIENTATIONS, 0.5), np.ones(BANDS),
    ]).astype(np.float32)
    return np.tile(group, num_levels)


def _pool(values: np.ndarray, stride: int) -> np.ndarray:
    """Mean over each ``stride×stride`` cell: ``H×W×n`` -> ``h×w×n`` (H, W multiples of stride)."""
    h, w, n = values.shape
    return values.reshape(h // stride, stride, w // stride, stride, n).mean(axis=(1, 3))


def _context(cells: np.ndarray, size: int) -> np.ndarray:
    """``size×size``-neighbourhood mean of per-cell values ``h×w×n`` (edges replicated)."""
    if size <= 1:
        return cells
    return cv2.blur(cells, (size, size), borderType=cv2.BORDER_REPLICATE).reshape(cells.shape)


def _descriptors(rgb: np.ndarray, stride: int, levels: tuple[int, ...] = LEVELS,
                 standardise: bool = True) -> np.ndarray:
    """``H×W×3 uint8`` (H, W multiples of stride) -> ``C×h×w`` float32 descriptors."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    # OpenCV's 8-bit Lab: L in 0..255, a/b offset by 128; centre them so cosine sees hue and lightness.
    lab = (lab - np.array([128.0, 128.0, 128.0], np.float32)) / np.array([128.0, 48.0, 48.0], np.float32)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.sqrt(gx * gx + gy * gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi) / np.pi * ORIENTATIONS
    lo = np.floor(angle).astype(np.int64) % ORIENTATIONS
    frac = (angle - np.floor(angle)).astype(np.float32)
    hist = np.zeros((*gray.shape, ORIENTATIONS), np.float32)
    rows, cols = np.indices(gray.shape)
    hist[rows, cols, lo] = mag * (1 - frac)
    hist[rows, cols, (lo + 1) % ORIENTATIONS] += mag * frac
    # Band energies (difference of Gaussians): how fine or coarse the surface pattern is.
    blur1 = cv2.GaussianBlur(gray, (0, 0), 1.0)
    blur2 = cv2.GaussianBlur(gray, (0, 0), 2.0)
    blur4 = cv2.GaussianBlur(gray, (0, 0), 4.0)
    bands = np.stack([np.abs(gray - blur1), np.abs(blur1 - blur2), np.abs(blur2 - blur4)], axis=2) * 4.0

    stats = np.concatenate([lab, lab * lab, hist, bands], axis=2)
    cells = _pool(stats, stride)
    parts = []
    for size in levels:
        pooled = _context(cells, size)
        mean = pooled[..., 0:3]
        std = np.sqrt(np.maximum(pooled[..., 3:6] - mean * mean, 0.0))
        parts += [mean, 2.0 * std, pooled[..., 6:]]
    desc = np.concatenate(parts, axis=2)
    if standardise:
        # Relative to this image's average cell, so that cosine similarity measures how a cell
        # stands out (object vs background) instead of the colour cast every cell shares.
        flat = desc.reshape(-1, desc.shape[2])
        desc = (desc - flat.mean(0)) / (flat.std(0) + STD_FLOOR)
    desc = desc * _channel_weights(len(levels))
    return np.ascontiguousarray(desc.transpose(2, 0, 1), dtype=np.float32)
