"""Colour constancy for the region cues: the same object under a warmer or cooler light.

The colour cue (``core/appearance.py``) uses chromaticity, which a change of brightness leaves
alone but a change of the light's colour does not: a robot taught a mug under daylight and sent
to fetch it under a warm lamp sees every pixel's red/blue balance moved, the mug's colour drifts
past its limit and the mug is missed.

The light's colour is estimated per image with the shades-of-grey method (Finlayson and Trezzi,
2004: the Minkowski ``p``-norm of each channel, ``p`` = 6, between grey-world's mean and
white-patch's maximum), taken in each block of a ``BLOCKS`` grid; the per-channel median over the
blocks is the estimate, so a large coloured object that comes into view moves it less than it
moves a whole-image norm. A concept remembers the light of its shots (``CueCheck.light``); a frame
whose light differs from it is brought back to it before a candidate region is described
(``relit``). The estimate still moves a little when the objects in view change under the same
light (up to about 5-7 % per channel between the frames of some development scenes), so a
difference below ``LOW`` is left alone and one above ``HIGH`` is taken out whole
(``light_change``). The head and the decoder keep the camera's pixels.
"""

from __future__ import annotations

import numpy as np

# Minkowski norm of the shades-of-grey estimate (1: grey world; infinity: the brightest pixel).
NORM_P = 6.0
# Pixels at or above this level in any channel are clipped: their colour says nothing of the light.
CLIPPED = 250
# Pixels this dark are mostly noise.
DARK = 20
# Every STEP-th pixel in each direction is enough for three numbers.
STEP = 4
# Rows and columns of blocks the estimate is the median over; a block needs BLOCK_PIXELS usable pixels,
# the median MIN_BLOCKS blocks (else the whole image's norm is the estimate).
BLOCKS = (6, 8)
BLOCK_PIXELS = 16
MIN_BLOCKS = 4
# A frame's light differing from the shots' by less than LOW in every channel (a share of the
# channel's gain) is the same light; from HIGH on the whole difference is taken out, between the two
# a growing part of it.
LOW = 0.05
HIGH = 0.10


def _norms(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shades-of-grey norm of each group of a ``G×N×3`` float64 array of pixel values over its usable
    (neither clipped nor dark) pixels -> ``G×3`` norms (0 where none is usable) and ``G`` usable counts."""
    brightest = groups.max(axis=2)
    usable = (brightest < CLIPPED) & (brightest > DARK)
    counts = usable.sum(axis=1)
    sums = (groups ** NORM_P * usable[..., None]).sum(axis=1)
    return (sums / np.maximum(counts, 1)[:, None]) ** (1.0 / NORM_P), counts


def illuminant(rgb: np.ndarray) -> np.ndarray:
    """The light's colour in ``H×W×3 uint8 RGB`` ``rgb`` -> float32 (3,) per-channel gains with mean 1
    (1, 1, 1 for a neutral light): the median over ``BLOCKS`` of each block's estimate, clipped and
    very dark pixels left out. Too few usable blocks: the norm over the whole image's usable pixels;
    none usable (no light): (1, 1, 1)."""
    small = np.asarray(rgb)[::STEP, ::STEP].astype(np.float64)
    rows, cols = BLOCKS
    bh, bw = small.shape[0] // rows, small.shape[1] // cols
    if bh > 0 and bw > 0:
        blocks = small[:rows * bh, :cols * bw].reshape(rows, bh, cols, bw, 3).transpose(0, 2, 1, 3, 4)
        norms, counts = _norms(blocks.reshape(rows * cols, bh * bw, 3))
        norms = norms[(counts >= BLOCK_PIXELS) & np.all(norms > 0, axis=1)]
        if len(norms) >= MIN_BLOCKS:
            light = np.median(norms / norms.mean(axis=1, keepdims=True), axis=0)
            return (light / light.mean()).astype(np.float32)
    norms, counts = _norms(small.reshape(1, -1, 3))
    if counts[0] == 0 or not np.all(norms[0] > 0):
        return np.ones(3, np.float32)
    return (norms[0] / norms[0].mean()).astype(np.float32)


def shots_light(images: list[np.ndarray]) -> np.ndarray:
    """The light of a concept's shots (``H×W×3 uint8 RGB`` each): the mean of their ``illuminant`` -> float32 (3,)."""
    if not images:
        return np.ones(3, np.float32)
    light = np.mean([illuminant(image) for image in images], axis=0)
    return (light / light.mean()).astype(np.float32)


def light_change(frame_light: np.ndarray, taught_light: np.ndarray) -> np.ndarray:
    """Per-channel gains (float32 (3,)) that take a frame lit by ``frame_light`` to ``taught_light``'s
    colour: all ones while they differ by less than ``LOW`` in every channel, the whole ratio from
    ``HIGH`` on, a growing share of it between."""
    ratio = np.asarray(frame_light, np.float64) / np.maximum(np.asarray(taught_light, np.float64), 1e-6)
    ratio = ratio / ratio.mean()
    excess = float(np.abs(ratio - 1.0).max())
    share = float(np.clip((excess - LOW) / (HIGH - LOW), 0.0, 1.0))
    return (1.0 + share * (ratio - 1.0)).astype(np.float32)


def relit(rgb: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """``H×W×3 uint8 RGB`` with each channel divided by ``gains`` (``light_change``); ``rgb`` itself when
    they are all one."""
    gains = np.asarray(gains, np.float32)
    if np.all(gains == 1.0):
        return rgb
    return np.clip(np.asarray(rgb, np.float32) / gains, 0.0, 255.0).astype(np.uint8)
