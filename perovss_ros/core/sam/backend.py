"""Builds the SAM backend (encoder + guided decoder) from a pipeline config."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from perovss_ros.core.checkpoints import CHECKPOINTS
from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.sam.decoder import RUNTIMES, SamMaskDecoder
from perovss_ros.core.sam.encoder import SamImageEncoder
from perovss_ros.core.sam.graph_cache import cached_encoder
from perovss_ros.core.sam.guided import guided_decoder_from
from perovss_ros.core.sam.registry import SAM_MODELS, build_sam_model, sam_spec
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


def resolve_runtime(runtime: str, device: torch.device) -> str:
    """The runtime that will run: ``auto`` is ``onnxruntime`` on the CPU where it is importable, else ``torch``.

    Why that order: on a CPU the exported graphs run faster in onnxruntime (the
    guided decoder 1.5-2× here); on CUDA, torch is what runs here (onnxruntime's
    CUDA and TensorRT providers, and TensorRT engines, are not wired yet).
    """
    if runtime != "auto":
        return runtime
    if device.type != "cpu":
        return "torch"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "torch"
    return "onnxruntime"


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
    encoder and decoder as PyTorch modules, ``onnxruntime`` as exported graphs:
    the guided decoder exported in memory (same results to ~1e-6, about 1.5-2×
    faster on a CPU) and the image encoder from the on-disk graph cache
    (:mod:`perovss_ros.core.sam.graph_cache`; the first build exports and checks
    it). ``auto`` picks with :func:`resolve_runtime`. Official models load
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
    device = _device(str(_option(config, "device", "cpu")))
    runtime = resolve_runtime(runtime, device)
    if runtime == "onnxruntime" and device.type != "cpu":
        raise InvalidInputError("runtime 'onnxruntime' runs SAM on the CPU here; set device: cpu")
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
    graph = cached_encoder(sam, model_id) if runtime == "onnxruntime" else None
    return SamImageEncoder(sam, model_id, graph), SamMaskDecoder(sam, runtime=runtime)
