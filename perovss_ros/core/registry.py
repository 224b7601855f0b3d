"""String-keyed backend registry: ``backend`` name -> builder of (ImageEncoder, MaskDecoder)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from perovss_ros.core.config import PipelineConfig
from perovss_ros.core.errors import CheckpointError, InvalidInputError
from perovss_ros.core.protocols import ImageEncoder, MaskDecoder

Builder = Callable[[PipelineConfig], tuple[ImageEncoder, MaskDecoder]]


def _build_classic(config: PipelineConfig) -> tuple[ImageEncoder, MaskDecoder]:
    from perovss_ros.core.classic import build_classic_backend

    return build_classic_backend(config)


def _sam_module():
    try:
        return importlib.import_module("perovss_ros.core.sam")
    except ImportError as exc:
        raise CheckpointError(f"the sam backend cannot be imported ({exc}); use backend 'classic'") from exc


def _build_sam(config: PipelineConfig) -> tuple[ImageEncoder, MaskDecoder]:
    module = _sam_module()
    build = getattr(module, "build_sam_backend", None)
    if build is None:
        raise CheckpointError("perovss_ros.core.sam has no build_sam_backend yet; use backend 'classic'")
    return build(config)


BACKENDS: dict[str, Builder] = {"classic": _build_classic, "sam": _build_sam}


def register_backend(name: str, builder: Builder) -> None:
    """Add or replace a backend builder under ``name``."""
    BACKENDS[name] = builder


def sam_available(config: PipelineConfig) -> bool:
    """True when the sam backend can run ``config.model`` (tiny needs no file, others a checkpoint)."""
    try:
        module = importlib.import_module("perovss_ros.core.sam")
    except ImportError:
        return False
    check = getattr(module, "sam_checkpoint_available", None)
    if check is None or not hasattr(module, "build_sam_backend"):
        return False
    try:
        return bool(check(config))
    except Exception:  # a broken checkpoint check must not stop the classic fallback
        return False


def resolve_backend(config: PipelineConfig) -> str:
    """The backend name that will run: ``auto`` becomes sam when its checkpoint exists, else classic."""
    if config.backend != "auto":
        return config.backend
    return "sam" if sam_available(config) else "classic"


def build_backend(config: PipelineConfig) -> tuple[str, ImageEncoder, MaskDecoder]:
    """Resolve ``config.backend`` and build it -> (name, encoder, decoder)."""
    name = resolve_backend(config)
    builder = BACKENDS.get(name)
    if builder is None:
        raise InvalidInputError(f"unknown backend {name!r}; known: {', '.join(sorted(BACKENDS))}")
    encoder, decoder = builder(config)
    return name, encoder, decoder
