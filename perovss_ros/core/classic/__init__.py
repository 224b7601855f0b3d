"""The weights-free ``classic`` backend: grid descriptors for matching, GrabCut for masks."""

from __future__ import annotations

from perovss_ros.core.classic.decoder import GrabCutDecoder
from perovss_ros.core.classic.encoder import ClassicEncoder
from perovss_ros.core.config import DECODE_SIZE


def build_classic_backend(config: object = None) -> tuple[ClassicEncoder, GrabCutDecoder]:
    """Encoder and decoder of the classic backend; of ``config`` (a PipelineConfig or None) only
    ``decode_threads`` and ``decode_size`` apply (it has no weights or device)."""
    return ClassicEncoder(), GrabCutDecoder(work_size=int(getattr(config, "decode_size", DECODE_SIZE)),
                                            threads=int(getattr(config, "decode_threads", 0)))


__all__ = ["ClassicEncoder", "GrabCutDecoder", "build_classic_backend"]
