"""perovss perception core (ROS-free): ``build_pipeline`` and the types it returns.

    from perovss_ros.core import build_pipeline
    pipe = build_pipeline({"backend": "classic"})      # concepts in memory; concept_store=DIR persists
    pipe.teach("my_mug", images=[rgb], masks=[mask])   # rgb H×W×3 uint8 RGB, mask H×W bool
    result = pipe.process(frame)                       # FrameResult
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

from perovss_ros.core.errors import (
    CheckpointError,
    ConceptStoreError,
    InvalidInputError,
    PerovssError,
    UnknownConceptError,
)

if TYPE_CHECKING:
    from perovss_ros.core.config import PipelineConfig
    from perovss_ros.core.pipeline import Pipeline

# The pipeline pulls in torch (seconds to import); light users such as the ROS client
# commands only need the errors, so these names load on first use (PEP 562).
_LAZY = {"Pipeline": "perovss_ros.core.pipeline", "PipelineConfig": "perovss_ros.core.config"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def build_pipeline(config: PipelineConfig | dict | str | os.PathLike | None = None) -> Pipeline:
    """Build the pipeline from a dict, a YAML path, a PipelineConfig or None (defaults).

    Resolves ``backend`` (auto: sam when a checkpoint for ``model`` exists, else classic), builds
    encoder and decoder, and loads the concepts of ``concept_store`` (skipping unreadable ones
    with a logged warning; ``pipeline.store_warnings`` lists them). Without ``concept_store``
    concepts live in memory only and nothing is written to disk.
    """
    from perovss_ros.core.config import PipelineConfig
    from perovss_ros.core.memory import ConceptMemory
    from perovss_ros.core.pipeline import Pipeline
    from perovss_ros.core.registry import build_backend

    cfg = PipelineConfig.coerce(config)
    name, encoder, decoder = build_backend(cfg)
    memory = ConceptMemory(cfg.concept_store) if cfg.concept_store else None
    pipeline = Pipeline(cfg, encoder, decoder, name, memory)
    pipeline.store_warnings = pipeline.load_store()
    return pipeline


__all__ = [
    "CheckpointError",
    "ConceptStoreError",
    "InvalidInputError",
    "PerovssError",
    "Pipeline",
    "PipelineConfig",
    "UnknownConceptError",
    "build_pipeline",
]
