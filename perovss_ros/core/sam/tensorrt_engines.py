"""TensorRT engines of a SAM's encoder and guided decoder: export, build through TensorRT's Python API, cache.

:func:`engine_bytes` is what the backend and ``perovss engines build`` call: it
exports the part's ONNX graph (kept beside the engines, so the key's SHA-256 is
cheap on later starts), forms the :class:`~perovss_ros.core.sam.engine_cache.EngineKey`
(ONNX SHA-256, TensorRT version, GPU compute capability, precision, shapes), and
returns the cached engine, or builds and stores it when the slot is empty. A
stale, foreign or corrupt engine is a CheckpointError naming the rebuild command.

The build (:func:`build_engine`) parses the ONNX graph, sets fp16 when asked,
adds one optimisation profile (:mod:`perovss_ros.core.sam.shape_profiles`, the
same min/opt/max as ``perovss export`` prints) and reuses a timing cache file per
TensorRT version and GPU, so rebuilding after a change costs seconds, not minutes.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from pathlib import Path

import segment_anything.modeling.image_encoder as sam_image_encoder
import segment_anything.modeling.mask_decoder as sam_mask_decoder
import torch
from segment_anything.modeling import Sam

from perovss_ros.core.errors import CheckpointError, InvalidInputError
from perovss_ros.core.sam.decoder_graph import export_decoder_onnx
from perovss_ros.core.sam.encoder_graph import export_encoder_onnx
from perovss_ros.core.sam.engine_cache import (
    GRAPH_SUFFIX,
    PARTS,
    PRECISIONS,
    EngineKey,
    default_engine_dir,
    load_engine,
    timing_cache_path,
    write_engine,
)
from perovss_ros.core.sam.graph_cache import MAX_GRAPH_BYTES
from perovss_ros.core.sam.shape_profiles import ShapeProfile, decoder_profile, encoder_profile

log = logging.getLogger(__name__)

WORKSPACE_BYTES = 2 << 30
"""Builder scratch memory (2 GiB: enough for vit_b's attention; a Jetson Orin Nano has 8 GB in all)."""


def tensorrt_problem() -> str | None:
    """Why TensorRT engines cannot run here (not importable, no CUDA device), or None when they can."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "TensorRT is not installed (the tensorrt wheel, or JetPack's python3-libnvinfer)"
    except Exception as exc:  # a broken install (missing libnvinfer) is the finding itself
        return f"TensorRT does not load: {exc}"
    if not torch.cuda.is_available():
        return "TensorRT needs a CUDA device and torch sees none"
    return None


def require_tensorrt():
    """The ``tensorrt`` module; CheckpointError saying what is missing when it cannot run here."""
    problem = tensorrt_problem()
    if problem is not None:
        raise CheckpointError(f"{problem}; use runtime 'torch' or 'onnxruntime'")
    import tensorrt

    return tensorrt


def compute_capability(device: int = 0) -> str:
    """``"8.7"`` for an Orin: the GPU generation an engine is specific to."""
    major, minor = torch.cuda.get_device_capability(device)
    return f"{major}.{minor}"


def part_profile(sam: Sam, part: str, max_sets: int = 8, max_points: int = 8) -> ShapeProfile:
    """The optimisation profile of ``part``: ``encoder`` one fixed shape, ``decoder`` guided, K 1..``max_sets``."""
    if part == "encoder":
        return encoder_profile(int(sam.image_encoder.img_size))
    if part == "decoder":
        return decoder_profile(tuple(sam.prompt_encoder.image_embedding_size), int(sam.prompt_encoder.embed_dim),
                               max_sets, max_points, guided=True)
    raise InvalidInputError(f"engine part {part!r} unknown; use one of: {', '.join(PARTS)}")


def _graph_fingerprint() -> str:
    """12 hex digits over the sources that define both graphs (a changed definition exports anew)."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for source in (here / "encoder_graph.py", here / "decoder_graph.py", here / "guided.py", here / "tiny_vit.py",
                   Path(sam_image_encoder.__file__), Path(sam_mask_decoder.__file__)):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:12]


