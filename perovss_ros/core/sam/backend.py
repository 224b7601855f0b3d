"""Builds the SAM backend (encoder + guided decoder) from a pipeline config."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from perovss_ros.core.checkpoints import CHECKPOINTS
from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.sam.decoder import RUNTIMES, SamMaskDecoder
from perovss_ros.core.sam.encoder import SamImageEncoder
from perovss_ros.core.sam.graph_cache import cached_encoder, encoder_fits_one_graph
from perovss_ros.core.sam.guided import guided_decoder_from
from perovss_ros.core.sam.registry import SAM_MODELS, build_sam_model, sam_spec
from perovss_ros.core.sam.tensorrt_engines import engine_bytes, tensorrt_problem
from perovss_ros.core.sam.weights import checkpoint_present, load_official_weights


def _option(config: object, key: str, default: object) -> object:
    """``config.key`` for a PipelineConfig-like object, ``config[key]`` for a mapping, else ``default``."""
    if config is None:
        return default
    if isinstance(config, Mapping):
        return config.get(key, default)
    return getattr(config, key, default)


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError("device 'cuda' requested but no CUDA device is available; set device: cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise InvalidInputError(f"unknown device {name!r}; use 'cpu' or 'cuda'") from None


def _onnxruntime_runs_on(device: torch.device) -> bool:
    try:
        from perovss_ros.core.sam.engines import onnxruntime_providers

        return onnxruntime_providers(device) is not None
    except ImportError:
        return False


def resolve_runtime(runtime: str, device: torch.device) -> str:
    """The runtime that will run: ``auto`` picks the fastest one that can run on ``device`` here.

    On CUDA: ``tensorrt`` where TensorRT is importable, else ``onnxruntime``
    where it has the CUDA provider, else ``torch`` (fp16 autocast). On the CPU:
    ``onnxruntime`` where importable, else ``torch``: on this project's 2-core CPU at
    1 thread onnxruntime ran the mobile and vit_b encoders 2.5-4.3× faster than torch
    (``perovss bench core --part encoders``) and tiny's K = 4 decode stage 2× (198 → 100
    ms, ``--part scaling``; README "Measured on the CPU"). ``build_sam_backend`` keeps an
    encoder too large for one ONNX graph (vit_h) in torch under ``auto``.
    """
    if runtime != "auto":
        return runtime
    if device.type == "cuda" and tensorrt_problem() is None:
        return "tensorrt"
    return "onnxruntime" if _onnxruntime_runs_on(device) else "torch"


def sam_model_id(model: str, seed: int) -> str:
    """``sam-tiny-seed0`` for seeded models, ``sam-vit_b-ec2df627`` (checkpoint SHA-256 prefix) otherwise."""
    spec = sam_spec(model)
    if spec.checkpoint is None:
        return f"sam-{model}-seed{int(seed)}"
    return f"sam-{model}-{CHECKPOINTS[spec.checkpoint].sha256[:8]}"


def sam_checkpoint_available(config: object) -> bool:
    """True when the official checkpoint of ``config.model`` is present (exists, right size; not hashed).

    ``tiny`` has no checkpoint (seeded random weights, for tests and
    benchmarks), so this is False for it and ``backend: auto`` picks classic.
    """
    spec = SAM_MODELS.get(str(_option(config, "model", "vit_b")))
    if spec is None or spec.checkpoint is None:
        return False
    return checkpoint_present(CHECKPOINTS[spec.checkpoint], _option(config, "checkpoint", "") or None)


def build_sam_backend(config: object, random_weights: bool = False) -> tuple[SamImageEncoder, SamMaskDecoder]:
    """Encoder and guided decoder sharing one ``Sam`` built from ``config``.

    ``config`` is a PipelineConfig (or any object/mapping with ``model``,
    ``checkpoint``, ``device``, ``runtime``, ``seed``). ``runtime`` ``torch`` runs
    encoder and decoder as PyTorch modules (on CUDA the encoder under fp16
    autocast), ``onnxruntime`` as exported graphs (CUDA provider on CUDA): the
    guided decoder exported in memory (same results to ~1e-6, about 1.5-2×
    faster on a CPU) and the image encoder from the on-disk graph cache
    (:mod:`perovss_ros.core.sam.graph_cache`; the first build exports and checks
    it). ``tensorrt`` (CUDA) runs fp16 engines of both graphs from the engine
    cache (:mod:`perovss_ros.core.sam.engine_cache`), built on first use
    (minutes) unless ``perovss engines build`` made them; refused with
    InvalidInputError where TensorRT or CUDA is absent. ``auto`` picks with
    :func:`resolve_runtime`. Official models load
    their verified checkpoint (CheckpointError naming the file and the
    ``perovss models download`` command if missing or corrupt); ``tiny`` uses
    seeded random weights.

    ``random_weights=True`` (benchmarks only; no config key reaches it, so the
    node can never run it) builds an official architecture such as ``vit_b``
    with seeded random weights instead of its checkpoint: the real network's
    cost without the download. Its model id says so (``sam-vit_b-random-seed0``),
    so concepts made with it never pass for the real model's.
    """
    model = str(_option(config, "model", "vit_b"))
    seed = int(_option(config, "seed", 0))
    runtime = str(_option(config, "runtime", "torch"))
    if runtime not in (*RUNTIMES, "auto"):
        raise InvalidInputError(
            f"SAM runtime {runtime!r} is not available here; use one of: {', '.join(RUNTIMES)}, auto"
        )
    if runtime == "tensorrt" and tensorrt_problem() is not None:
        raise InvalidInputError(f"SAM runtime 'tensorrt' cannot run here: {tensorrt_problem()}; "
                                f"use one of: torch, onnxruntime, auto")
    device = _device(str(_option(config, "device", "cpu")))
    asked, runtime = runtime, resolve_runtime(runtime, device)
    if runtime == "onnxruntime" and not _onnxruntime_runs_on(device):
        raise InvalidInputError(f"runtime 'onnxruntime' has no provider for device {device.type!r} here "
                                "(install onnxruntime-gpu for CUDA); set device: cpu or runtime: torch")
    if runtime == "tensorrt" and device.type != "cuda":
        raise InvalidInputError("runtime 'tensorrt' runs on a CUDA device; set device: cuda")
    spec = sam_spec(model)
    sam = build_sam_model(model, seed)
    sam.mask_decoder = guided_decoder_from(sam.mask_decoder)
    if spec.checkpoint is not None and not random_weights:
        # Loaded into the guided modules: same parameter names as upstream, strict.
        load_official_weights(sam, spec.checkpoint, _option(config, "checkpoint", "") or None)
    sam = sam.to(device).eval()
    for param in sam.parameters():
        param.requires_grad_(False)
    model_id = f"sam-{model}-random-seed{seed}" if random_weights and spec.checkpoint else sam_model_id(model, seed)
    if runtime == "tensorrt":
        encoder_graph, decoder_graph = tensorrt_runners(sam, model, model_id, _TENSORRT_PRECISION)
        return (SamImageEncoder(sam, model_id, encoder_graph),
                SamMaskDecoder(sam, runtime=runtime, graph=decoder_graph))
    graph = None
    if runtime == "onnxruntime" and not (asked == "auto" and not encoder_fits_one_graph(sam)):
        from perovss_ros.core.sam.engines import onnxruntime_providers

        graph = cached_encoder(sam, model_id, providers=onnxruntime_providers(device))
    # ``auto`` with an encoder too large for one graph (vit_h): the encoder stays in torch, the decoder
    # (4 M parameters, exported in memory) still runs in onnxruntime; ``onnxruntime`` asked for is refused.
    return (SamImageEncoder(sam, model_id, graph, half=device.type == "cuda"),
            SamMaskDecoder(sam, runtime=runtime))


_TENSORRT_PRECISION = "fp16"
"""Engines the backend runs: fp16, the precision the robot figures are for (``perovss engines build`` default)."""


def tensorrt_runners(sam, model: str, model_id: str, precision: str = "fp16", directory: str | None = None,
                     max_sets: int = 8, max_points: int = 8):
    """(``TensorRtEncoder``, ``TensorRtDecoder``) of ``sam``: engines from the cache, built where missing.

    CheckpointError naming ``perovss engines build`` for a foreign or corrupt engine.
    """
    from perovss_ros.core.sam.tensorrt_runtime import TensorRtDecoder, TensorRtEncoder

    runners = []
    for part, runner in (("encoder", TensorRtEncoder), ("decoder", TensorRtDecoder)):
        engine, key = engine_bytes(sam, model, model_id, part, precision, directory, max_sets, max_points)
        runners.append(runner(engine, key.file_name(), key.rebuild_command()))
    return runners[0], runners[1]
