"""Encoder protocols of the open-vocabulary labeller: text and image regions into one embedding space."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class TextEncoder(Protocol):
    """Embeds free text into the shared (CLIP) space."""

    model_id: str
    """Identifies weights and architecture (embeddings of two ids are not comparable)."""

    embed_dim: int
    """``D``, the length of every embedding."""

    logit_scale: float
    """The model's learned temperature: zero-shot logits are ``logit_scale · cosine``."""

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """``N×D float32`` L2-normalised embeddings of ``N`` texts, one call, batched."""
        ...


@runtime_checkable
class RegionEncoder(Protocol):
    """Embeds image regions (segments given as masks) into the same space as the text."""

    model_id: str
    embed_dim: int

    def encode_regions(self, rgb: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """``K×D float32`` L2-normalised embeddings of ``K`` segments of one image.

        ``rgb`` is ``H×W×3 uint8 RGB``; ``masks`` is ``K×H×W bool`` at image
        resolution, each with at least one pixel. Batched over the K masks.
        """
        ...
