"""Segment Anything backend: registry of architectures, safe checkpoint loading, PerSAM-guided decoder.

Public entry points (used by the core registry): :func:`build_sam_backend` and
:func:`sam_checkpoint_available`.
"""

from perovss_ros.core.sam.backend import build_sam_backend, sam_checkpoint_available, sam_model_id
from perovss_ros.core.sam.decoder import SamMaskDecoder
from perovss_ros.core.sam.encoder import SamImageEncoder
from perovss_ros.core.sam.registry import SAM_MODELS, build_sam_model

__all__ = [
    "SAM_MODELS",
    "SamImageEncoder",
    "SamMaskDecoder",
    "build_sam_backend",
    "build_sam_model",
    "sam_checkpoint_available",
    "sam_model_id",
]