def onnx_graph(sam: Sam, model_id: str, part: str, directory: str | os.PathLike | None = None,
               opset: int = 17) -> bytes:
    """The ONNX graph of ``part`` (guided decoder, or encoder), exported once and kept in the engine directory.

    The file name holds the model id, opset, torch version and a fingerprint
    of the graph definitions, so a changed model or definition exports again.
    """
    if part not in PARTS:
        raise InvalidInputError(f"engine part {part!r} unknown; use one of: {', '.join(PARTS)}")
    weight_bytes = sum(p.numel() * p.element_size() for p in sam.image_encoder.parameters())
    if part == "encoder" and weight_bytes > MAX_GRAPH_BYTES:
        raise InvalidInputError(f"the encoder has {weight_bytes / 1e9:.1f} GB of weights, more than one ONNX graph "
                                "can hold (vit_h); use runtime 'torch' for this model")
    folder = Path(directory).expanduser() if directory else default_engine_dir()
    torch_tag = torch.__version__.replace("+", "_")
    path = folder / f"{model_id}.{part}.opset{opset}.torch{torch_tag}.code{_graph_fingerprint()}{GRAPH_SUFFIX}"
    if path.is_file():
        return path.read_bytes()
    buffer = io.BytesIO()
    if part == "encoder":
        export_encoder_onnx(sam, buffer, opset)
    else:
        export_decoder_onnx(sam, buffer, opset, guided=True)
    graph = buffer.getvalue()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(graph)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only cache: the key is still right, the next start exports again
        log.warning("cannot keep the %s graph in %s (%s)", part, folder, exc)
        tmp.unlink(missing_ok=True)
    return graph


def engine_key(model: str, model_id: str, part: str, onnx: bytes, precision: str, profile: ShapeProfile,
               tensorrt_version: str, capability: str) -> EngineKey:
    """The cache key of one engine (pure: every field given)."""
    return EngineKey(model=model, model_id=model_id, part=part, onnx_sha256=hashlib.sha256(onnx).hexdigest(),
                     tensorrt_version=tensorrt_version, compute_capability=capability, precision=precision,
                     shapes=profile.as_dict())


def build_engine(onnx: bytes, profile: ShapeProfile, precision: str, timing_cache: Path | None = None,
                 workspace_bytes: int = WORKSPACE_BYTES) -> bytes:
    """Build a serialized TensorRT engine of the ONNX graph ``onnx`` with one optimisation profile.

    ``precision`` ``fp16`` lets TensorRT pick half-precision kernels where they
    are faster (inputs and outputs stay float32); ``timing_cache`` is read when
    it exists and written back after the build. CheckpointError when TensorRT
    cannot run here, cannot parse the graph, or the build fails.
    """
    trt = require_tensorrt()
    if precision not in PRECISIONS:
        raise InvalidInputError(f"precision {precision!r} unknown; use one of: {', '.join(PRECISIONS)}")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # TensorRT 10 networks are always explicit-batch (the flag is deprecated); 8.x needs it.
    major = int(trt.__version__.split(".")[0])
    network = builder.create_network(0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise CheckpointError(f"TensorRT cannot parse the ONNX graph: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    optimisation = builder.create_optimization_profile()
    for name, (low, opt, high) in profile.tensors:
        optimisation.set_shape(name, low, opt, high)
    config.add_optimization_profile(optimisation)
    cache_bytes = timing_cache.read_bytes() if timing_cache is not None and timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise CheckpointError("TensorRT could not build the engine (its log above says why)")
    if timing_cache is not None:
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        timing_cache.write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))
    return bytes(memoryview(serialized))


def engine_bytes(sam: Sam, model: str, model_id: str, part: str, precision: str = "fp16",
                 directory: str | os.PathLike | None = None, max_sets: int = 8, max_points: int = 8,
                 build_missing: bool = True, rebuild: bool = False) -> tuple[bytes, EngineKey]:
    """The serialized engine of ``part`` for this machine, from the cache or built (``build_missing``).

    ``rebuild`` replaces whatever the slot holds (``perovss engines build``).
    CheckpointError when TensorRT cannot run here, when the cached engine is
    foreign, stale or corrupt (naming the rebuild command), or when the slot is
    empty and ``build_missing`` is False.
    """
    trt = require_tensorrt()
    profile = part_profile(sam, part, max_sets, max_points)
    onnx = onnx_graph(sam, model_id, part, directory)
    key = engine_key(model, model_id, part, onnx, precision, profile, trt.__version__, compute_capability())
    cached = None if rebuild else load_engine(key, directory)
    if cached is not None:
        return cached, key
    if not build_missing:
        raise CheckpointError(f"no TensorRT {part} engine for {model_id} ({precision}); "
                              f"build it with `{key.rebuild_command()}`")
    log.warning("building the TensorRT %s engine of %s (%s); this takes minutes once", part, model_id, precision)
    engine = build_engine(onnx, profile, precision,
                          timing_cache_path(key.tensorrt_version, key.compute_capability, directory))
    write_engine(key, engine, directory)
    return engine, key
