"""On-disk cache of exported image-encoder graphs for ``runtime: onnxruntime``.

Exporting an encoder costs seconds to minutes (vit_b peaks near 11 GB), so the
graph is exported once, checked against PyTorch, and kept in
``$PEROVSS_GRAPH_DIR`` (default ``~/.cache/perovss/graphs``). The file name is
the cache key: model id (checkpoint SHA-256 prefix, or seed for random
weights), input size, opset, onnxruntime and torch versions, and a fingerprint
of the source code that defines the graph, so a changed model, library or
definition never reuses a stale graph. Files are written atomically; a cached
file onnxruntime cannot load is exported again; a read-only cache directory
falls back to an in-memory graph.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
from pathlib import Path

import segment_anything.modeling.image_encoder as sam_image_encoder
from segment_anything.modeling import Sam

from perovss_ros.core.errors import CheckpointError, InvalidInputError
from perovss_ros.core.sam.encoder_graph import encoder_graph_error, export_encoder_onnx
from perovss_ros.core.sam.engines import OnnxRuntimeEncoder

log = logging.getLogger(__name__)

GRAPH_DIR_ENV = "PEROVSS_GRAPH_DIR"
MAX_GRAPH_BYTES = 2**31 - 1
"""A serialized ONNX graph is one protobuf, which cannot exceed 2 GB (vit_h's encoder is 2.5 GB)."""
CHECK_ATOL = 1e-4
"""Largest ONNX-vs-PyTorch difference a freshly exported graph may show before it is refused."""


def default_graph_dir() -> Path:
    """``$PEROVSS_GRAPH_DIR`` or ``~/.cache/perovss/graphs``."""
    env = os.environ.get(GRAPH_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "perovss" / "graphs"


def code_fingerprint() -> str:
    """12 hex digits of SHA-256 over the source files that define the encoder graphs."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for source in (here / "encoder_graph.py", here / "tiny_vit.py", Path(sam_image_encoder.__file__)):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:12]


def encoder_graph_name(model_id: str, img_size: int, opset: int, onnxruntime_version: str, torch_version: str,
                       fingerprint: str) -> str:
    """The cache file name of one encoder graph, e.g. ``sam-mobile-6dbb9052.1024x1024.opset17.ort1.31.1...onnx``."""
    torch_tag = torch_version.replace("+", "_")
    return (f"{model_id}.{img_size}x{img_size}.opset{opset}.ort{onnxruntime_version}.torch{torch_tag}"
            f".code{fingerprint}.onnx")


def _weight_bytes(sam: Sam) -> int:
    return sum(p.numel() * p.element_size() for p in sam.image_encoder.parameters())


def encoder_fits_one_graph(sam: Sam) -> bool:
    """True when the image encoder's weights fit one ONNX graph (a 2 GB protobuf; vit_h's do not)."""
    return _weight_bytes(sam) <= MAX_GRAPH_BYTES


def _export_checked(sam: Sam, opset: int) -> bytes:
    buffer = io.BytesIO()
    export_encoder_onnx(sam, buffer, opset)
    graph = buffer.getvalue()
    error = encoder_graph_error(sam, graph)
    if not error <= CHECK_ATOL:
        raise CheckpointError(f"the exported encoder graph differs from PyTorch by {error:.2e} (> {CHECK_ATOL:.0e})")
    return graph


def _store(path: Path, graph: bytes) -> bool:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(graph)
        os.replace(tmp, path)
        return True
    except OSError as exc:
        log.warning("cannot cache the encoder graph in %s (%s); it stays in memory", path.parent, exc)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        return False


def cached_encoder(sam: Sam, model_id: str, directory: str | os.PathLike | None = None, opset: int = 17,
                   threads: int = 0, providers: list[str] | None = None) -> OnnxRuntimeEncoder:
    """The onnxruntime encoder of ``sam`` (id ``model_id``), from the cache or exported, checked and cached.

    ``providers``: onnxruntime execution providers (default the CPU).

    Raises CheckpointError if a fresh export differs from PyTorch by more than
    ``CHECK_ATOL``, InvalidInputError for an encoder too large for one graph (vit_h).
    """
    import onnxruntime
    import torch

    if not encoder_fits_one_graph(sam):
        raise InvalidInputError(
            f"the encoder has {_weight_bytes(sam) / 1e9:.1f} GB of weights, more than one ONNX graph can hold; "
            f"use runtime 'torch' for this model"
        )
    name = encoder_graph_name(model_id, int(sam.image_encoder.img_size), opset, onnxruntime.__version__,
                              torch.__version__, code_fingerprint())
    path = (Path(directory).expanduser() if directory else default_graph_dir()) / name
    if path.is_file():
        try:
            return OnnxRuntimeEncoder(path, providers=providers, threads=threads)
        except CheckpointError as exc:
            log.warning("cached encoder graph %s is unusable (%s); exporting it again", path, exc)
            path.unlink(missing_ok=True)
    graph = _export_checked(sam, opset)
    return OnnxRuntimeEncoder(path if _store(path, graph) else graph, providers=providers, threads=threads)
