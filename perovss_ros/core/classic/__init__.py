"""The weights-free ``classic`` backend: grid descriptors for matching, GrabCut for masks."""

from __future__ import annotations

from perovss_ros.core.classic.decoder import GrabCutDecoder
from perovss_ros.core.classic.encoder import ClassicEncoder


def build_classic_backend(config: object = None) -> tuple[ClassicEncoder, GrabCutDecoder]:
    """Encoder and decoder of the classic backend; of ``config`` (a PipelineConfig or None) only
    ``decode_threads`` applies (it has no weights or device)."""
    return ClassicEncoder(), GrabCutDecoder(threads=int(getattr(config, "decode_threads", 0)))


__all__ = ["ClassicEncoder", "GrabCutDecoder", "build_classic_backend"]
