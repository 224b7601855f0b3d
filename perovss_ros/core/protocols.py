"""Backend protocols. The pipeline talks to backends only through these."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from perovss_ros.core.types import DecodeOutput, Features, Guidance, Prompts


@runtime_checkable
class ImageEncoder(Protocol):
    """Turns an image into dense features (the one expensive call per frame)."""

    model_id: str
    """Identifies weights and architecture; concepts made with another id are refused."""

    def encode(self, rgb: np.ndarray) -> Features:
        """Encode an ``H×W×3 uint8 RGB`` image."""
        ...


@runtime_checkable
class MaskDecoder(Protocol):
    """Turns prompts into masks on cached features (cheap, batched over prompt sets)."""

    supports_guidance: bool
    """True when ``Guidance`` (PerSAM attention bias / target embedding) is used."""

    def decode(
        self,
        features: Features,
        rgb: np.ndarray,
        prompts: list[Prompts],
        guidance: list[Guidance | None] | None = None,
    ) -> DecodeOutput:
        """Decode K prompt sets against one image's features, batched.

        ``rgb`` is the encoded image (backends that segment pixels, such as
        GrabCut, need it; network decoders ignore it).
        """
        ...
