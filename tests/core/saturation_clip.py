"""A hand-made stand-in for a CLIP that knows one word: "square" is anything strongly coloured.

Region embedding (unit, 3-d): ``[s, 1 - s, 0]`` normalised, ``s`` the 75th percentile of the
HSV saturation (0..1) of the region's pixels, so a half-white striped red or blue square
(saturation ≈ 0.8 on its coloured stripes) points at "square" and the grey background
(saturation ≈ 0.1) at the null texts. Text embedding: a text holding the word ``square`` is
``[1, 0, 0]``, the null texts ("an object", "the background", ...) ``[0, 1, 0]``, any other
word ``[0, 0, 1]`` (no region resembles it). The RegionLabeller, prompt ensemble and
zero-shot rule on top of it are the project's own, unchanged.
"""

from __future__ import annotations

import cv2
import numpy as np

from perovss_ros.core.labels import RegionLabeller
from perovss_ros.core.labels.prompts import NULL_TEXTS

WORD = "square"


class SaturationClip:
    """TextEncoder + RegionEncoder of the module docstring (``logit_scale`` 100, like a trained CLIP)."""

    model_id = "saturation-clip"
    embed_dim = 3
    logit_scale = 100.0

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """``N×3 float32`` unit rows (see the module docstring)."""
        nulls = set(NULL_TEXTS)
        rows = [[1.0, 0.0, 0.0] if WORD in t else [0.0, 1.0, 0.0] if t in nulls else [0.0, 0.0, 1.0] for t in texts]
        return np.asarray(rows, np.float32).reshape(len(texts), 3)

    def encode_regions(self, rgb: np.ndarray, masks) -> np.ndarray:
        """``K×3 float32`` unit rows for ``K×H×W bool`` masks of ``H×W×3 uint8 RGB`` ``rgb``."""
        saturation = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[..., 1].astype(np.float32) / 255.0
        rows = []
        for mask in masks:
            s = float(np.percentile(saturation[np.asarray(mask, bool)], 75))
            rows.append(np.asarray([s, 1.0 - s, 0.0]) / np.hypot(s, 1.0 - s))
        return np.asarray(rows, np.float32).reshape(len(rows), 3)


def saturation_labeller(vocabulary: tuple[str, ...] = (WORD,)) -> RegionLabeller:
    """A RegionLabeller over SaturationClip with ``vocabulary``."""
    return RegionLabeller(SaturationClip(), vocabulary=vocabulary)
